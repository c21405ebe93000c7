"""Instance-segmentation scores: one-to-one matching of labelled particles.

A predicted particle matches a true one when their intersection over union (IoU) reaches a
threshold; each particle matches at most once. These scores compare :func:`tempipe.segment.segment`
with the exact labels of :func:`tempipe.simulate.simulate_micrograph` (tests, benchmarks) or
with hand-drawn labels of real micrographs.

The IoU of every overlapping (true, predicted) pair comes from one pass over the pixels
(label co-occurrence counts), so scoring a 1024 x 1024 field takes milliseconds.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from tempipe.errors import ParameterError

__all__ = ["match_instances", "average_precision", "pair_ious", "match_counts"]

#: Above this many (max label + 1)^2 cells, co-occurrences are counted by sorting keys
#: rather than by one bincount over the whole table.
_DENSE_TABLE_MAX = 20_000_000


def _check_labels(true_labels, pred_labels) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for name, value in (("true_labels", true_labels), ("pred_labels", pred_labels)):
        arr = np.asarray(value)
        if arr.ndim != 2:
            raise ParameterError(
                f"{name} must be a 2-D label image (M, N), got an array of shape {arr.shape}.")
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
            raise ParameterError(
                f"{name} must hold integer labels (0 = background), got dtype {arr.dtype}; "
                "label a binary mask first (skimage.measure.label).")
        if arr.size and arr.min() < 0:
            raise ParameterError(f"{name} has negative labels; labels must be >= 0.")
        arrays.append(arr.astype(np.int64, copy=False))
    if arrays[0].shape != arrays[1].shape:
        raise ParameterError(
            f"true_labels {arrays[0].shape} and pred_labels {arrays[1].shape} must have the "
            "same shape.")
    return arrays[0], arrays[1]


def pair_ious(true_labels, pred_labels) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                 np.ndarray, np.ndarray]:
    """IoU of every overlapping (true, predicted) particle pair.

    Parameters
    ----------
    true_labels, pred_labels : (M, N) ndarray of int
        Label images, 0 = background; labels need not be consecutive.

    Returns
    -------
    true_ids : (T,) ndarray of int64
        Labels present in ``true_labels``.
    pred_ids : (P,) ndarray of int64
        Labels present in ``pred_labels``.
    pairs : (K, 2) ndarray of int64
        (true label, predicted label) of each pair sharing at least one pixel.
    ious : (K,) ndarray of float64
        Their intersection over union.
    areas : tuple of two ndarrays
        Pixel counts indexed by label (``areas[0][true_label]``, ``areas[1][pred_label]``).

    Examples
    --------
    >>> t = np.array([[1, 1, 0, 0]]); p = np.array([[1, 0, 0, 2]])
    >>> pair_ious(t, p)[3]
    array([0.5])
    """
    t, p = _check_labels(true_labels, pred_labels)
    t, p = t.ravel(), p.ravel()
    area_t = np.bincount(t)
    area_p = np.bincount(p)
    true_ids = np.flatnonzero(area_t[1:]) + 1
    pred_ids = np.flatnonzero(area_p[1:]) + 1
    both = (t > 0) & (p > 0)
    n_p = area_p.size
    keys = t[both] * n_p + p[both]
    if area_t.size * n_p <= _DENSE_TABLE_MAX:
        counts = np.bincount(keys, minlength=area_t.size * n_p)
        keys = np.flatnonzero(counts)
        inter = counts[keys]
    else:
        keys, inter = np.unique(keys, return_counts=True)
    pairs = np.stack([keys // n_p, keys % n_p], axis=1)
    union = area_t[pairs[:, 0]] + area_p[pairs[:, 1]] - inter
    return true_ids, pred_ids, pairs, inter / union, (area_t, area_p)


def _one_to_one(pairs: np.ndarray, ious: np.ndarray, iou_threshold: float):
    """Matched rows of ``pairs``: each label at most once, maximal total IoU."""
    keep = np.flatnonzero(ious >= iou_threshold)
    if keep.size == 0:
        return keep
    cand = pairs[keep]
    unique_rows = np.unique(cand[:, 0]).size == keep.size
    if unique_rows and np.unique(cand[:, 1]).size == keep.size:
        return keep                      # always the case above IoU 0.5
    rows, row_idx = np.unique(cand[:, 0], return_inverse=True)
    cols, col_idx = np.unique(cand[:, 1], return_inverse=True)
    cost = np.zeros((rows.size, cols.size))
    cost[row_idx, col_idx] = -ious[keep]
    r, c = linear_sum_assignment(cost)
    chosen = cost[r, c] < 0
    lookup = {(i, j): k for k, i, j in zip(keep, row_idx, col_idx)}
    return np.array([lookup[(i, j)] for i, j in zip(r[chosen], c[chosen])], dtype=np.int64)


def _check_threshold(value, name="iou_threshold") -> float:
    if isinstance(value, bool) or not np.isscalar(value) or not 0 < float(value) <= 1:
        raise ParameterError(f"{name} must be a number in (0, 1], got {value!r}.")
    return float(value)


def _scores(tp: int, fp: int, fn: int) -> dict:
    """Precision, recall, F1; 1.0 when the denominator is empty (nothing to get wrong)."""
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0,
    }


def match_instances(true_labels, pred_labels, iou_threshold: float = 0.5) -> dict:
    """Match predicted particles to true ones one-to-one and score the detection.

    Parameters
    ----------
    true_labels, pred_labels : (M, N) ndarray of int
        Label images (0 = background).
    iou_threshold : float
        A pair matches when its IoU is at least this, in (0, 1]. From 0.5 up a pair's
        match is unique; below, the assignment maximising the total IoU is used.

    Returns
    -------
    dict
        ``tp, fp, fn`` (int), ``precision, recall, f1`` (float; 1.0 when both images are
        empty), ``mean_iou`` (mean IoU of matched pairs, NaN without any), ``pairs``
        ((K, 2) int64 array of matched (true label, predicted label)) and ``ious`` ((K,)).

    Raises
    ------
    ParameterError
        Non-2-D or non-integer label images, different shapes, threshold outside (0, 1].

    Examples
    --------
    >>> t = np.zeros((4, 8), int); t[:, :4] = 1; t[:, 4:] = 2
    >>> p = np.zeros((4, 8), int); p[:, :3] = 5
    >>> m = match_instances(t, p)
    >>> m["tp"], m["fp"], m["fn"], m["mean_iou"]
    (1, 0, 1, 0.75)
    """
    iou_threshold = _check_threshold(iou_threshold)
    true_ids, pred_ids, pairs, ious, _ = pair_ious(true_labels, pred_labels)
    chosen = _one_to_one(pairs, ious, iou_threshold)
    tp = int(chosen.size)
    result = {"tp": tp, "fp": int(pred_ids.size - tp), "fn": int(true_ids.size - tp)}
    result.update(_scores(tp, result["fp"], result["fn"]))
    result["mean_iou"] = float(ious[chosen].mean()) if tp else float("nan")
    result["pairs"] = pairs[chosen]
    result["ious"] = ious[chosen]
    return result


def _checked_thresholds(thresholds) -> np.ndarray:
    # rounding keeps np.arange's 0.7500000000000002 from failing an IoU of exactly 0.75
    thresholds = np.round(np.atleast_1d(np.asarray(thresholds, dtype=float)), 10)
    if thresholds.size == 0:
        raise ParameterError("thresholds must hold at least one IoU threshold.")
    for value in thresholds:
        _check_threshold(value, "every threshold")
    return thresholds


def match_counts(true_labels, pred_labels, thresholds=np.arange(0.5, 1.0, 0.05)) -> dict:
    """Counts for pooling scores over many images: true, predicted and matched particles.

    Summing these over images gives pooled precision, recall, F1 and a pooled AP
    (per threshold, the summed TP over the summed TP + FP + FN), which weigh every
    particle alike, unlike a mean of per-image scores.

    Parameters
    ----------
    true_labels, pred_labels : (M, N) ndarray of int
        Label images (0 = background).
    thresholds : sequence of float
        IoU thresholds in (0, 1]; default 0.50, 0.55, ..., 0.95.

    Returns
    -------
    dict
        ``n_true``, ``n_pred`` (int), ``tp`` ((T,) int64 array: one-to-one matches at each
        threshold) and ``ious`` (IoUs of the matches at the first threshold).

    Raises
    ------
    ParameterError
        As :func:`average_precision`.

    Examples
    --------
    >>> t = np.zeros((4, 8), int); t[:, :4] = 1
    >>> p = np.zeros((4, 8), int); p[:, :3] = 1; p[:, 6:] = 2
    >>> c = match_counts(t, p, thresholds=[0.5, 0.8])
    >>> c["n_true"], c["n_pred"], c["tp"].tolist()
    (1, 2, [1, 0])
    """
    thresholds = _checked_thresholds(thresholds)
    true_ids, pred_ids, pairs, ious, _ = pair_ious(true_labels, pred_labels)
    chosen = [_one_to_one(pairs, ious, thr) for thr in thresholds]
    return {"n_true": int(true_ids.size), "n_pred": int(pred_ids.size),
            "tp": np.array([c.size for c in chosen], dtype=np.int64),
            "ious": ious[chosen[0]]}


def average_precision(true_labels, pred_labels,
                      thresholds=np.arange(0.5, 1.0, 0.05)) -> float:
    """Mean over IoU thresholds of TP / (TP + FP + FN) (the COCO/DSB-style "AP").

    Parameters
    ----------
    true_labels, pred_labels : (M, N) ndarray of int
        Label images (0 = background).
    thresholds : sequence of float
        IoU thresholds in (0, 1]; default 0.50, 0.55, ..., 0.95.

    Returns
    -------
    float
        In [0, 1]; 1.0 when both images are empty.

    Raises
    ------
    ParameterError
        As :func:`match_instances`, or an empty or out-of-range ``thresholds``.

    Examples
    --------
    >>> t = np.zeros((4, 8), int); t[:, :4] = 1
    >>> p = np.zeros((4, 8), int); p[:, :3] = 1
    >>> round(average_precision(t, p), 2)   # IoU 0.75 passes 0.50 ... 0.75: 6 of 10
    0.6
    """
    counts = match_counts(true_labels, pred_labels, thresholds)
    denom = counts["n_true"] + counts["n_pred"] - counts["tp"]      # tp + fp + fn
    scores = np.where(denom > 0, counts["tp"] / np.maximum(denom, 1), 1.0)
    return float(np.mean(scores))

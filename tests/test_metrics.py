"""Tests of tempipe.metrics on hand-made label images whose IoUs are known exactly."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from tempipe.errors import ParameterError
from tempipe.metrics import average_precision, match_counts, match_instances, pair_ious


def _boxes(shape, boxes):
    """Label image with rectangles (label, row0, row1, col0, col1)."""
    labels = np.zeros(shape, np.int32)
    for lab, r0, r1, c0, c1 in boxes:
        labels[r0:r1, c0:c1] = lab
    return labels


def test_pair_ious_match_hand_counts():
    # true 1: 10x10 = 100 px; pred 7 shifts it by 2 columns: overlap 80, union 120
    true = _boxes((30, 40), [(1, 0, 10, 0, 10), (2, 15, 25, 20, 30)])
    pred = _boxes((30, 40), [(7, 0, 10, 2, 12), (3, 15, 25, 20, 25)])
    true_ids, pred_ids, pairs, ious, _ = pair_ious(true, pred)
    assert list(true_ids) == [1, 2] and list(pred_ids) == [3, 7]
    table = {tuple(p): iou for p, iou in zip(pairs.tolist(), ious)}
    assert_allclose(table[(1, 7)], 80 / 120)
    assert_allclose(table[(2, 3)], 50 / 100)
    assert len(table) == 2


def test_match_counts_and_mean_iou():
    true = _boxes((40, 40), [(1, 0, 10, 0, 10), (2, 20, 30, 0, 10), (3, 20, 30, 20, 30)])
    pred = _boxes((40, 40), [(5, 0, 10, 1, 10),          # IoU 0.9 with 1
                             (6, 20, 30, 0, 4),          # IoU 0.4 with 2: no match
                             (9, 35, 40, 35, 40)])       # nothing underneath
    m = match_instances(true, pred)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 2, 2)
    assert_allclose(m["precision"], 1 / 3)
    assert_allclose(m["recall"], 1 / 3)
    assert_allclose(m["f1"], 2 * 1 / (2 * 1 + 2 + 2))
    assert_allclose(m["mean_iou"], 0.9)
    assert m["pairs"].tolist() == [[1, 5]]
    # a lower threshold admits the IoU-0.4 pair
    assert match_instances(true, pred, iou_threshold=0.4)["tp"] == 2


def test_one_to_one_below_half_picks_best_assignment():
    # one predicted box covers two true boxes (IoU 0.45 each): only one may match it
    true = _boxes((20, 60), [(1, 0, 10, 0, 9), (2, 0, 10, 11, 20)])
    pred = _boxes((20, 60), [(1, 0, 10, 0, 20)])
    m = match_instances(true, pred, iou_threshold=0.3)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 0, 1)
    assert_allclose(m["mean_iou"], 90 / 200)


def test_labels_need_not_be_consecutive_and_large_ids_work():
    true = _boxes((20, 20), [(10**6, 0, 10, 0, 10)])
    pred = _boxes((20, 20), [(123_456_789, 0, 10, 0, 10)])
    m = match_instances(true, pred)
    assert m["tp"] == 1 and m["mean_iou"] == 1.0
    assert m["pairs"].tolist() == [[10**6, 123_456_789]]


def test_empty_images():
    empty = np.zeros((8, 8), np.int32)
    one = _boxes((8, 8), [(1, 0, 4, 0, 4)])
    both = match_instances(empty, empty)
    assert both["f1"] == 1.0 and np.isnan(both["mean_iou"])
    missed = match_instances(one, empty)
    assert (missed["tp"], missed["fn"], missed["f1"], missed["recall"]) == (0, 1, 0.0, 0.0)
    assert average_precision(empty, empty) == 1.0
    assert average_precision(one, empty) == 0.0


def test_average_precision_counts_thresholds_passed():
    true = _boxes((10, 20), [(1, 0, 10, 0, 10)])
    pred = _boxes((10, 20), [(1, 0, 10, 0, 8)])          # IoU exactly 0.8
    # passes 0.50 ... 0.80 (7 of 10 thresholds, including 0.8 itself)
    assert_allclose(average_precision(true, pred), 0.7)
    assert_allclose(average_precision(true, pred, thresholds=[0.5, 0.9]), 0.5)
    # a false positive counts in every denominator: TP / (TP + FP + FN) = 1/2 where matched
    pred_fp = pred.copy()
    pred_fp[0:2, 15:20] = 2
    assert_allclose(average_precision(true, pred_fp), 0.7 / 2)


def test_perfect_segmentation_of_many_particles_is_fast_and_exact():
    rng = np.random.default_rng(0)
    labels = np.zeros((1024, 1024), np.int32)
    for k, (r, c) in enumerate(rng.integers(0, 1000, (300, 2)), start=1):
        labels[r:r + 20, c:c + 20] = k                   # later boxes may overlap earlier ones
    m = match_instances(labels, labels)
    present = np.unique(labels[labels > 0]).size
    assert m["tp"] == present and m["fp"] == m["fn"] == 0 and m["mean_iou"] == 1.0
    assert average_precision(labels, labels) == 1.0


@pytest.mark.parametrize("true, pred, thr, match", [
    (np.zeros((4, 4, 3), int), np.zeros((4, 4, 3), int), 0.5, "2-D"),
    (np.zeros((4, 4), float), np.zeros((4, 4), int), 0.5, "integer labels"),
    (np.zeros((4, 4), bool), np.zeros((4, 4), int), 0.5, "integer labels"),
    (np.zeros((4, 4), int), np.zeros((4, 5), int), 0.5, "same shape"),
    (-np.ones((4, 4), int), np.zeros((4, 4), int), 0.5, "negative"),
    (np.zeros((4, 4), int), np.zeros((4, 4), int), 0.0, "iou_threshold"),
    (np.zeros((4, 4), int), np.zeros((4, 4), int), 1.5, "iou_threshold"),
])
def test_bad_inputs_raise(true, pred, thr, match):
    with pytest.raises(ParameterError, match=match):
        match_instances(true, pred, iou_threshold=thr)


def test_average_precision_rejects_bad_thresholds():
    labels = np.zeros((4, 4), int)
    with pytest.raises(ParameterError, match="at least one"):
        average_precision(labels, labels, thresholds=[])
    with pytest.raises(ParameterError, match="every threshold"):
        average_precision(labels, labels, thresholds=[0.5, 2.0])


def test_match_counts_pool_to_the_same_scores_as_match_instances():
    true = _boxes((40, 40), [(1, 0, 10, 0, 10), (2, 20, 30, 0, 10), (3, 20, 30, 20, 30)])
    pred = _boxes((40, 40), [(5, 0, 10, 1, 10),          # IoU 0.9 with 1
                             (6, 20, 30, 0, 6),          # IoU 0.6 with 2
                             (9, 35, 40, 35, 40)])
    counts = match_counts(true, pred, thresholds=[0.5, 0.7, 0.95])
    assert (counts["n_true"], counts["n_pred"]) == (3, 3)
    assert counts["tp"].tolist() == [2, 1, 0]
    assert_allclose(sorted(counts["ious"]), [0.6, 0.9])
    m = match_instances(true, pred, 0.5)
    assert counts["tp"][0] == m["tp"]
    # AP from the counts: mean of tp / (tp + fp + fn) over the thresholds
    tp = counts["tp"]
    assert_allclose(average_precision(true, pred, [0.5, 0.7, 0.95]),
                    np.mean(tp / (counts["n_true"] + counts["n_pred"] - tp)))


@pytest.mark.parametrize("thresholds, match", [([], "at least one"), ([0.5, 1.5], "every")])
def test_match_counts_rejects_bad_thresholds(thresholds, match):
    labels = np.ones((4, 4), np.int32)
    with pytest.raises(ParameterError, match=match):
        match_counts(labels, labels, thresholds)

"""Re-simulation: render each particle's predicted shape and compare it with its mask.

The paper checks its CNN on experimental particles by re-simulating the predicted
(p, d, l_ratio) and computing the Jaccard index with the particle (~0.8 there). Here the
predicted shape is drawn in the particle's crop window (:func:`tempipe.crops.crop_masks`)
with the particle's area, its centroid on the particle's centroid, at the rotation (over
a grid covering the shape's symmetry period) that fits best; ``resim_jaccard`` is the
intersection over union of the two masks on that grid.
"""

from __future__ import annotations

import numpy as np

from tempipe._render import radius_unchecked
from tempipe.errors import ParameterError

#: Rotations tried per symmetry period (2 pi / d).
N_ROTATIONS = 24
_THETA = np.linspace(0.0, 2 * np.pi, 720, endpoint=False)


def _unit_shape_moments(p: float, d: float, l_ratio: float) -> tuple[float, float, float]:
    """Area and centroid (x right, y up) of the eq. 1 curve with scale 1 and phi = 0."""
    r = radius_unchecked(_THETA, p, d, l_ratio)
    step = 2 * np.pi / _THETA.size
    area = 0.5 * np.sum(r ** 2) * step
    cx = np.sum(r ** 3 * np.cos(_THETA)) * step / 3 / area
    cy = np.sum(r ** 3 * np.sin(_THETA)) * step / 3 / area
    return area, cx, cy


def _best_jaccard(mask: np.ndarray, p: float, d: float, l_ratio: float) -> float:
    inside_mask = mask > 0.5
    area_px = inside_mask.sum()
    if area_px == 0:
        return float("nan")
    rows, cols = np.nonzero(inside_mask)
    c_row, c_col = rows.mean(), cols.mean()
    area_unit, cx, cy = _unit_shape_moments(p, d, l_ratio)
    scale = np.sqrt(area_px / area_unit)
    phis = np.arange(N_ROTATIONS) * (2 * np.pi / d / N_ROTATIONS)
    # A phase phi rotates the shape by -phi: its centroid rotates with it.
    cos, sin = np.cos(-phis), np.sin(-phis)
    off_x = scale * (cx * cos - cy * sin)
    off_y = scale * (cx * sin + cy * cos)
    size = mask.shape[0]
    grid_r, grid_c = np.mgrid[0:size, 0:size].astype(np.float64)
    d_row = grid_r[None] - (c_row + off_y)[:, None, None]  # origin = centroid - offset (y up)
    d_col = grid_c[None] - (c_col - off_x)[:, None, None]
    theta = np.arctan2(-d_row, d_col)
    inside = np.hypot(d_row, d_col) <= scale * radius_unchecked(
        theta, p, d, l_ratio, phis[:, None, None])
    inter = (inside & inside_mask).sum(axis=(1, 2))
    union = (inside | inside_mask).sum(axis=(1, 2))
    return float((inter / np.maximum(union, 1)).max())


def resim_jaccard(masks: np.ndarray, p, d, l_ratio) -> np.ndarray:
    """Best-rotation Jaccard index between each mask and its re-simulated shape.

    Parameters
    ----------
    masks : (N, S, S) ndarray
        Particle masks in their crop windows (:func:`tempipe.crops.crop_masks`), > 0.5 inside.
    p, d, l_ratio : (N,) array_like
        Predicted parameters; ``d`` is rounded to the nearest integer >= 1 (the shape's
        symmetry), as a re-simulated particle must be a closed curve.

    Returns
    -------
    (N,) float ndarray
        Jaccard index in [0, 1] (NaN for an empty mask).

    Examples
    --------
    >>> from tempipe.crops import crop_masks
    >>> yy, xx = np.mgrid[:60, :60]
    >>> lab = ((yy - 30) ** 2 + (xx - 30) ** 2 <= 15 ** 2).astype(int)
    >>> float(resim_jaccard(crop_masks(lab, 32), [2.0], [2.0], [1.0])[0]) > 0.95
    True
    """
    masks = np.asarray(masks)
    p, d, l_ratio = (np.asarray(v, dtype=float).ravel() for v in (p, d, l_ratio))
    if masks.ndim != 3 or not (len(masks) == p.size == d.size == l_ratio.size):
        raise ParameterError(f"resim_jaccard needs (N, S, S) masks and N parameters each; got "
                             f"masks {masks.shape}, p {p.size}, d {d.size}, l_ratio {l_ratio.size}.")
    if not (np.all(p > 0) and np.all(l_ratio > 0) and np.all(np.isfinite(d))):
        raise ParameterError("resim_jaccard needs p > 0, l_ratio > 0 and finite d.")
    d_int = np.maximum(np.rint(d), 1.0)
    return np.array([_best_jaccard(m, pi, di, li)
                     for m, pi, di, li in zip(masks, p, d_int, l_ratio)])

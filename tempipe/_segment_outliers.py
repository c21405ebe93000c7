"""The paper's outlier filter: drop large regions of low solidity (unseparated agglomerates).

Solidity is area over convex area, the convex area counted as scikit-image's
``regionprops(...).area_convex`` counts it (pixel centres inside or on the convex hull of
the pixels' edge midpoints), but computed directly from the hull's edges row by row in
exact integer arithmetic (about twice as fast as building the convex-hull image).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull

#: Edge midpoints of a pixel, in doubled coordinates (row, col).
_DIAMOND = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]])


def convex_area_px(region: np.ndarray) -> int:
    """Pixels of ``region``'s grid inside its convex hull, as skimage's ``area_convex``.

    Parameters
    ----------
    region : (M, N) ndarray of bool
        One non-empty region (typically cropped to its bounding box).

    Returns
    -------
    int
        Number of pixel centres inside or on the hull of the edge midpoints of the
        region's pixels.

    Examples
    --------
    >>> convex_area_px(np.eye(4, dtype=bool))   # a diagonal: the hull adds no pixel centre
    4
    """
    rows = np.flatnonzero(region.any(axis=1))
    first = region[rows].argmax(axis=1)
    last = region.shape[1] - 1 - region[rows, ::-1].argmax(axis=1)
    # hull vertices are leftmost or rightmost pixels of their rows; coordinates doubled so
    # that the edge midpoints (+-0.5) are integers and every test below is exact
    r2 = np.repeat(2 * rows, 2)
    c2 = 2 * np.stack([first, last], axis=1).ravel()
    pts = (np.stack([r2, c2], axis=1)[None] + _DIAMOND[:, None]).reshape(-1, 2)
    v = pts[ConvexHull(pts.astype(float)).vertices].astype(np.int64)
    ya, xa = v[:, 0], v[:, 1]
    nxt = np.arange(1, ya.size + 1) % ya.size
    yb, xb = ya[nxt], xa[nxt]
    y = 2 * np.arange(region.shape[0], dtype=np.int64)[:, None]        # pixel rows, doubled
    lo, hi = np.minimum(ya, yb), np.maximum(ya, yb)
    crosses = (y >= lo) & (y <= hi)
    flat = ya == yb
    den = np.where(flat, 1, yb - ya)
    num = xa * den + (y - ya) * (xb - xa)                                # x = num / den
    sign = np.sign(den)
    num, den = num * sign, den * sign                                    # den > 0
    k_lo = -((-num) // (2 * den))                                        # ceil(x / 2)
    k_hi = num // (2 * den)                                              # floor(x / 2)
    k_lo = np.where(flat, -((-np.minimum(xa, xb)) // 2), k_lo)
    k_hi = np.where(flat, np.maximum(xa, xb) // 2, k_hi)
    big = np.iinfo(np.int64).max
    left = np.where(crosses, k_lo, big).min(axis=1)
    right = np.where(crosses, k_hi, -big).max(axis=1)
    return int(np.maximum(right - left + 1, 0)[crosses.any(axis=1)].sum())


def drop_outliers(labels: np.ndarray, area_factor: float, max_solidity: float) -> np.ndarray:
    """Remove regions larger than ``area_factor`` x the median area with low solidity.

    These are agglomerates the split could not separate (the paper's outlier filter).
    """
    areas = np.bincount(labels.ravel())
    present = np.flatnonzero(areas[1:]) + 1
    if present.size < 2:
        return labels
    big = present[areas[present] > area_factor * np.median(areas[present])]
    if big.size == 0:
        return labels
    drop = np.zeros(areas.size, dtype=bool)
    slices = ndi.find_objects(labels)
    for lab in big:
        hull = convex_area_px(labels[slices[lab - 1]] == lab)
        drop[lab] = areas[lab] / hull < max_solidity
    return np.where(drop[labels], 0, labels) if drop.any() else labels

"""The first look at a micrograph: at which smoothing do particles stand out?

Before the particle size is known, the first particle mask has to be made at some
smoothing. Too little, and the grain of a carbon film or of a textured support breaks the
mask into specks whose small size then sets every length of the segmentation; too much,
and small particles melt into the background. :func:`first_mask` tries a few smoothing
scales and keeps the finest one at which the image is (nearly) most clearly two-class: Otsu's
effectiveness (between-class over total variance) is 2/pi = 0.64 for a unimodal, noise-
like field and approaches 1 for well-separated particles and background.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from tempipe import _segment_steps as steps

#: Smoothing scales tried (coarse px), smallest first.
FIRST_SIGMAS_PX = (1.0, 2.0, 4.0, 8.0)
#: The smallest scale whose effectiveness is within this of the best one is kept (the
#: finer the smoothing, the sharper the outlines).
EFFECTIVENESS_SLACK = 0.02
#: ... or whose effectiveness reaches this, which is a clearly two-class field already
#: (coarser smoothing would then only merge close-packed particles into their raft).
EFFECTIVE_ENOUGH = 0.75
#: A scale is tried only while the view holds at least this many sigmas across.
MIN_SIGMAS_ACROSS = 16


def effectiveness(values: np.ndarray, threshold: float) -> float:
    """Otsu's effectiveness: between-class variance over total variance, in [0, 1]."""
    values = values.ravel()
    total = float(values.var())
    above = values > threshold
    share = float(above.mean())
    if total <= 0 or share in (0.0, 1.0):
        return 0.0
    gap = float(values[above].mean() - values[~above].mean())
    return share * (1 - share) * gap * gap / total


def first_mask(coarse: np.ndarray, correct_shading: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rough particle mask of a particles-bright coarse view, at the most telling smoothing.

    Parameters
    ----------
    coarse : (m, n) ndarray of float
        Coarse view, particles bright.
    correct_shading : bool
        Take a quadratic shading fit out of each smoothed view first.

    Returns
    -------
    smooth : (m, n) ndarray of float32
        The coarse view at the chosen smoothing.
    mask : (m, n) ndarray of bool
        Its Otsu mask (shading taken out if asked).
    """
    results = []
    for sigma in FIRST_SIGMAS_PX:
        factor = max(1, int(sigma))          # sigmas past 1 px on a block-mean pyramid
        if sigma > 1.0 and min(coarse.shape) < MIN_SIGMAS_ACROSS * sigma:
            break
        level = steps.block_mean(coarse, factor) if factor > 1 else coarse
        smooth = ndi.gaussian_filter(level, sigma / factor)
        shading = steps.shading(smooth) if correct_shading else np.zeros_like(smooth)
        threshold = steps.threshold_value(smooth - shading, "otsu")
        results.append((effectiveness(smooth - shading, threshold), factor, smooth, shading,
                        threshold))
    best = max(r[0] for r in results)
    good = min(best - EFFECTIVENESS_SLACK, EFFECTIVE_ENOUGH)
    _, factor, smooth, shading, threshold = next(r for r in results if r[0] >= good)
    smooth = steps.upsample(smooth, factor, coarse.shape).astype(np.float32, copy=False)
    shading = steps.upsample(shading, factor, coarse.shape)
    return smooth, smooth - shading > threshold

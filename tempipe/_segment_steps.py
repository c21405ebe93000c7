"""The steps of :func:`tempipe.segment.segment`, each a pure function on arrays.

Images here are float32 with the particles *bright* (the caller inverts dark-particle
images first). Sizes are in pixels and always come from the caller, who derives them from
the typical particle radius; the only constants are ratios.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import exposure, filters, measure, restoration

#: Long side of the coarse view used for polarity, first size estimate and background.
COARSE_SIDE_PX = 512
#: Gaussian sigma (coarse pixels) of the pyramid levels that vote on polarity; each
#: level halves the resolution, so the effective scales are 2, 4 and 8 coarse pixels.
POLARITY_SIGMA_PX = 2.0
POLARITY_LEVELS = 3
#: Share of strongest-gradient pixels (the edges) whose curvature votes on polarity.
POLARITY_EDGE_FRACTION = 0.1
#: The background's Gaussian is computed on a grid where its sigma is this many cells.
BACKGROUND_GRID_SIGMA = 4.0
#: Threshold statistics use about this many pixels (a regular subsample).
THRESHOLD_SAMPLES = 65_536
#: Holes below this fraction of the smallest kept particle are pinholes, filled before
#: the split (larger holes are filled per particle afterwards, see fill_particle_holes).
PINHOLE_FRACTION = 0.25
#: Truncation (in sigmas) of the denoising Gaussian.
GAUSS_TRUNCATE = 3.0

THRESHOLDS = {
    "otsu": filters.threshold_otsu,
    "li": filters.threshold_li,
    "triangle": filters.threshold_triangle,
    "yen": filters.threshold_yen,
    "isodata": filters.threshold_isodata,
    "mean": filters.threshold_mean,
}
DENOISERS = ("gaussian", "median", "bilateral", "none")
FULL = np.ones((3, 3), dtype=bool)


def block_sum(image: np.ndarray, factor: int) -> np.ndarray:
    """Sum over ``factor`` x ``factor`` blocks of an (M, N) image, zero-padded, as float32."""
    rows, cols = -(-image.shape[0] // factor), -(-image.shape[1] // factor)
    out = np.zeros((rows, cols), np.float32)
    for dr in range(factor):           # f^2 strided views: O(M N) work, no slow
        for dc in range(factor):       # reduction over a short inner axis
            view = image[dr::factor, dc::factor]
            out[:view.shape[0], :view.shape[1]] += view
    return out


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor`` x ``factor`` blocks of an (M, N) image (partial edge blocks
    average their own pixels)."""
    if factor <= 1:
        return image.astype(np.float32, copy=False)
    counts = block_sum(np.ones(image.shape[:2], np.float32), factor)
    return block_sum(image, factor) / counts


def upsample(small: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear inverse of :func:`block_mean`: (m, n) grid back to an (M, N) image."""
    if factor <= 1:
        return small[:shape[0], :shape[1]]
    (r_lo, r_hi, r_w), (c_lo, c_hi, c_w) = (
        _interpolation(n_small, factor, n_big) for n_small, n_big in zip(small.shape, shape))
    rows = small[r_lo] * (1 - r_w)[:, None] + small[r_hi] * r_w[:, None]
    return rows[:, c_lo] * (1 - c_w) + rows[:, c_hi] * c_w


def _interpolation(n_small: int, factor: int, n_big: int):
    """Neighbouring block indices and weight of the upper one for each of n_big pixels."""
    pos = np.clip((np.arange(n_big) + 0.5) / factor - 0.5, 0, n_small - 1)
    low = pos.astype(np.intp)
    high = np.minimum(low + 1, n_small - 1)
    return low, high, (pos - low).astype(np.float32)


def normalize(image: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray | None:
    """Map the percentile range to [0, 1] (clipped); None for a flat image."""
    step = max(1, int(np.sqrt(image.size / THRESHOLD_SAMPLES)))
    low, high = np.percentile(image[::step, ::step], percentiles)
    if not high - low > 1e-6 * max(abs(high), abs(low), 1e-12):
        return None
    out = (image.astype(np.float32) - np.float32(low)) / np.float32(high - low)
    return np.clip(out, 0.0, 1.0, out=out)


def coarse_view(image: np.ndarray) -> tuple[np.ndarray, int]:
    """Block-mean view whose long side is about ``COARSE_SIDE_PX``, and its factor."""
    factor = max(1, int(round(max(image.shape) / COARSE_SIDE_PX)))
    return block_mean(image, factor), factor


def polarity_vote(coarse: np.ndarray) -> float:
    """Mean sign of isophote curvature on the strongest edges, over a small pyramid.

    Particles are convex where they meet the background, so level lines curve around
    the particle side: positive votes mean bright particles, negative dark ones. Unlike
    "the minority phase", this does not flip when particles cover most of the field,
    and fine background texture has weak gradients, so it rarely reaches the edge set.

    Returns
    -------
    float
        In [-1, 1]; the sum of the levels' gradient-weighted mean signs divided by the
        number of levels.
    """
    level = coarse.astype(np.float32)
    votes = []
    for _ in range(POLARITY_LEVELS):
        if min(level.shape) < 8 * POLARITY_SIGMA_PX:
            break
        smooth = ndi.gaussian_filter(level, POLARITY_SIGMA_PX)
        gr, gc = np.gradient(smooth)
        grr, grc = np.gradient(gr)
        gcc = np.gradient(gc, axis=1)
        grad2 = gr * gr + gc * gc
        edges = grad2 >= np.quantile(grad2, 1.0 - POLARITY_EDGE_FRACTION)
        edges &= grad2 > 0
        if edges.any():
            # curvature of the level line times |grad|^3; positive around bright blobs
            bend = -(grr * gc * gc - 2 * gr * gc * grc + gcc * gr * gr)
            weight = np.sqrt(grad2[edges])
            votes.append(float(np.sum(np.sign(bend[edges]) * weight) / weight.sum()))
        level = block_mean(level, 2)
    return float(np.mean(votes)) if votes else 0.0


def threshold_value(image: np.ndarray, method: str) -> float:
    """Automatic global threshold of ``image`` by ``method`` (on a regular subsample)."""
    step = max(1, int(np.sqrt(image.size / THRESHOLD_SAMPLES)))
    return float(THRESHOLDS[method](image[::step, ::step]))


def contrast_ratio(image: np.ndarray, threshold: float) -> tuple[float, float]:
    """Class-median separation over the background's robust spread, and the separation.

    A field of pure noise split at its threshold gives a ratio near 2; real particles
    give tens. Used to return no particles for blank fields.
    """
    step = max(1, int(np.sqrt(image.size / THRESHOLD_SAMPLES)))
    values = image[::step, ::step].ravel()
    low, high = values[values <= threshold], values[values > threshold]
    if low.size == 0 or high.size == 0:
        return 0.0, 0.0
    bg = np.median(low)
    separation = float(np.median(high) - bg)
    spread = 1.4826 * float(np.median(np.abs(low - bg)))
    return (separation / spread if spread > 0 else np.inf), separation


def first_mask(coarse_fg: np.ndarray) -> np.ndarray:
    """Rough particle mask of the coarse view (light smoothing + Otsu)."""
    smooth = ndi.gaussian_filter(coarse_fg, 1.0)
    return smooth > filters.threshold_otsu(smooth)


def background(image: np.ndarray, coarse_mask: np.ndarray, factor: int,
               sigma_px: float) -> np.ndarray:
    """Smooth background under the particles (normalised convolution of non-particle pixels).

    Parameters
    ----------
    image : (M, N) ndarray
        Particles bright.
    coarse_mask : (m, n) ndarray of bool
        Rough particle mask on the coarse grid (``factor`` px per cell); its pixels and a
        margin are left out of the background average.
    sigma_px : float
        Gaussian scale of the background, full-resolution pixels.
    """
    margin = max(1, int(round(0.05 * sigma_px / factor)))
    keep = ~ndi.binary_dilation(coarse_mask, iterations=margin)
    if keep.mean() < 0.02:
        return np.zeros_like(image)
    grid = max(1, int(sigma_px / factor / BACKGROUND_GRID_SIGMA))
    coarse = block_mean(image, factor)
    weight = block_mean(keep.astype(np.float32), grid)
    total = block_mean(coarse * keep, grid)
    sigma = sigma_px / factor / grid
    weight_s = ndi.gaussian_filter(weight, sigma, mode="reflect")
    total_s = ndi.gaussian_filter(total, sigma, mode="reflect")
    fallback = float(np.median(coarse[keep]))
    bg = np.where(weight_s > 1e-3, total_s / np.maximum(weight_s, 1e-3), fallback)
    return upsample(bg.astype(np.float32), factor * grid, image.shape)


def clahe(image: np.ndarray, clip_limit: float, kernel_px: float) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation on the 1-99 % range."""
    low, high = np.percentile(image[::4, ::4], (1, 99))
    scaled = np.clip((image - low) / max(high - low, 1e-6), 0, 1)
    kernel = int(min(max(8, kernel_px), max(image.shape)))
    return exposure.equalize_adapthist(scaled, kernel_size=kernel,
                                       clip_limit=clip_limit).astype(np.float32)


def denoise(image: np.ndarray, method: str, sigma_px: float) -> np.ndarray:
    """Suppress pixel noise at scale ``sigma_px`` (``"none"`` or sigma 0 returns a copy)."""
    if method == "none" or sigma_px <= 0:
        return image.copy()
    if method == "gaussian":
        return ndi.gaussian_filter(image, sigma_px, truncate=GAUSS_TRUNCATE)
    if method == "median":
        size = 2 * int(round(sigma_px)) + 1
        return ndi.median_filter(image, size=size)
    low, high = np.percentile(image[::4, ::4], (1, 99))
    scale = max(high - low, 1e-6)
    out = restoration.denoise_bilateral((image - low) / scale, sigma_color=0.1,
                                        sigma_spatial=sigma_px)
    return (out * scale + low).astype(np.float32)


def remove_small(mask: np.ndarray, min_area_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Drop foreground components below ``min_area_px`` and fill pinholes.

    Returns
    -------
    mask : (M, N) ndarray of bool
        Cleaned mask.
    holes : (M, N) ndarray of int32
        The remaining enclosed holes (background not connected to the image border),
        numbered 1..K, for :func:`fill_particle_holes`.
    """
    lab, n = ndi.label(mask, structure=FULL)
    if n:
        mask = (np.bincount(lab.ravel()) >= min_area_px)[lab] & mask
    holes, n = ndi.label(~mask)
    if n <= 1:
        return mask, np.zeros(mask.shape, np.int32)
    area = np.bincount(holes.ravel())
    enclosed = np.ones(area.size, bool)
    enclosed[np.concatenate([holes[0], holes[-1], holes[:, 0], holes[:, -1]])] = False
    enclosed[0] = False
    pinhole = enclosed & (area < PINHOLE_FRACTION * min_area_px)
    mask = mask | pinhole[holes]
    keep = enclosed & ~pinhole
    lut = np.zeros(area.size, np.int32)
    lut[keep] = np.arange(1, keep.sum() + 1)
    return mask, lut[holes]


def fill_particle_holes(labels: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """Fill each hole enclosed by a single particle with that particle's label.

    Parameters
    ----------
    labels : (M, N) ndarray of int
        Particles.
    holes : (M, N) ndarray of int
        Enclosed background regions, as returned by :func:`remove_small`. A hole whose
        rim touches several particles (a gap between touching particles) or background
        stays background.
    """
    out = labels.copy()
    for k, sl in enumerate(ndi.find_objects(holes), start=1):
        if sl is None:
            continue
        sl = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
        hole = holes[sl] == k
        rim = labels[sl][ndi.binary_dilation(hole, structure=FULL) & ~hole]
        if rim.size and rim.min() > 0 and rim.min() == rim.max():
            out[sl][hole] = rim[0]
    return out


def neighbour_pairs(a: np.ndarray, b: np.ndarray):
    """Yield (K, 2) arrays of (a, b) values over 4-neighbour pixels with a > 0 and b > 0."""
    head, tail = slice(1, None), slice(None, -1)
    for sa, sb in (((slice(None), head), (slice(None), tail)),
                   ((head, slice(None)), (tail, slice(None)))):
        for x, y in ((a[sa], b[sb]), (a[sb], b[sa])):
            sel = (x > 0) & (y > 0)
            yield np.stack([x[sel], y[sel]], axis=1).astype(np.int64)


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
        region = labels[slices[lab - 1]] == lab
        hull = measure.regionprops(region.astype(np.uint8))[0].area_convex
        drop[lab] = areas[lab] / hull < max_solidity
    return np.where(drop[labels], 0, labels)


def relabel(labels: np.ndarray) -> np.ndarray:
    """Consecutive labels 1..N (order of the old labels kept), as int32."""
    present = np.bincount(labels.ravel()) > 0
    present[0] = False
    lut = np.zeros(present.size, np.int32)
    lut[present] = np.arange(1, present.sum() + 1)
    return lut[labels]

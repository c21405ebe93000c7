"""The steps of :func:`tempipe.segment.segment`, each a pure function on arrays.

Images here are float32 with the particles *bright* (the caller inverts dark-particle
images first). Sizes are in pixels and always come from the caller, who derives them from
the typical particle radius; the only constants are ratios.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import exposure, filters, restoration

#: Long side of the coarse view used for polarity, first size estimate and background.
COARSE_SIDE_PX = 512
#: Gaussian sigma (coarse pixels) of the pyramid levels that vote on polarity; each
#: level halves the resolution, so the effective scales are 2, 4 and 8 coarse pixels.
POLARITY_SIGMA_PX = 2.0
POLARITY_LEVELS = 3
#: Share of strongest-gradient pixels (the edges) whose curvature votes on polarity.
POLARITY_EDGE_FRACTION = 0.1
#: Rounds of the robust quadratic shading fit (each drops pixels above the surface).
SHADING_ITERATIONS = 4
#: The background's Gaussian is computed on a grid where its sigma is this many cells.
BACKGROUND_GRID_SIGMA = 4.0
#: Before thresholding, values more than this many robust sd below the median are clipped.
DARK_CLIP_MADS = 4.0
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
    if factor > 4:                     # long inner axes: one reshaped reduction is fast
        padded = np.zeros((rows * factor, cols * factor), np.float32)
        padded[:image.shape[0], :image.shape[1]] = image
        return padded.reshape(rows, factor, cols, factor).sum(axis=(1, 3))
    out = np.zeros((rows, cols), np.float32)
    for dr in range(factor):           # few strided views: O(M N) work, no slow
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


def max3x3(image: np.ndarray) -> np.ndarray:
    """``ndi.maximum_filter(image, size=3)`` (edges reflected, i.e. ignored), in four
    array passes: several times faster on large images."""
    out = image.copy()
    np.maximum(out[1:], image[:-1], out=out[1:])
    np.maximum(out[:-1], image[1:], out=out[:-1])
    rows = out.copy()
    np.maximum(out[:, 1:], rows[:, :-1], out=out[:, 1:])
    np.maximum(out[:, :-1], rows[:, 1:], out=out[:, :-1])
    return out


def upsample(small: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear inverse of :func:`block_mean`: (m, n) grid back to an (M, N) image."""
    if factor <= 1:
        return small[:shape[0], :shape[1]]
    (r_lo, r_hi, r_w), (c_lo, c_hi, c_w) = (
        _interpolation(n_small, factor, n_big) for n_small, n_big in zip(small.shape, shape))
    rows = small[r_lo] * (1 - r_w)[:, None] + small[r_hi] * r_w[:, None]
    return rows[:, c_lo] * (1 - c_w) + rows[:, c_hi] * c_w


def expand(small: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour inverse of :func:`block_mean` (for fields smooth on the grid)."""
    if factor <= 1:
        return small[:shape[0], :shape[1]]
    big = np.repeat(np.repeat(small, factor, axis=0), factor, axis=1)
    return big[:shape[0], :shape[1]]


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
    """Block-mean view whose long side is about ``COARSE_SIDE_PX`` (the short side kept at
    32 px or more), and its factor."""
    factor = max(1, min(int(round(max(image.shape) / COARSE_SIDE_PX)), min(image.shape) // 32))
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
    """Automatic global threshold of ``image`` by ``method`` (on a regular subsample).

    Particles are bright, so values far below the median (dark labels, boxes and bars
    of a figure; deep shadows) cannot matter to where particles end: they are clipped to
    ``DARK_CLIP_MADS`` robust sd below the median first, so that they do not draw the
    threshold into the background.
    """
    step = max(1, int(np.sqrt(image.size / THRESHOLD_SAMPLES)))
    values = image[::step, ::step]
    median = float(np.median(values))
    spread = 1.4826 * float(np.median(np.abs(values - median)))
    if spread > 0:
        values = np.maximum(values, median - DARK_CLIP_MADS * spread)
    return float(THRESHOLDS[method](values))


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


def first_mask(smooth: np.ndarray) -> np.ndarray:
    """Rough particle mask of the (lightly smoothed) coarse view: Otsu's threshold."""
    return smooth > threshold_value(smooth, "otsu")


def shading(coarse: np.ndarray) -> np.ndarray:
    """Quadratic surface through the background of a particles-bright coarse view.

    A first, size-free estimate of uneven illumination, so the first particle mask (and
    with it the particle size) is not swamped by a dark corner. Fitted by least squares
    on a subsample, dropping pixels that stand above the surface (particles), a few times.

    Returns
    -------
    (m, n) ndarray of float32
    """
    step = max(1, int(np.sqrt(coarse.size / 4096)))
    r = np.linspace(-1, 1, coarse.shape[0], dtype=np.float32)
    c = np.linspace(-1, 1, coarse.shape[1], dtype=np.float32)
    rs, cs = np.meshgrid(r[::step], c[::step], indexing="ij")
    rs, cs = rs.ravel(), cs.ravel()
    design = np.stack([np.ones_like(rs), rs, cs, rs * rs, rs * cs, cs * cs], axis=1)
    design = design.astype(np.float64)
    values = coarse[::step, ::step].ravel().astype(np.float64)
    keep = np.ones(values.size, bool)
    for _ in range(SHADING_ITERATIONS):
        sub = design[keep]              # normal equations: 6 x 6, well conditioned on [-1, 1]
        coef = np.linalg.solve(sub.T @ sub, sub.T @ values[keep])
        residual = values - design @ coef
        spread = 1.4826 * np.median(np.abs(residual[keep] - np.median(residual[keep])))
        keep = residual < spread
        if keep.sum() < design.shape[1] * 4:
            break
    c0, c1, c2, c3, c4, c5 = coef
    return ((c0 + c1 * r + c3 * r * r)[:, None] + (c2 * c + c5 * c * c)[None, :]
            + c4 * np.outer(r, c)).astype(np.float32)


def radius_from_distance(mask: np.ndarray, distance: np.ndarray) -> float:
    """Area-weighted median of the blobs' distance-transform maxima (NaN if empty).

    See :func:`tempipe.segment.estimate_particle_radius`.
    """
    lab, n = ndi.label(mask, structure=FULL)
    if n == 0:
        return float("nan")
    peaks = mask & (distance >= max3x3(distance))
    radii = np.zeros(n + 1)
    np.maximum.at(radii, lab[peaks], distance[peaks])
    areas = np.bincount(lab.ravel(), minlength=n + 1)[1:].astype(float)
    order = np.argsort(radii[1:])
    cumulative = np.cumsum(areas[order])
    return float(radii[1:][order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def first_radius(mask: np.ndarray) -> float:
    """Rough typical radius (px of ``mask``), from a half-resolution distance transform."""
    if min(mask.shape) < 64:
        return radius_from_distance(mask, ndi.distance_transform_edt(mask))
    half = block_sum(mask, 2) >= 2
    return 2 * radius_from_distance(half, ndi.distance_transform_edt(half))


def background(coarse: np.ndarray, coarse_mask: np.ndarray, sigma: float) -> np.ndarray:
    """Smooth background under the particles (normalised convolution of non-particle pixels).

    Parameters
    ----------
    coarse : (m, n) ndarray
        Coarse view of the image, particles bright.
    coarse_mask : (m, n) ndarray of bool
        Rough particle mask on that grid; its pixels and a margin are left out of the
        background average.
    sigma : float
        Gaussian scale of the background, in coarse cells.

    Returns
    -------
    (m, n) ndarray of float32
        The background on the coarse grid (zeros when almost nothing is background).
    """
    margin = max(1, int(round(0.05 * sigma)))
    keep = ~ndi.maximum_filter(coarse_mask, size=2 * margin + 1)
    if keep.mean() < 0.02:
        return np.zeros(coarse.shape, np.float32)
    grid = max(1, int(sigma / BACKGROUND_GRID_SIGMA))
    weight = ndi.gaussian_filter(block_mean(keep.astype(np.float32), grid), sigma / grid)
    total = ndi.gaussian_filter(block_mean(coarse * keep, grid), sigma / grid)
    fallback = float(np.mean(coarse[keep]))
    bg = np.where(weight > 1e-3, total / np.maximum(weight, 1e-3), fallback)
    return upsample(bg.astype(np.float32), grid, coarse.shape)


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


def clean_mask(mask: np.ndarray, min_area_px: float):
    """Fill pinholes, then drop foreground components below ``min_area_px``.

    Parameters
    ----------
    mask : (M, N) ndarray of bool
        Thresholded particle mask.
    min_area_px : float
        Smallest particle kept; holes below ``PINHOLE_FRACTION`` of it are filled.

    Returns
    -------
    mask : (M, N) ndarray of bool
        Cleaned mask.
    components : (M, N) ndarray of int32
        Its 8-connected components, numbered 1..n.
    n : int
        Number of components.
    holes : (M, N) ndarray of int32
        The larger enclosed holes (background not connected to the image border),
        numbered 1..K, for :func:`fill_particle_holes`.
    """
    holes, n_holes = ndi.label(~mask)
    area = np.bincount(holes.ravel(), minlength=n_holes + 1)
    enclosed = np.ones(area.size, bool)
    enclosed[np.concatenate([holes[0], holes[-1], holes[:, 0], holes[:, -1]])] = False
    enclosed[0] = False
    pinhole = enclosed & (area < PINHOLE_FRACTION * min_area_px)
    if pinhole.any():
        mask = mask | pinhole[holes]
    components, n = ndi.label(mask, structure=FULL)
    keep = np.bincount(components.ravel(), minlength=n + 1) >= min_area_px
    keep[0] = False
    if not keep[1:].all():
        lut = np.zeros(n + 1, np.int32)
        lut[keep] = np.arange(1, keep.sum() + 1)
        components, n = lut[components], int(keep.sum())
        mask = components > 0
    hole_ids = enclosed & ~pinhole
    lut = np.zeros(area.size, np.int32)
    lut[hole_ids] = np.arange(1, hole_ids.sum() + 1)
    return mask, components.astype(np.int32, copy=False), n, lut[holes]


def fill_particle_holes(labels: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """Fill each hole enclosed by a single particle with that particle's label.

    Parameters
    ----------
    labels : (M, N) ndarray of int
        Particles.
    holes : (M, N) ndarray of int
        Enclosed background regions, as returned by :func:`clean_mask`. A hole whose
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


def relabel(labels: np.ndarray) -> np.ndarray:
    """Consecutive labels 1..N (order of the old labels kept), as int32."""
    present = np.bincount(labels.ravel()) > 0
    present[0] = False
    lut = np.zeros(present.size, np.int32)
    lut[present] = np.arange(1, present.sum() + 1)
    return lut[labels]

"""Particle segmentation of TEM micrographs (the paper's "Image processing", Fig. 1).

:func:`segment` turns a grey micrograph into an instance label image: the figure's data
bar, label boxes and solid scale bars are found and filled in from their surroundings
(:mod:`tempipe._segment_annotations`), then robust contrast normalisation, polarity
detection (dark particles on a bright background as in bright-field TEM, or bright on
dark as in HAADF/SEM), a first particle mask at the smoothing where particles stand out
best (:mod:`tempipe._segment_scale`), large-scale background correction, optional CLAHE,
denoising, an automatic threshold that labels and shadows cannot hijack, a blank-field
test against the pixel noise, the rejection of blobs cut out of the grain of the support
(:mod:`tempipe._segment_noise`), clean-up, a distance-transform watershed that splits
touching particles without cutting concave or elongated ones (the faint intensity valley
between particles pressed side by side counts as a neck), the paper's erode-then-rebuild
step, and a filter for unseparable agglomerates.

Every length is a multiple of the typical particle radius, which is estimated from the
image (:func:`estimate_particle_radius`), so the same defaults serve particles 10 px and
100 px across. Particles cut by the image border are kept (the label image is a faithful
segmentation of what is visible); :func:`tempipe.pipeline.analyze_image` drops them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import clear_border as _clear_border

from tempipe import _segment_annotations as annotations
from tempipe import _segment_noise as noise
from tempipe import _segment_outliers as outliers
from tempipe import _segment_scale as scale
from tempipe import _segment_split as split
from tempipe import _segment_steps as steps
from tempipe._segment_params import SegmentParams
from tempipe.errors import ParameterError

__all__ = ["SegmentParams", "SegmentDetails", "segment", "segment_with_details",
           "estimate_particle_radius", "detect_polarity"]

#: Gaussian denoising never goes below this sigma (px): the scale of pixel noise.
MIN_DENOISE_SIGMA_PX = 0.7
#: The split strength never goes below this (px): the rounding error of the distance map.
MIN_SPLIT_H_PX = 1.0
#: Maxima and passes of the distance transform are found on a grid with about this many
#: cells per typical radius (or at full resolution for smaller particles).
SPLIT_GRID_RADIUS_PX = 7.0
#: Valleys between touching particles are looked for this many denoising sigmas wide.
VALLEY_REACH_SIGMAS = 2.0
#: ... and must be deeper than this many times the noise of the valley test (the robust
#: sd of intensity differences inside particles), so noise alone rarely cuts.
VALLEY_NOISE = 2.5
#: The blank-field test halves its coarse view while the short side stays this long.
SNR_MIN_SIDE_PX = 128
#: Effectiveness that makes the pixels below the threshold two-class (see _threshold).
NESTED_EFFECTIVENESS = 0.8
#: CLAHE tiles are this many typical radii wide.
CLAHE_KERNEL_RADII = 8.0


@dataclass(frozen=True)
class SegmentDetails:
    """What :func:`segment_with_details` saw on the way (the UI shows these).

    Attributes
    ----------
    labels : (M, N) ndarray of int32
        The result of :func:`segment`.
    polarity : str
        "dark" or "bright" (detected or given).
    particle_radius_px : float
        Typical radius used for every size-dependent setting (NaN for an empty field).
    threshold : float
        Threshold on the processed image (particles bright, background near 0).
    processed : (M, N) ndarray of float32
        Normalised, inverted if needed, background-corrected, denoised image.
    mask : (M, N) ndarray of bool
        Cleaned binary mask before splitting (Fig. 1b).
    coarse_distance : (m, n) ndarray of float32
        Distance transform of the mask (intensity valleys between touching particles
        taken out) on a grid ``grid_factor`` times coarser, in grid cells.
    grid_factor : int
        Coarsening of the grid on which maxima and passes were found.
    distance : (M, N) ndarray of float32
        Property: ``coarse_distance`` in px, expanded to the image grid; its maxima
        seed the watershed (the "water wells" of Fig. 1c).
    """

    labels: np.ndarray
    polarity: str
    particle_radius_px: float
    threshold: float
    processed: np.ndarray
    mask: np.ndarray
    coarse_distance: np.ndarray = field(repr=False)
    grid_factor: int = 1

    @property
    def distance(self) -> np.ndarray:
        """(M, N) distance transform in px (see the class docstring)."""
        f = self.grid_factor
        full = np.repeat(np.repeat(self.coarse_distance * f, f, axis=0), f, axis=1)
        return full[:self.labels.shape[0], :self.labels.shape[1]]


def _check_image(image) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise ParameterError(
            f"image must be a 2-D grey array (M, N), got shape {arr.shape}; convert colour "
            "images to grey first (tempipe.io.load_micrograph does).")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise ParameterError(
            f"image must hold integer or floating-point intensities, got dtype {arr.dtype}.")
    if min(arr.shape) < 16:
        raise ParameterError(f"image must be at least 16 x 16 pixels, got {arr.shape}: too "
                             "small to hold a measurable particle; use the full micrograph.")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ParameterError(
            "image contains NaN or infinite values; replace them (e.g. np.nan_to_num) or "
            "crop them away before segmenting.")
    return arr


def _check_params(params) -> SegmentParams:
    if params is None:
        return SegmentParams()
    if not isinstance(params, SegmentParams):
        raise ParameterError(
            f"params must be a tempipe.segment.SegmentParams, got {type(params).__name__}.")
    return params


def estimate_particle_radius(binary) -> float:
    """Typical particle radius (px) of a binary mask: the inscribed radius of its blobs.

    The median, weighted by blob area, of each connected blob's distance-transform
    maximum. Touching particles keep their own inscribed radius, and specks of noise
    weigh little, so the estimate holds on raw thresholded masks.

    Parameters
    ----------
    binary : (M, N) array_like of bool
        Particle mask.

    Returns
    -------
    float
        Radius in pixels; NaN when the mask is empty.

    Examples
    --------
    >>> from skimage.draw import disk
    >>> m = np.zeros((64, 64), bool); m[disk((20, 20), 10)] = True
    >>> round(estimate_particle_radius(m))
    10
    """
    mask = np.asarray(binary)
    if mask.ndim != 2:
        raise ParameterError(f"binary must be a 2-D mask (M, N), got shape {mask.shape}.")
    mask = mask.astype(bool)
    return steps.radius_from_distance(mask, ndi.distance_transform_edt(mask))


def detect_polarity(image) -> str:
    """Whether particles are "dark" or "bright" relative to the background.

    Votes with the curvature of the strongest edges at three scales (after filling in the
    figure's data bar, label boxes and solid scale bars): particle outlines
    are convex seen from the particle side. This does not flip when particles cover
    most of the field, nor on a textured background whose gradients are weaker than the
    particle edges. Ties (no edges) answer "dark", the bright-field TEM case.

    Parameters
    ----------
    image : (M, N) array_like
        Grey micrograph.

    Returns
    -------
    str
        "dark" or "bright".

    Examples
    --------
    >>> from skimage.draw import disk
    >>> im = np.ones((64, 64)); im[disk((30, 30), 12)] = 0.2
    >>> detect_polarity(im), detect_polarity(1 - im)
    ('dark', 'bright')
    """
    arr = _check_image(image)
    arr = annotations.fill_from_outside(arr, annotations.annotation_mask(arr))
    norm = steps.normalize(arr, SegmentParams().normalize_percentiles)
    if norm is None:
        return "dark"
    return "bright" if steps.polarity_vote(steps.coarse_view(norm)[0]) > 0 else "dark"


def segment(image, params: SegmentParams | None = None) -> np.ndarray:
    """Instance-segment the particles of a micrograph.

    Parameters
    ----------
    image : (M, N) array_like of int or float
        Grey micrograph, any intensity range.
    params : SegmentParams, optional
        Knobs; default ``SegmentParams()``.

    Returns
    -------
    (M, N) ndarray of int32
        0 = background, 1..N = particles (consecutive). Particles cut by the image
        border are kept unless ``params.clear_border``.

    Raises
    ------
    ParameterError
        For a non-2-D image, a non-numeric dtype, NaN/inf values, an image smaller than
        16 x 16, or ``params`` that is not a SegmentParams.

    Examples
    --------
    >>> from skimage.draw import disk
    >>> im = np.ones((96, 96))
    >>> for c in (25, 70): im[disk((30, c), 12)] = 0.3
    >>> int(segment(im).max())
    2
    """
    return segment_with_details(image, params).labels


def segment_with_details(image, params: SegmentParams | None = None) -> SegmentDetails:
    """:func:`segment`, also returning the polarity, radius, threshold and masks it used.

    Parameters and errors as :func:`segment`.
    """
    arr, params = _check_image(image), _check_params(params)
    drawn = annotations.annotation_mask(arr) if params.ignore_annotations else None
    if drawn is not None and drawn.any():
        arr = annotations.fill_from_outside(arr, drawn)
    else:
        drawn = None
    details = _segment_filled(arr, params)
    if drawn is not None and details.labels.any():
        details = dataclasses.replace(
            details, labels=steps.relabel(np.where(drawn, 0, details.labels)),
            mask=details.mask & ~drawn)
    return details


def _segment_filled(arr, params) -> SegmentDetails:
    """:func:`segment_with_details` on an image whose annotations are filled in."""
    norm = steps.normalize(arr, params.normalize_percentiles)
    if norm is None:                                    # flat image
        return _empty(arr.shape, params.polarity, np.zeros(arr.shape, np.float32))
    coarse, factor = steps.coarse_view(norm)
    polarity = params.polarity
    if polarity == "auto":
        polarity = "bright" if steps.polarity_vote(coarse) > 0 else "dark"
    if polarity == "dark":                              # from here on particles are bright
        norm, coarse = 1.0 - norm, 1.0 - coarse
    flat = _flatten(coarse, factor, params)
    if flat is None:
        return _empty(arr.shape, polarity, norm)
    background, radius = flat
    sigma = _denoise_sigma(radius, params)
    processed = _enhance(norm, background, factor, radius, sigma, params)
    threshold = _threshold(processed, params.threshold_method)
    if _signal_to_noise(arr, polarity, sigma / factor, params) < params.min_contrast:
        return _empty(arr.shape, polarity, processed, threshold)
    ratio, separation = steps.contrast_ratio(processed, threshold)
    threshold += params.threshold_offset * separation
    spread = separation / ratio if ratio > 0 else 0.0    # of the background class
    mask = noise.significant_blobs(processed, processed > threshold,
                                   threshold + params.min_peak_contrast * spread,
                                   params.min_edge_contrast)
    cut = None
    if params.split and params.valley_depth > 0:
        cut = split.valleys(processed, mask, params.valley_depth * separation,
                            max(2, int(round(VALLEY_REACH_SIGMAS * sigma))), VALLEY_NOISE)
    grid, coarse_split, radius = _split_grid(mask, cut, radius, params)
    if not np.isfinite(radius):
        return _empty(arr.shape, polarity, processed, threshold)
    mask, components, n, holes = steps.clean_mask(mask, params.min_size * np.pi * radius ** 2)
    labels = _split(mask, (components, n), holes, radius, grid, coarse_split, cut, params)
    return SegmentDetails(steps.relabel(labels), polarity, float(radius), float(threshold),
                          processed, mask, coarse_split[1], grid)


def _threshold(processed, method) -> float:
    """Global threshold, unless a few extreme pixels (white labels) took the split.

    When the pixels below the threshold are themselves clearly two-class (Otsu
    effectiveness above ``NESTED_EFFECTIVENESS``) and their upper class outnumbers the
    pixels above the threshold, the particles are that upper class: the threshold then
    split the particles from a handful of brighter annotation pixels.
    """
    threshold = steps.threshold_value(processed, method)
    step = max(1, int(np.sqrt(processed.size / steps.THRESHOLD_SAMPLES)))
    values = processed[::step, ::step].ravel()
    below = values[values <= threshold]
    if below.size < 16 or np.ptp(below) <= 0:
        return threshold
    lower = steps.threshold_value(below[None, :], method)
    if (scale.effectiveness(below, lower) >= NESTED_EFFECTIVENESS
            and np.count_nonzero(below > lower) > np.count_nonzero(values > threshold)):
        return lower
    return threshold


def _flatten(coarse, factor, params) -> tuple[np.ndarray, float] | None:
    """Background on the coarse grid and first radius (px); None when nothing stands out.

    The rough particle mask that keeps particles out of the background estimate is
    itself fooled by strong shading and by the grain of the support: it is first made on
    the image less a quadratic shading fit, at the smoothing where particles stand out
    best (see _segment_scale), then mask and background are refined twice.
    """
    smooth, coarse_mask = scale.first_mask(coarse, params.background_correction)
    radius = params.particle_radius_px or factor * steps.first_radius(coarse_mask)
    background = np.zeros(coarse.shape, np.float32)
    if params.background_correction and np.isfinite(radius):
        for _ in range(2):
            background = steps.background(coarse, coarse_mask,
                                          params.background_scale * radius / factor)
            coarse_mask = steps.first_mask(smooth - background)
    return (background, radius) if np.isfinite(radius) else None


def _signal_to_noise(arr, polarity, sigma_coarse, params) -> float:
    """Particle-background separation over the smoothed pixel noise (see _segment_noise),
    on the coarse view of the image scaled but not clipped (clipping would bend a ramp)."""
    coarse = steps.coarse_view(arr.astype(np.float32, copy=False))[0]
    if min(coarse.shape) >= 2 * SNR_MIN_SIDE_PX:       # a quarter of the pixels will do
        coarse, sigma_coarse = steps.block_mean(coarse, 2), sigma_coarse / 2
    step = max(1, int(np.sqrt(coarse.size / steps.THRESHOLD_SAMPLES)))
    low, high = np.percentile(coarse[::step, ::step], params.normalize_percentiles)
    coarse = (coarse - low) / max(high - low, 1e-12)
    if polarity == "dark":
        coarse = 1.0 - coarse
    shading = steps.shading(ndi.gaussian_filter(coarse, 1.0))
    return noise.signal_to_noise(coarse, shading, sigma_coarse)


def _split_grid(mask, cut, radius, params):
    """Grid factor for the split, the coarse mask and distance on it, and the radius.

    The grid keeps about ``SPLIT_GRID_RADIUS_PX`` cells per particle radius; the first
    radius can be too large (touching particles not yet told apart), so a grid that
    turns out too coarse is refined once.
    """
    grid = max(1, int(radius / SPLIT_GRID_RADIUS_PX))
    for attempt in range(2):
        coarse = split.coarse_distance(mask, grid, cut)
        radius = params.particle_radius_px or grid * steps.radius_from_distance(*coarse)
        if not np.isfinite(radius):
            break
        finer = max(1, int(radius / SPLIT_GRID_RADIUS_PX))
        if attempt == 1 or finer >= grid:
            break
        grid = finer
    return grid, coarse, radius


def _denoise_sigma(radius, params) -> float:
    if params.denoise_sigma == 0 or params.denoise == "none":
        return 0.0
    return max(params.denoise_sigma * radius, MIN_DENOISE_SIGMA_PX)


def _enhance(norm, background, factor, radius, sigma, params) -> np.ndarray:
    """Background correction, CLAHE and denoising of the particles-bright image."""
    image = norm
    if params.background_correction:
        image = image - steps.expand(background, factor, image.shape)
    if params.clahe:
        image = steps.clahe(image, params.clahe_clip_limit, CLAHE_KERNEL_RADII * radius)
    return steps.denoise(image.astype(np.float32, copy=False), params.denoise, sigma)


def _split(mask, components, holes, radius, grid, coarse, cut, params) -> np.ndarray:
    """Watershed split, erode-rebuild, hole filling, border and outlier filters."""
    h_px = max(params.split_h * radius, MIN_SPLIT_H_PX) if params.split else np.inf
    labels = split.split_touching(mask, h_px, grid, coarse, cut,
                                  erode_px=params.erode_depth * radius, components=components)
    if params.fill_holes:
        labels = steps.fill_particle_holes(labels, holes)
    if params.clear_border:
        labels = _clear_border(labels)
    if params.outlier_filter:
        labels = outliers.drop_outliers(labels, params.outlier_area_factor,
                                        params.outlier_max_solidity)
    return labels


def _empty(shape, polarity, processed, threshold=float("nan")) -> SegmentDetails:
    zeros = np.zeros(shape, np.int32)
    return SegmentDetails(zeros, "dark" if polarity == "auto" else polarity, float("nan"),
                          float(threshold), processed, zeros.astype(bool),
                          zeros.astype(np.float32), 1)

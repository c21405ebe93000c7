"""Particle segmentation of TEM micrographs (the paper's "Image processing", Fig. 1).

:func:`segment` turns a grey micrograph into an instance label image: robust contrast
normalisation, polarity detection (dark particles on a bright background as in
bright-field TEM, or bright on dark as in HAADF/SEM), large-scale background correction,
optional CLAHE, denoising, an automatic threshold, clean-up, a distance-transform
watershed that splits touching particles without cutting concave or elongated ones, the
paper's erode-then-rebuild step, and a filter for unseparable agglomerates.

Every length is a multiple of the typical particle radius, which is estimated from the
image (:func:`estimate_particle_radius`), so the same defaults serve particles 10 px and
100 px across. Particles cut by the image border are kept (the label image is a faithful
segmentation of what is visible); :func:`tempipe.pipeline.analyze_image` drops them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import clear_border as _clear_border

from tempipe import _segment_split as split
from tempipe import _segment_steps as steps
from tempipe.errors import ParameterError

__all__ = ["SegmentParams", "SegmentDetails", "segment", "segment_with_details",
           "estimate_particle_radius", "detect_polarity"]

_POLARITIES = ("auto", "dark", "bright")
#: Gaussian denoising never goes below this sigma (px): the scale of pixel noise.
MIN_DENOISE_SIGMA_PX = 1.0
#: The split strength never goes below this (px): the rounding error of the distance map.
MIN_SPLIT_H_PX = 1.0
#: Maxima and passes of the distance transform are found on a grid with about this many
#: cells per typical radius (or at full resolution for smaller particles).
SPLIT_GRID_RADIUS_PX = 7.0
#: Valleys between touching particles are looked for this many denoising sigmas wide.
VALLEY_REACH_SIGMAS = 2.0
#: CLAHE tiles are this many typical radii wide.
CLAHE_KERNEL_RADII = 8.0


def _help(text: str, **limits) -> dict:
    return {"help": text, **limits}


@dataclass(frozen=True)
class SegmentParams:
    """Every knob of :func:`segment`; defaults suit ordinary bright-field TEM.

    Lengths are in units of the typical particle radius ``r`` (estimated from the image
    unless ``particle_radius_px`` is given), areas in units of ``pi r**2``. Each field's
    ``metadata["help"]`` is a one-line explanation (the UI shows it), listed below.

    Raises
    ------
    ParameterError
        On construction, for a value of the wrong type or out of range.
    """

    polarity: str = field(default="auto", metadata=_help(
        '"dark" particles on a bright background (bright-field TEM), "bright" on dark '
        '(HAADF, SEM), or "auto" to detect it (see detect_polarity).', choices=_POLARITIES))
    particle_radius_px: float | None = field(default=None, metadata=_help(
        "Typical particle radius in pixels; None estimates it from the image.", low=0.5))
    normalize_percentiles: tuple[float, float] = field(default=(0.5, 99.5), metadata=_help(
        "Intensity percentiles mapped to 0 and 1 before processing (robust to hot pixels, "
        "scale bars and text)."))
    background_correction: bool = field(default=True, metadata=_help(
        "Subtract a smooth background (uneven illumination, thickness gradients) estimated "
        "from the pixels between particles."))
    background_scale: float = field(default=8.0, metadata=_help(
        "Gaussian scale of that background, in typical radii; larger = flatter.", low=1.0))
    clahe: bool = field(default=False, metadata=_help(
        "Contrast-limited adaptive histogram equalisation before thresholding (helps "
        "faint particles on uneven backgrounds; slower, and can bias edges)."))
    clahe_clip_limit: float = field(default=0.01, metadata=_help(
        "CLAHE clip limit, in (0, 1]; higher = stronger local contrast.", low=0.0, high=1.0))
    denoise: str = field(default="gaussian", metadata=_help(
        'Noise filter before thresholding: "gaussian" (fast), "median", "bilateral" '
        '(edge-preserving, slow) or "none".', choices=steps.DENOISERS))
    denoise_sigma: float = field(default=0.12, metadata=_help(
        "Filter scale in typical radii (never below 1 px).", low=0.0, high=2.0))
    threshold_method: str = field(default="otsu", metadata=_help(
        "Automatic global threshold (scikit-image threshold_<method>).",
        choices=tuple(steps.THRESHOLDS)))
    threshold_offset: float = field(default=0.0, metadata=_help(
        "Shift of the threshold as a fraction of the particle-background contrast; "
        "positive keeps only the most contrasted pixels (smaller particles).",
        low=-1.0, high=1.0))
    min_contrast: float = field(default=3.0, metadata=_help(
        "Particle-background contrast needed, in units of the background's noise spread; "
        "below it the field is taken as empty.", low=0.0))
    min_size: float = field(default=0.1, metadata=_help(
        "Particles smaller than this fraction of the typical area are dropped as debris.",
        low=0.0, high=1.0))
    fill_holes: bool = field(default=True, metadata=_help(
        "Fill holes enclosed by a single particle (gaps between touching particles stay)."))
    split: bool = field(default=True, metadata=_help(
        "Split touching particles with a distance-transform watershed."))
    valley_depth: float = field(default=0.15, metadata=_help(
        "Faint intensity valleys deeper than this fraction of the particle-background "
        "contrast separate particles pressed side by side (0 = distance map only).",
        low=0.0, high=1.0))
    split_h: float = field(default=0.25, metadata=_help(
        "Split strength: touching blobs are split when the neck between them is narrower "
        "than each blob by this many typical radii (h-maxima of the distance transform). "
        "Lower = split more.", low=0.0, high=2.0))
    erode_depth: float = field(default=0.1, metadata=_help(
        "Erode-then-rebuild depth for touching particles, in typical radii (removes thin "
        "bridges and overlap slivers); 0 switches it off.", low=0.0, high=1.0))
    clear_border: bool = field(default=False, metadata=_help(
        "Drop particles cut by the image border (the pipeline drops them anyway)."))
    outlier_filter: bool = field(default=True, metadata=_help(
        "Drop unseparable agglomerates: regions larger than outlier_area_factor x the "
        "median area whose solidity is below outlier_max_solidity."))
    outlier_area_factor: float = field(default=3.0, metadata=_help(
        "Area (x median particle area) above which a region may be an agglomerate.", low=1.0))
    outlier_max_solidity: float = field(default=0.8, metadata=_help(
        "Large regions with a solidity (area / convex area) below this are dropped.",
        low=0.0, high=1.0))

    def __post_init__(self):
        for f in fields(self):
            _check_field(f, getattr(self, f.name))
        low, high = self.normalize_percentiles
        if not 0 <= low < high <= 100:
            raise ParameterError(
                f"SegmentParams.normalize_percentiles must be (low, high) with "
                f"0 <= low < high <= 100, got {self.normalize_percentiles!r}.")


def _check_field(f, value) -> None:
    name, meta = f"SegmentParams.{f.name}", f.metadata
    if "choices" in meta:
        if value not in meta["choices"]:
            raise ParameterError(f"{name} must be one of {list(meta['choices'])}, got {value!r}.")
        return
    if f.type == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise ParameterError(f"{name} must be True or False, got {value!r}.")
        return
    if f.name == "normalize_percentiles":
        if not (isinstance(value, (tuple, list)) and len(value) == 2
                and all(_is_number(v) for v in value)):
            raise ParameterError(f"{name} must be a pair of numbers, got {value!r}.")
        return
    if value is None and f.name == "particle_radius_px":
        return
    if not _is_number(value) or not np.isfinite(value):
        raise ParameterError(f"{name} must be a finite number, got {value!r}.")
    low, high = meta.get("low", -np.inf), meta.get("high", np.inf)
    strict_low = f.name in ("clahe_clip_limit", "particle_radius_px")
    if value < low or (strict_low and value == low) or value > high:
        bound = ">" if strict_low else ">="
        upper = f" and <= {high}" if np.isfinite(high) else ""
        raise ParameterError(f"{name} must be {bound} {low}{upper}, got {value!r}.")


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


SegmentParams.__doc__ += "\n    Parameters\n    ----------\n" + "".join(
    f"    {f.name} : {f.type}, default {f.default!r}\n        {f.metadata['help']}\n"
    for f in fields(SegmentParams))


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
    distance : (M, N) ndarray of float32
        Its distance transform in px, whose maxima seed the watershed (Fig. 1c);
        computed on a grid ``grid_factor`` times coarser and expanded to (M, N).
    grid_factor : int
        Coarsening of the grid on which maxima and passes were found.
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
        raise ParameterError(f"image must be at least 16 x 16 pixels, got {arr.shape}.")
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
    return _radius_from(mask, ndi.distance_transform_edt(mask))


def _radius_from(mask: np.ndarray, distance: np.ndarray) -> float:
    """Area-weighted median of the blobs' distance maxima (see estimate_particle_radius)."""
    lab, n = ndi.label(mask, structure=steps.FULL)
    if n == 0:
        return float("nan")
    peaks = mask & (distance >= ndi.maximum_filter(distance, size=3))
    radii = np.zeros(n + 1)
    np.maximum.at(radii, lab[peaks], distance[peaks])
    areas = np.bincount(lab.ravel(), minlength=n + 1)[1:].astype(float)
    radii = radii[1:]
    order = np.argsort(radii)
    cumulative = np.cumsum(areas[order])
    return float(radii[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def detect_polarity(image) -> str:
    """Whether particles are "dark" or "bright" relative to the background.

    Votes with the curvature of the strongest edges at three scales: particle outlines
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
    norm = steps.normalize(arr, params.normalize_percentiles)
    if norm is None:
        return _empty(arr.shape, params.polarity, np.zeros(arr.shape, np.float32))
    coarse, factor = steps.coarse_view(norm)
    polarity = params.polarity
    if polarity == "auto":
        polarity = "bright" if steps.polarity_vote(coarse) > 0 else "dark"
    if polarity == "dark":
        norm, coarse = 1.0 - norm, 1.0 - coarse
    coarse_mask = steps.first_mask(coarse)
    radius = params.particle_radius_px or factor * estimate_particle_radius(coarse_mask)
    if not np.isfinite(radius):
        return _empty(arr.shape, polarity, norm)
    sigma = _denoise_sigma(radius, params)
    processed = _enhance(norm, coarse_mask, factor, radius, sigma, params)
    threshold = steps.threshold_value(processed, params.threshold_method)
    ratio, separation = steps.contrast_ratio(processed, threshold)
    if ratio < params.min_contrast:
        return _empty(arr.shape, polarity, processed, threshold)
    threshold += params.threshold_offset * separation
    mask = processed > threshold
    grid = max(1, int(radius / SPLIT_GRID_RADIUS_PX))
    cut = None
    if params.split and params.valley_depth > 0:
        cut = split.valleys(processed, mask, params.valley_depth * separation,
                            max(2, int(round(VALLEY_REACH_SIGMAS * sigma))))
    coarse_split = split.coarse_distance(mask, grid, cut)
    if params.particle_radius_px is None:
        radius = grid * _radius_from(*coarse_split)
    if not np.isfinite(radius):
        return _empty(arr.shape, polarity, processed, threshold)
    mask, holes = steps.remove_small(mask, params.min_size * np.pi * radius ** 2)
    labels = _split(mask, holes, radius, grid, coarse_split, cut, params)
    return SegmentDetails(steps.relabel(labels), polarity, float(radius), float(threshold),
                          processed, mask, coarse_split[1], grid)


def _denoise_sigma(radius, params) -> float:
    if params.denoise_sigma == 0 or params.denoise == "none":
        return 0.0
    return max(params.denoise_sigma * radius, MIN_DENOISE_SIGMA_PX)


def _enhance(norm, coarse_mask, factor, radius, sigma, params) -> np.ndarray:
    """Background correction, CLAHE and denoising of the particles-bright image."""
    image = norm
    if params.background_correction:
        image = image - steps.background(image, coarse_mask, factor,
                                         params.background_scale * radius)
    if params.clahe:
        image = steps.clahe(image, params.clahe_clip_limit, CLAHE_KERNEL_RADII * radius)
    return steps.denoise(image.astype(np.float32, copy=False), params.denoise, sigma)


def _split(mask, holes, radius, grid, coarse, cut, params) -> np.ndarray:
    """Watershed split, erode-rebuild, hole filling, border and outlier filters."""
    h_px = max(params.split_h * radius, MIN_SPLIT_H_PX) if params.split else np.inf
    labels = split.split_touching(mask, h_px, grid, coarse, cut,
                                  erode_px=params.erode_depth * radius)
    if params.fill_holes:
        labels = steps.fill_particle_holes(labels, holes)
    if params.clear_border:
        labels = _clear_border(labels)
    if params.outlier_filter:
        labels = steps.drop_outliers(labels, params.outlier_area_factor,
                                     params.outlier_max_solidity)
    return labels


def _empty(shape, polarity, processed, threshold=float("nan")) -> SegmentDetails:
    zeros = np.zeros(shape, np.int32)
    return SegmentDetails(zeros, "dark" if polarity == "auto" else polarity, float("nan"),
                          float(threshold), processed, zeros.astype(bool),
                          zeros.astype(np.float32), 1)

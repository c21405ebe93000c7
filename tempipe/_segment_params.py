"""The knobs of :func:`tempipe.segment.segment`: one frozen, validated dataclass.

Each field carries its one-line help in ``metadata["help"]`` (and ``choices`` or ``low`` /
``high`` bounds), so the app builds its widgets and tooltips from the same source as the
defaults and the validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from tempipe._segment_steps import DENOISERS, THRESHOLDS
from tempipe.errors import ParameterError

__all__ = ["SegmentParams"]

POLARITIES = ("auto", "dark", "bright")


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
        '(HAADF, SEM), or "auto" to detect it (see detect_polarity).', choices=POLARITIES))
    particle_radius_px: float | None = field(default=None, metadata=_help(
        "Typical particle radius in pixels; None estimates it from the image.", low=0.5))
    ignore_annotations: bool = field(default=True, metadata=_help(
        "Find the figure's data bar, label boxes and solid scale bars (uniform rectangles) "
        "and keep them out of the statistics and the result."))
    normalize_percentiles: tuple[float, float] = field(default=(0.5, 99.5), metadata=_help(
        "Intensity percentiles mapped to 0 and 1 before processing (robust to hot pixels, "
        "scale bars and text)."))
    background_correction: bool = field(default=True, metadata=_help(
        "Subtract a smooth background (uneven illumination, thickness gradients) estimated "
        "from the pixels between particles."))
    background_scale: float = field(default=5.0, metadata=_help(
        "Gaussian scale of that background, in typical radii; larger = flatter.", low=1.0))
    clahe: bool = field(default=False, metadata=_help(
        "Contrast-limited adaptive histogram equalisation before thresholding (helps "
        "faint particles on uneven backgrounds; slower, and can bias edges)."))
    clahe_clip_limit: float = field(default=0.01, metadata=_help(
        "CLAHE clip limit, in (0, 1]; higher = stronger local contrast.", low=0.0, high=1.0))
    denoise: str = field(default="gaussian", metadata=_help(
        'Noise filter before thresholding: "gaussian" (fast), "median", "bilateral" '
        '(edge-preserving, slow) or "none".', choices=DENOISERS))
    denoise_sigma: float = field(default=0.08, metadata=_help(
        "Filter scale in typical radii (at least 0.7 px, the scale of pixel noise; 0 = off).",
        low=0.0, high=2.0))
    threshold_method: str = field(default="otsu", metadata=_help(
        "Automatic global threshold (scikit-image threshold_<method>).",
        choices=tuple(THRESHOLDS)))
    threshold_offset: float = field(default=0.0, metadata=_help(
        "Shift of the threshold as a fraction of the particle-background contrast; "
        "positive keeps only the most contrasted pixels (smaller particles).",
        low=-1.0, high=1.0))
    min_contrast: float = field(default=5.0, metadata=_help(
        "Particle-background contrast needed, in units of the pixel noise left after "
        "denoising (pure noise scores about 1.5, micrographs tens or more); below it the "
        "field is taken as empty.", low=0.0))
    min_peak_contrast: float = field(default=2.0, metadata=_help(
        "A blob is kept only if its brightest pixel stands this many background noise sd "
        "above the threshold (hysteresis: drops the grain of the support); 0 = off.",
        low=0.0, high=10.0))
    min_edge_contrast: float = field(default=1.8, metadata=_help(
        "A blob is kept only if the gradient along its outline is this many times the "
        "image's median gradient (particles have sharp edges, the grain of a support "
        "does not); 0 = off.", low=0.0, high=10.0))
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
    split_h: float = field(default=0.2, metadata=_help(
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
    strict_low = f.name == "clahe_clip_limit"
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
SegmentParams.__module__ = "tempipe.segment"   # its public home

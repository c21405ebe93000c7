"""Micrograph in, calibrated particle table out.

:func:`analyze_micrograph` runs one image through scale resolution, segmentation, the
border and scale-bar exclusions, feature measurement and cropping; :func:`analyze_image`
is its DataFrame-only form from the API contract; :func:`analyze_batch` runs many files
(in parallel: :mod:`tempipe.batch`), records a failure per bad file and goes on.

Scale resolution order (DESIGN): an explicit ``pixel_size_nm``; else the file's own
calibration; else ``scale_bar_nm`` divided by the pixel length of the scale bar that
:func:`tempipe.scalebar.find_scale_bar` finds. With none of these, ``*_nm`` columns stay
NaN and the result's ``scale_note`` says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from tempipe._io_guard import finite_image
from tempipe.crops import crop_masks, crop_particles
from tempipe.errors import CalibrationError, TempipeError
from tempipe.features import measure_particles
from tempipe.io import Micrograph, load_micrograph
from tempipe.scalebar import ScaleBar, find_scale_bar, mask_scale_bar, scale_bar_exclusion
from tempipe.resim import resim_jaccard
from tempipe.segment import SegmentParams, segment
from tempipe.shape_model import ShapeModel, ShapeNetConfig, shipped_model

Progress = Callable[[int, int, str], None]
#: ``shape_model`` value meaning "the model shipped in models/".
SHIPPED = "shipped"
#: Side of the mask windows on which re-simulated shapes are compared (pixels).
RESIM_SIZE = 32


@dataclass
class ImageResult:
    """Everything :func:`analyze_micrograph` learned about one image.

    Attributes
    ----------
    particles : DataFrame
        One row per kept particle (features; ``image`` column names the file).
    labels : (M, N) int32 ndarray
        The full segmentation, border and scale-bar particles included.
    crops : (K, S, S) float32 ndarray
        Normalised crops of the kept particles, in ``particles`` row order.
    pixel_size_nm : float or None
    scale_source : str
        ``"explicit"``, ``"file"``, ``"scale-bar"`` or ``"none"``.
    scale_note : str
        Human-readable account of how the scale was found, or why it was not.
    scale_bar : ScaleBar or None
    n_segmented, n_dropped_border, n_dropped_scale_bar : int
    """

    particles: pd.DataFrame
    labels: np.ndarray
    crops: np.ndarray
    pixel_size_nm: float | None
    scale_source: str
    scale_note: str
    scale_bar: ScaleBar | None
    n_segmented: int
    n_dropped_border: int
    n_dropped_scale_bar: int


@dataclass
class BatchResult:
    """Result of :func:`analyze_batch`.

    Attributes
    ----------
    particles : DataFrame
        All kept particles of all images; column ``image`` names the file.
    failures : DataFrame
        Columns ``image`` and ``error`` (the user-facing message), one row per failed file.
    images : DataFrame
        One row per analysed image: counts, drops, scale source and note.
    """

    particles: pd.DataFrame
    failures: pd.DataFrame
    images: pd.DataFrame = field(default_factory=pd.DataFrame)


def _check_positive(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise CalibrationError(f"{name} must be a number in nm, got {value!r}.") from None
    if not math.isfinite(value) or value <= 0:
        raise CalibrationError(f"{name} must be a positive finite number of nm, got {value}.")
    return value


def resolve_scale(micrograph: Micrograph, bar: ScaleBar | None, pixel_size_nm: float | None,
                  scale_bar_nm: float | None) -> tuple[float | None, str, str]:
    """Pick the pixel size by DESIGN's order; return ``(pixel_size_nm, source, note)``.

    An explicit ``pixel_size_nm`` is the file's pixel size: for an image binned on loading
    (:mod:`tempipe.io`, ``metadata["downsample_factor"]``) it is multiplied by the factor.
    """
    pixel_size_nm = _check_positive("pixel_size_nm", pixel_size_nm)
    scale_bar_nm = _check_positive("scale_bar_nm", scale_bar_nm)
    if pixel_size_nm is not None:  # the file's pixels: times the binning of a large image
        factor = micrograph.metadata.get("downsample_factor", 1)
        note = f"pixel size {pixel_size_nm:g} nm given by the user"
        if factor != 1:
            note += f", {pixel_size_nm * factor:g} nm per pixel after {factor}x binning"
        return pixel_size_nm * factor, "explicit", note
    if micrograph.pixel_size_nm is not None:
        return micrograph.pixel_size_nm, "file", (
            f"pixel size {micrograph.pixel_size_nm:g} nm from the file's calibration")
    bar_nm = scale_bar_nm if scale_bar_nm is not None else (bar.value_nm if bar else None)
    if bar is not None and bar_nm is not None:
        size = bar_nm / bar.length_px
        return size, "scale-bar", (f"pixel size {size:.4g} nm from a {bar_nm:g} nm scale bar "
                                   f"{bar.length_px:g} px long")
    if bar is None and scale_bar_nm is not None:
        why = "a scale-bar length was given but no scale bar was found on the image"
    elif bar is not None:
        why = (f"a scale bar {bar.length_px:g} px long was found but its length in nm is "
               "unknown (give --scale-bar-nm)")
    else:
        why = "the file has no calibration and no pixel size or scale-bar length was given"
    return None, "none", f"sizes in nm are NaN: {why}"


def _edge_and_bar_ids(labels: np.ndarray, bar: ScaleBar | None) -> tuple[set[int], set[int]]:
    edges = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    border = set(np.unique(edges[edges > 0]).tolist())
    near_bar: set[int] = set()
    if bar is not None:
        r0, c0, r1, c1 = scale_bar_exclusion(bar, labels.shape)
        window = labels[r0:r1, c0:c1]
        near_bar = set(np.unique(window[window > 0]).tolist()) - border
    return border, near_bar


def _model(shape_model) -> ShapeModel | None:
    return shipped_model() if isinstance(shape_model, str) and shape_model == SHIPPED else shape_model


def add_shape_parameters(particles: pd.DataFrame, crops: np.ndarray, labels: np.ndarray,
                         model: ShapeModel) -> pd.DataFrame:
    """Append the CNN's ``p, d, l_ratio`` (+ spreads) and ``resim_jaccard`` to a table."""
    shape = model.predict(crops)
    masks = crop_masks(labels, RESIM_SIZE, label_ids=particles["label"].to_numpy())
    shape["resim_jaccard"] = resim_jaccard(masks, shape["p"], shape["d_class"], shape["l_ratio"])
    shape.index = particles.index
    return pd.concat([particles, shape], axis=1)


def analyze_micrograph(micrograph: Micrograph, pixel_size_nm: float | None = None,
                       scale_bar_nm: float | None = None, params: SegmentParams | None = None,
                       *, shape_model: ShapeModel | str | None = SHIPPED) -> ImageResult:
    """Segment, measure, crop and (with a shape model) parametrise one loaded micrograph.

    ``shape_model``: a :class:`~tempipe.shape_model.ShapeModel`, ``"shipped"`` (default:
    the model in ``models/``) or None to skip the CNN (no ``p, d, l_ratio`` columns).
    """
    model = _model(shape_model)
    crop_config = model.net.config if model is not None else ShapeNetConfig()
    # the label is read (OCR, ~0.2 s) only when its value may set the scale
    calibrated = pixel_size_nm is not None or micrograph.pixel_size_nm is not None
    bar = find_scale_bar(micrograph.image, read_label=not calibrated)
    size_nm, source, note = resolve_scale(micrograph, bar, pixel_size_nm, scale_bar_nm)
    labels = segment(micrograph.image if bar is None else mask_scale_bar(micrograph.image, bar),
                     params)  # bar, label and box not segmented
    border, near_bar = _edge_and_bar_ids(labels, bar)
    drop = np.zeros(int(labels.max(initial=0)) + 1, bool)
    drop[list(border | near_bar)] = True
    drop[0] = True
    kept = np.where(drop[labels], 0, labels)
    particles = measure_particles(kept, micrograph.image, pixel_size_nm=size_nm)
    # cut from all segmented labels: dropped neighbours stay out of the context ring
    crops = crop_particles(micrograph.image, labels, crop_config.input_size,
                           label_ids=particles["label"].to_numpy(),
                           context=crop_config.context_px)
    if model is not None and len(particles):
        particles = add_shape_parameters(particles, crops, kept, model)
    particles.insert(0, "image", micrograph.name)
    n_segmented = int(np.count_nonzero(np.bincount(labels.ravel())[1:]))
    return ImageResult(particles, labels, crops, size_nm, source, note, bar, n_segmented,
                       len(border), len(near_bar))


def analyze_image(image_or_path, pixel_size_nm: float | None = None,
                  scale_bar_nm: float | None = None, params: SegmentParams | None = None,
                  *, shape_model: ShapeModel | str | None = SHIPPED) -> pd.DataFrame:
    """One row per particle of one image (a path or a 2-D array).

    Particles touching the border or the scale bar are excluded; ``*_nm`` columns are
    NaN when no scale is known. Raises :class:`~tempipe.errors.TempipeError` on bad input.
    """
    if isinstance(image_or_path, (str, Path)):
        micrograph = load_micrograph(image_or_path)
    else:
        micrograph = _array_micrograph(image_or_path)
    return analyze_micrograph(micrograph, pixel_size_nm, scale_bar_nm, params,
                              shape_model=shape_model).particles


def _array_micrograph(image) -> Micrograph:
    array = np.asarray(image)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number) or 0 in array.shape:
        raise TempipeError(f"An image must be a non-empty 2-D numeric array, got shape "
                           f"{array.shape} and dtype {array.dtype}.")
    image, n_bad, note = finite_image(array.astype(np.float32), "The array")  # a copy: in place
    meta = {"source_format": "array", "calibration_source": "none", "nonfinite_pixels": n_bad}
    if note:
        meta["nonfinite_note"] = note
    return Micrograph(image=image, pixel_size_nm=None, name="array", metadata=meta)


def _image_row(path: str, result: ImageResult) -> dict:
    return {"image": Path(path).name, "path": str(path), "n_particles": len(result.particles),
            "n_segmented": result.n_segmented, "n_dropped_border": result.n_dropped_border,
            "n_dropped_scale_bar": result.n_dropped_scale_bar,
            "pixel_size_nm": result.pixel_size_nm, "scale_source": result.scale_source,
            "scale_note": result.scale_note}


def analyze_batch(paths: Iterable[str | Path], pixel_size_nm: float | None = None,
                  scale_bar_nm: float | None = None, params: SegmentParams | None = None,
                  progress: Progress | None = None, *, n_jobs: int | None = None,
                  scheduler=None, shape_model: ShapeModel | str | None = SHIPPED) -> BatchResult:
    """Analyse many files; a bad file becomes a row of ``failures``, never an exception.

    Parameters
    ----------
    paths : iterable of path-like
    pixel_size_nm, scale_bar_nm : float, optional
        Applied to every image (see :func:`resolve_scale`).
    params : SegmentParams, optional
    progress : callable ``(done, total, name)``, optional
        Called after each image, in the order images complete.
    n_jobs : int, optional
        Worker processes; None (default) = every core, 1 = this process.
    scheduler : str or distributed.Client, optional
        Run on a Dask cluster (address); None = ``$TEMPIPE_SCHEDULER`` if set.
    shape_model : ShapeModel, "shipped" or None
        As in :func:`analyze_micrograph`.

    Every executor gives the same tables, in the order of ``paths``. Memory: the particle
    tables of all images are gathered (they are the result); labels and crops are not
    kept. To keep memory bounded on huge batches use :func:`tempipe.batch.store_batch`
    (results written to the store per image) or :func:`tempipe.batch.iter_batch`.
    """
    from tempipe.batch import iter_batch

    paths = [str(p) for p in paths]
    outcomes = [None] * len(paths)
    for done, outcome in enumerate(iter_batch(paths, pixel_size_nm, scale_bar_nm, params,
                                              n_jobs=n_jobs, scheduler=scheduler,
                                              shape_model=shape_model), start=1):
        outcomes[outcome.index] = outcome
        if progress is not None:
            progress(done, len(paths), outcome.name)
    ok = [o for o in outcomes if o.error is None]
    tables = [o.particles for o in ok]
    return BatchResult(
        particles=pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(),
        failures=pd.DataFrame([{"image": o.name, "error": o.error} for o in outcomes
                               if o.error is not None], columns=["image", "error"]),
        images=pd.DataFrame([o.row for o in ok]))

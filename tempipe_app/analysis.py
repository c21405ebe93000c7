"""Cached calls into :mod:`tempipe`, keyed by content hash and parameters.

``st.cache_data`` functions take the content hash and parameters as hashed arguments and
the arrays themselves as ``_``-prefixed (unhashed) ones, so a result is found again from
the same pixels and parameters whatever page or session asks. Results are also kept on
the :class:`~tempipe_app.state.Dataset`, so moving between pages never recomputes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from tempipe.crops import crop_particles
from tempipe.errors import ModelError
from tempipe.io import Micrograph, load_micrograph_bytes
from tempipe.pipeline import ImageResult, add_shape_parameters, analyze_micrograph
from tempipe.scalebar import ScaleBar, find_scale_bar
from tempipe.segment import SegmentParams
from tempipe.shape_model import ShapeModel, ShapeNetConfig, shipped_model
from tempipe.simulate import demo_batch
from tempipe_app.common import explain
from tempipe_app.state import Dataset, ImageEntry, array_sha256

#: Environment variable naming another shape model (``.pt`` with its ``.json`` card).
MODEL_ENV = "TEMPIPE_SHAPE_MODEL"
_SHAPE_COLUMNS = ("p", "d", "l_ratio", "d_class", "p_std", "d_std", "l_ratio_std",
                  "resim_jaccard")


@st.cache_data(max_entries=200, show_spinner=False)
def read_upload(sha256: str, name: str, _data: bytes) -> Micrograph:
    """Decode one uploaded file (raises InputFileError with the reason)."""
    return load_micrograph_bytes(_data, name)


@st.cache_data(max_entries=8, show_spinner=False)
def demo_micrographs(name: str, n_images: int) -> list[tuple[Micrograph, str]]:
    """The built-in demo batch ``name`` as (micrograph, sha256) pairs, simulated once."""
    out = []
    for sim in demo_batch(name, n_images=n_images, rng=0):
        image = sim.image.astype(np.float32)
        micrograph = Micrograph(image=image, pixel_size_nm=float(sim.pixel_size_nm),
                                name=f"{sim.name}.tif", metadata={
                                    "source_format": "demo", "calibration_source": "demo",
                                    "calibration_note": "pixel size of the simulation"})
        out.append((micrograph, array_sha256(image)))
    return out


@st.cache_data(max_entries=200, show_spinner=False)
def scale_bar(sha256: str, _image: np.ndarray) -> ScaleBar | None:
    """The scale bar found on an image (None when there is none)."""
    return find_scale_bar(_image)


@st.cache_data(max_entries=48, show_spinner=False)
def analyze_entry(key: str, params: SegmentParams, _entry: ImageEntry) -> ImageResult:
    """Segment, measure and crop one image (no CNN): :func:`analyze_micrograph`."""
    return analyze_micrograph(_entry.micrograph, _entry.pixel_size_nm, _entry.scale_bar_nm,
                              params, shape_model=None)


@st.cache_resource(show_spinner=False)
def _load_model(path: str | None) -> ShapeModel:
    return ShapeModel.load(path) if path else shipped_model()


def shape_model() -> ShapeModel:
    """The shape CNN (``$TEMPIPE_SHAPE_MODEL`` or the shipped one); raises ModelError."""
    return _load_model(os.environ.get(MODEL_ENV) or None)


def model_paths() -> tuple[Path, Path]:
    """Weights and card paths of the model :func:`shape_model` loads."""
    from tempipe.shape_model import DEFAULT_WEIGHTS
    weights = Path(os.environ.get(MODEL_ENV) or DEFAULT_WEIGHTS)
    return weights, weights.with_suffix(".json")


@st.cache_data(max_entries=48, show_spinner=False)
def shape_entry(key: str, params: SegmentParams, model_id: str, _result: ImageResult,
                _entry: ImageEntry) -> pd.DataFrame:
    """CNN parameters and re-simulation Jaccard of one image's kept particles."""
    model = shape_model()
    particles = _result.particles
    if not len(particles):
        return pd.DataFrame(columns=list(_SHAPE_COLUMNS), index=particles.index, dtype=float)
    ids = particles["label"].to_numpy()
    crops = _result.crops
    if crops.shape[1] != model.input_size or model.context_px != ShapeNetConfig().context_px:
        crops = crop_particles(_entry.micrograph.image, _result.labels, model.input_size,
                               label_ids=ids, context=model.context_px)
    table = add_shape_parameters(particles[["label"]], crops, _result.labels, model)
    return table.drop(columns=["label"])


def model_id() -> str:
    """Identity of the current model file (path and modification time)."""
    weights, _ = model_paths()
    try:
        return f"{weights}:{weights.stat().st_mtime_ns}"
    except OSError:
        return f"{weights}:missing"


def run_segmentation(dataset: Dataset, progress=None) -> None:
    """Analyse every image of ``dataset`` with its parameters; failures are recorded."""
    key = dataset.current_key()
    if dataset.analysis_key != key:
        dataset.results, dataset.failures, dataset.analysis_key = {}, {}, key
        dataset.shape, dataset.shape_key, dataset.shape_error = {}, None, None
    todo = [e for e in dataset.images
            if e.name not in dataset.results and e.name not in dataset.failures]
    for done, entry in enumerate(todo, start=1):
        try:
            dataset.results[entry.name] = analyze_entry(entry.key, dataset.params, entry)
        except Exception as exc:  # noqa: BLE001 - one bad image must not stop the batch
            dataset.failures[entry.name] = explain(exc)
        if progress is not None:
            progress(done, len(todo), entry.name)


def run_shape_inference(dataset: Dataset, progress=None) -> bool:
    """Run the CNN on every segmented image; False (and ``shape_error``) without a model."""
    try:
        shape_model()
    except ModelError as exc:
        dataset.shape_error = str(exc)
        return False
    mid = model_id()
    names = [e.name for e in dataset.images if e.name in dataset.results]
    for done, name in enumerate(names, start=1):
        entry = dataset.entry(name)
        try:
            dataset.shape[name] = shape_entry(entry.key, dataset.params, mid,
                                              dataset.results[name], entry)
        except Exception as exc:  # noqa: BLE001 - keep the other images
            dataset.failures[name] = f"shape inference failed: {explain(exc)}"
            dataset.results.pop(name, None)
        if progress is not None:
            progress(done, len(names), name)
    dataset.shape_key, dataset.shape_error = dataset.analysis_key, None
    return True


def particle_table(dataset: Dataset, *, confident_only: bool | None = None) -> pd.DataFrame:
    """All kept particles of the segmented images (+ CNN columns when run), in image order.

    ``confident_only`` (default: the dataset's filter setting) drops the rows the shape
    filter calls uncertain. Column ``uncertain`` flags them either way.
    """
    parts = []
    for entry in dataset.images:
        result = dataset.results.get(entry.name)
        if result is None:
            continue
        table = result.particles
        if dataset.shaped and entry.name in dataset.shape:
            table = pd.concat([table, dataset.shape[entry.name]], axis=1)
        parts.append(table)
    if not parts:
        return pd.DataFrame()
    table = pd.concat(parts, ignore_index=True)
    table["uncertain"] = dataset.shape_filter.uncertain(table)
    drop = dataset.shape_filter.exclude if confident_only is None else confident_only
    return table[~table["uncertain"]].reset_index(drop=True) if drop else table


def particle_crops(dataset: Dataset, *, confident_only: bool | None = None) -> np.ndarray:
    """Crops aligned with :func:`particle_table` (same rows, same order)."""
    crops = [dataset.results[e.name].crops for e in dataset.images if e.name in dataset.results]
    if not crops:
        return np.zeros((0, 1, 1), np.float32)
    crops = np.concatenate(crops)
    drop = dataset.shape_filter.exclude if confident_only is None else confident_only
    if drop:
        keep = ~particle_table(dataset, confident_only=False)["uncertain"].to_numpy(bool)
        crops = crops[keep]
    return crops


#: Notes :func:`tempipe.io.load_micrograph` leaves on a file it had to mend or bin.
_INPUT_NOTES = ("format_note", "size_note", "nonfinite_note")


def images_table(dataset: Dataset) -> pd.DataFrame:
    """One row per image: counts, drops, scale (or the failure in words), input notes."""
    rows = []
    for entry in dataset.images:
        result = dataset.results.get(entry.name)
        meta = entry.micrograph.metadata
        notes = "; ".join(meta[k] for k in _INPUT_NOTES if meta.get(k))
        if result is None:
            rows.append({"image": entry.name, "particles": None, "segmented": None,
                         "cut by border": None, "at scale bar": None, "pixel size (nm)": None,
                         "scale": dataset.failures.get(entry.name, "not analysed yet"),
                         "input notes": notes})
            continue
        rows.append({"image": entry.name, "particles": len(result.particles),
                     "segmented": result.n_segmented, "cut by border": result.n_dropped_border,
                     "at scale bar": result.n_dropped_scale_bar,
                     "pixel size (nm)": result.pixel_size_nm, "scale": result.scale_note,
                     "input notes": notes})
    return pd.DataFrame(rows)

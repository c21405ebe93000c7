"""Saving session datasets into the tempipe store, and reopening them in any session.

The store is :class:`tempipe.store.Store` at its default place (``$TEMPIPE_HOME`` or
``~/.tempipe``). Saving writes each analysed image (its particles with the CNN columns,
label image, crops, and its pixels, since uploads have no file to go back to) in one
transaction per image; the dataset's parameters are the segmentation parameters and the
shape model's version, so saving again after new parameters makes a new version.
Reopening rebuilds a :class:`~tempipe_app.state.Dataset` whose results are the stored
ones (nothing is recomputed).
"""

from __future__ import annotations

import math
from dataclasses import asdict, fields

import pandas as pd

from tempipe.errors import StoreError
from tempipe.pipeline import ImageResult
from tempipe.scalebar import ScaleBar
from tempipe.segment import SegmentParams
from tempipe.store import DatasetRef, Store, StoredDataset
from tempipe_app import analysis, state

SHAPE_COLUMNS = analysis._SHAPE_COLUMNS
_LIST_COLUMNS = ["name", "version", "status", "images", "failed", "particles", "created",
                 "source"]


def store() -> Store:
    """The store at its default place (read from the environment at each call)."""
    return Store()


def _model_version() -> str | None:
    from tempipe.batch import model_version
    from tempipe.shape_model import DEFAULT_WEIGHTS

    weights, card = analysis.model_paths()
    if weights == DEFAULT_WEIGHTS:
        return model_version("shipped")
    return f"{weights.name} ({card.name})"


def _options(entry: state.ImageEntry) -> dict:
    meta = {k: v for k, v in entry.micrograph.metadata.items()
            if isinstance(v, (str, int, float, bool)) or v is None}
    return {"pixel_size_nm": entry.pixel_size_nm, "scale_bar_nm": entry.scale_bar_nm,
            "scale_choice": entry.scale_choice,
            "file_pixel_size_nm": entry.micrograph.pixel_size_nm, "metadata": meta}


def save(dataset: state.Dataset) -> tuple[DatasetRef, int]:
    """Store an analysed dataset; returns its reference and the images newly written."""
    if not dataset.segmented:
        raise StoreError(f"{dataset.name} is not analysed with its current parameters yet: "
                         "apply the segmentation to the batch first, then save.")
    parameters = {"segment": asdict(dataset.params), "scale": "chosen per image in the app",
                  "shape_model": _model_version() if dataset.shaped else None}
    target = store()
    ref = target.create_dataset(dataset.name, parameters, source=f"app ({dataset.source})")
    written = 0
    for seq, entry in enumerate(dataset.images):
        common = {"sha256": entry.sha256, "seq": seq, "options": _options(entry),
                  "pixels": entry.micrograph.image}
        result = dataset.results.get(entry.name)
        if result is None:
            error = dataset.failures.get(entry.name, "not analysed")
            written += target.add_image_result(ref, entry.name, error=error, **common)
            continue
        table = result.particles
        if dataset.shaped and entry.name in dataset.shape:
            table = pd.concat([table, dataset.shape[entry.name]], axis=1)
        written += target.add_image_result(ref, entry.name, result=result, particles=table,
                                           **common)
    target.mark_complete(ref)
    dataset.saved_as = f"{ref.name} v{ref.version}"
    return ref, written


def stored_table() -> pd.DataFrame:
    """The stored datasets (one row per version) for the page's table."""
    table = store().list_datasets()
    if table.empty:
        return pd.DataFrame(columns=_LIST_COLUMNS)
    table["created"] = table["created"].dt.strftime("%Y-%m-%d %H:%M UTC")
    return table[_LIST_COLUMNS]


def _params(stored: dict) -> SegmentParams:
    known = {f.name for f in fields(SegmentParams)}
    values = {k: v for k, v in (stored or {}).items() if k in known}
    if "normalize_percentiles" in values:
        values["normalize_percentiles"] = tuple(values["normalize_percentiles"])
    return SegmentParams(**values)


def _entry(data: StoredDataset, record: dict) -> state.ImageEntry:
    micrograph = data.micrograph(record["image"])
    options = record["options"] or {}
    choice = options.get("scale_choice") or ("typed" if options.get("pixel_size_nm") else "file")
    sha = record["sha256"] or state.array_sha256(micrograph.image)
    return state.ImageEntry(micrograph, sha, options.get("pixel_size_nm"),
                            options.get("scale_bar_nm"), choice)


def _result(data: StoredDataset, record: dict, table: pd.DataFrame) -> ImageResult:
    bar = record["scale_bar"]
    if bar:
        bar = ScaleBar(**{k: tuple(v) if isinstance(v, list) else v for k, v in bar.items()})
    size = record["pixel_size_nm"]
    size = None if size is None or (isinstance(size, float) and math.isnan(size)) else size
    name = record["image"]
    return ImageResult(table, data.labels(name), data.crops(name), size, record["scale_source"],
                       record["scale_note"], bar or None, int(record["n_segmented"]),
                       int(record["n_dropped_border"]), int(record["n_dropped_scale_bar"]))


def reopen(name: str, version: int | None = None) -> state.Dataset:
    """Rebuild a stored dataset in this session (added and made active); nothing recomputed."""
    data = store().dataset(name, version)
    ref = data.ref
    title = ref.name if ref.version == 1 else f"{ref.name} v{ref.version}"
    dataset = state.Dataset(title, [], source=f"store: {ref.name} v{ref.version}",
                            params=_params(ref.parameters.get("segment")))
    shaped = bool(ref.parameters.get("shape_model")) and "p" in data.particles
    for record in data.records.to_dict("records"):
        try:
            entry = _entry(data, record)
        except StoreError as exc:
            dataset.unreadable.append({"image": record["image"], "error": str(exc)})
            continue
        dataset.images.append(entry)
        if record["status"] != "ok":
            dataset.failures[entry.name] = record["error"]
            continue
        table = data.particles[data.particles["image"] == entry.name].reset_index(drop=True)
        shape = [c for c in SHAPE_COLUMNS if c in table]
        dataset.results[entry.name] = _result(data, record, table.drop(columns=shape))
        if shaped:
            dataset.shape[entry.name] = table[shape]
    dataset.analysis_key = dataset.current_key()
    dataset.shape_key = dataset.analysis_key if shaped else None
    dataset.saved_as = f"{ref.name} v{ref.version}"
    return state.add(dataset)


def delete(name: str, version: int) -> None:
    """Delete one stored version (and its files no other dataset uses)."""
    store().delete(name, version)


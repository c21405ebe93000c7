"""The per-session datasets: they live in ``st.session_state``.

Each browser session has its own datasets, so two sessions never see each other's work;
a dataset lasts as long as its session unless it is saved into the tempipe store
(:mod:`tempipe_app.stored`, a DuckDB file on this computer), from which any session can
reopen it. Results computed for a dataset are kept on it, keyed by the analysis that
produced them, so moving between pages never recomputes.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import streamlit as st

from tempipe.errors import ParameterError
from tempipe.io import Micrograph
from tempipe.segment import SegmentParams

_STORE = "tempipe_datasets"
_ACTIVE = "tempipe_active_dataset"
_COUNTER = itertools.count(1)


def array_sha256(image: np.ndarray) -> str:
    """sha256 of an image's shape, dtype and pixels (the cache key of its results)."""
    image = np.ascontiguousarray(image)
    digest = hashlib.sha256(f"{image.shape}{image.dtype}".encode())
    digest.update(memoryview(image).cast("B"))
    return digest.hexdigest()


@dataclass
class ImageEntry:
    """One micrograph of a dataset and the scale the user chose for it.

    Attributes
    ----------
    micrograph : Micrograph
        As read (its ``pixel_size_nm`` is the file's own calibration, or None).
    sha256 : str
        Of the file's bytes (uploads) or of the pixels (demo images).
    pixel_size_nm : float or None
        Explicit pixel size (typed by the user, or computed from the scale bar).
    scale_bar_nm : float or None
        Length of the drawn scale bar, used when the file has no calibration.
    scale_choice : str
        How the user set the scale: ``"file"``, ``"scale-bar"`` or ``"typed"``.
    """

    micrograph: Micrograph
    sha256: str
    pixel_size_nm: float | None = None
    scale_bar_nm: float | None = None
    scale_choice: str = "file"

    @property
    def name(self) -> str:
        return self.micrograph.name

    @property
    def key(self) -> str:
        """Content + scale: what the analysis of this image depends on besides parameters."""
        return f"{self.sha256}|{self.name}|{self.pixel_size_nm}|{self.scale_bar_nm}"


@dataclass
class ShapeFilter:
    """Which CNN predictions count as uncertain (page 3), and whether to leave them out."""

    max_p_rel_sd: float = 1.0
    max_d_sd: float = 1.0
    min_jaccard: float = 0.75
    exclude: bool = False

    def uncertain(self, table: pd.DataFrame) -> np.ndarray:
        """(N,) bool: rows whose prediction is too uncertain (False without CNN columns)."""
        needed = ("p", "p_std", "d_std", "resim_jaccard")
        if not all(c in table for c in needed):
            return np.zeros(len(table), dtype=bool)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = table["p_std"].to_numpy(float) / table["p"].to_numpy(float)
        jac = table["resim_jaccard"].to_numpy(float)
        return ((rel > self.max_p_rel_sd) | (table["d_std"].to_numpy(float) > self.max_d_sd)
                | ~(jac >= self.min_jaccard))


@dataclass
class Dataset:
    """A named batch of micrographs and everything computed for it in this session."""

    name: str
    images: list[ImageEntry]
    source: str = "upload"
    unreadable: list[dict] = field(default_factory=list)
    params: SegmentParams = field(default_factory=SegmentParams)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(
        timespec="seconds"))
    uid: int = field(default_factory=lambda: next(_COUNTER))
    #: ImageResult (no CNN) by image name, valid for ``analysis_key``.
    results: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)
    analysis_key: str | None = None
    #: CNN columns (DataFrame aligned with the image's particle rows) by image name.
    shape: dict = field(default_factory=dict)
    shape_key: str | None = None
    shape_error: str | None = None
    shape_filter: ShapeFilter = field(default_factory=ShapeFilter)
    #: Clustering chosen on page 4: {"algorithm", "feature_set", "k"} (None = best).
    clustering: dict = field(default_factory=dict)
    #: "name vN" of the store version this dataset was last saved as or reopened from.
    saved_as: str | None = None

    def current_key(self, params: SegmentParams | None = None) -> str:
        """Fingerprint of the images, their scales and the segmentation parameters."""
        params = self.params if params is None else params
        text = "\n".join([repr(params), *(e.key for e in self.images)])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def segmented(self) -> bool:
        """True when every image was analysed (or failed) with the current parameters."""
        return (self.analysis_key == self.current_key()
                and len(self.results) + len(self.failures) == len(self.images))

    @property
    def shaped(self) -> bool:
        """True when the CNN ran on the current segmentation."""
        return self.segmented and self.shape_key == self.analysis_key

    def entry(self, name: str) -> ImageEntry:
        for e in self.images:
            if e.name == name:
                return e
        raise ParameterError(f"dataset {self.name!r} has no image {name!r}.")


def store() -> dict[str, Dataset]:
    """This session's datasets by name (created empty on first use)."""
    return st.session_state.setdefault(_STORE, {})


def unique_name(name: str) -> str:
    """``name``, or ``name (2)``, ``name (3)``... if taken in this session."""
    name = " ".join(str(name).split()) or "dataset"
    taken = store()
    candidate, i = name, 2
    while candidate in taken:
        candidate, i = f"{name} ({i})", i + 1
    return candidate


def add(dataset: Dataset) -> Dataset:
    """Store a dataset (renamed if its name is taken) and make it the active one."""
    dataset.name = unique_name(dataset.name)
    store()[dataset.name] = dataset
    set_active(dataset.name)
    return dataset


def rename(old: str, new: str) -> str:
    """Rename a dataset; returns the new name. Raises ParameterError for a bad name."""
    new = " ".join(str(new).split())
    datasets = store()
    if old not in datasets:
        raise ParameterError(f"there is no dataset {old!r} to rename.")
    if not new:
        raise ParameterError("a dataset name cannot be empty; type a name.")
    if new != old and new in datasets:
        raise ParameterError(f"a dataset called {new!r} exists already; choose another name.")
    dataset = datasets.pop(old)
    dataset.name = new
    datasets[new] = dataset
    if st.session_state.get(_ACTIVE) == old:
        set_active(new)
    return new


def delete(name: str) -> None:
    """Remove a dataset from this session."""
    store().pop(name, None)
    if st.session_state.get(_ACTIVE) == name:
        st.session_state[_ACTIVE] = next(iter(store()), None)


def set_active(name: str | None) -> None:
    st.session_state[_ACTIVE] = name


def active() -> Dataset | None:
    """The dataset the pages work on (the last one opened or created)."""
    datasets = store()
    name = st.session_state.get(_ACTIVE)
    if name not in datasets:
        name = next(iter(datasets), None)
        st.session_state[_ACTIVE] = name
    return datasets.get(name) if name else None

"""What the store hands out: a reference to a dataset version, and a dataset read back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tempipe import _store_files as files
from tempipe.errors import StoreError

if TYPE_CHECKING:
    from tempipe.store import Store

#: Columns of :attr:`StoredDataset.images`.
IMAGE_COLUMNS = ["image", "path", "sha256", "height", "width", "n_particles", "n_segmented",
                 "n_dropped_border", "n_dropped_scale_bar", "pixel_size_nm", "scale_source",
                 "scale_note"]


@dataclass(frozen=True)
class DatasetRef:
    """One stored dataset version. ``resumed``: it existed before ``create_dataset``."""

    id: int
    name: str
    version: int
    status: str
    created: str
    parameters: dict = field(default_factory=dict, compare=False)
    resumed: bool = False


@dataclass
class StoredDataset:
    """A dataset read back: tables in memory, arrays loaded on demand.

    Attributes
    ----------
    ref : DatasetRef
    particles : DataFrame
        Every stored particle, in image order, with the columns and dtypes it was stored with.
    images : DataFrame
        One row per analysed image (``IMAGE_COLUMNS``), in batch order.
    failures : DataFrame
        ``image``, ``error``: images that failed.
    records : DataFrame
        The raw ``images`` rows (all columns, failed images too; ``options`` and
        ``scale_bar`` decoded from JSON).
    """

    ref: DatasetRef
    particles: pd.DataFrame
    images: pd.DataFrame
    failures: pd.DataFrame
    records: pd.DataFrame
    store: "Store" = field(repr=False)

    def record(self, image: str) -> dict:
        rows = self.records[self.records["image"] == image]
        if rows.empty:
            raise StoreError(f"Dataset {self.ref.name} v{self.ref.version} has no image {image!r}.")
        return rows.iloc[0].to_dict()

    def _array(self, image: str, column: str) -> np.ndarray:
        digest = self.record(image)[column]
        if not isinstance(digest, str):
            raise StoreError(f"No {column.removesuffix('_file')} was stored for {image!r} "
                             f"in {self.ref.name} v{self.ref.version}.")
        return files.get_array(self.store.files_dir, digest)

    def labels(self, image: str) -> np.ndarray:
        """The image's full label image (int32; border and scale-bar particles included)."""
        return self._array(image, "mask_file")

    def crops(self, image: str) -> np.ndarray:
        """The kept particles' crops (N, S, S), in the image's particle-row order."""
        return self._array(image, "crops_file")

    def pixels(self, image: str) -> np.ndarray:
        """The micrograph's pixels: the stored copy, else read again from its file."""
        return self.micrograph(image).image

    def micrograph(self, image: str):
        """The image as a :class:`tempipe.io.Micrograph` named ``image``.

        From the stored pixels (calibration: ``options["file_pixel_size_nm"]``), else read
        again from the file at ``path``; StoreError when neither is there any more.
        """
        from dataclasses import replace

        from tempipe.io import Micrograph, load_micrograph

        record = self.record(image)
        options = record["options"] or {}
        if isinstance(record["pixels_file"], str):
            pixels = files.get_array(self.store.files_dir, record["pixels_file"])
            return Micrograph(pixels, options.get("file_pixel_size_nm"), image, {
                "source_format": "tempipe store", "calibration_source": "store",
                "calibration_note": "calibration of the file as it was stored"})
        path = record["path"]
        if isinstance(path, str) and Path(path).is_file():
            return replace(load_micrograph(path), name=image)
        raise StoreError(f"The pixels of {image!r} were not stored and its file {path} is "
                         "gone; put the file back there to view the image.")

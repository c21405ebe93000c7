"""Content-addressed array files beside the store's DuckDB file (masks, crops, pixels).

An array is saved once as ``<root>/<d[:2]>/<d>.npz`` (``numpy.savez_compressed``, one
member ``array``), where ``d`` is :func:`array_digest`: the sha256 of its dtype, shape and
bytes. The same array stored twice is one file. A file is written to a temporary name,
flushed to disk and renamed, so a crash leaves either the whole file or a ``.tmp`` leftover
that :func:`collect_garbage` removes. The caller (:class:`tempipe.store.Store`) holds the
store's lock around writing files and committing the rows that name them, and around
garbage collection, so a collection never removes a file a row is about to name.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from tempipe.errors import StoreError

SUFFIX = ".npz"


def array_digest(array: np.ndarray) -> str:
    """sha256 (hex) of an array's dtype, shape and C-ordered bytes."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}|{array.shape}|".encode())
    digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def file_path(root: Path, digest: str) -> Path:
    """Where the array with this digest lives."""
    return root / digest[:2] / f"{digest}{SUFFIX}"


def put_array(root: Path, array: np.ndarray) -> str:
    """Save ``array`` (if not there already) and return its digest."""
    array = np.ascontiguousarray(array)
    digest = array_digest(array)
    path = file_path(root, digest)
    if path.is_file():
        return digest
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{digest}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, array=array)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"Could not write {path} ({exc}); check the disk space and the "
                         "permissions of the store folder.") from exc
    return digest


def get_array(root: Path, digest: str) -> np.ndarray:
    """Load the array saved under ``digest``; StoreError when the file is missing or bad."""
    path = file_path(root, digest)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return archive["array"]
    except (OSError, KeyError, ValueError) as exc:
        raise StoreError(f"The store file {path} is missing or unreadable ({exc}); the "
                         "dataset's particle tables are intact, but this image's mask or "
                         "crops are lost: analyse the image again to restore them.") from exc


def collect_garbage(root: Path, referenced: set[str]) -> int:
    """Remove files whose digest is not in ``referenced`` and temporary leftovers.

    Returns the number of files removed. Call with the store's lock held.
    """
    if not root.is_dir():
        return 0
    removed = 0
    for sub in root.iterdir():
        if not sub.is_dir():
            continue
        for path in sub.iterdir():
            stale_tmp = path.name.endswith(".tmp")
            orphan = path.suffix == SUFFIX and path.stem not in referenced
            if stale_tmp or orphan:
                path.unlink(missing_ok=True)
                removed += 1
        if not any(sub.iterdir()):
            sub.rmdir()
    return removed

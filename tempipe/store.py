"""The dataset store: analysed datasets kept in one DuckDB file, so they can be reopened.

Where
-----
``Store(path)`` opens (and on the first write creates) the DuckDB file ``path``; without a
path it is ``$TEMPIPE_HOME/tempipe.duckdb``, and without that variable
``~/.tempipe/tempipe.duckdb``. Masks, crops and (for images that had no file, e.g. app
uploads) pixels are ``.npz`` files in the folder ``<file stem>-files`` beside it, named by
the sha256 of their content (:mod:`tempipe._store_files`). Tables: :mod:`tempipe._store_schema`.

Datasets and versions
---------------------
A dataset is a name, a version and its parameters (segmentation parameters, pixel-size and
scale-bar options, the shape model's version). :meth:`Store.create_dataset` with a name
and parameters already stored returns that dataset, to add images to it or to resume it;
with new parameters it creates the next version (v2, v3, ...): nothing is overwritten.

Writes and crashes
------------------
Each image is one transaction (:meth:`Store.add_image_result`): its array files are
written first (atomically), then its image row and all its particle rows are committed
together. A process killed at any moment leaves every image either fully stored or
absent; the dataset stays ``incomplete`` until its writer calls :meth:`Store.mark_complete`,
and running the same analysis again skips the images already stored (same name, same
content sha256) and adds the rest. Rows of failed images are replaced when they are
analysed again; stored images are never duplicated (primary key ``(dataset, image)``).

Concurrency
-----------
One writer at a time: every operation takes the lock file ``<file>.lock`` (waiting up to
``timeout_s``), opens a connection, and closes it before releasing the lock, so a running
batch and the dashboard can take turns on the same store. In a batch only the parent
process writes; worker processes compute (:func:`tempipe.batch.store_batch`).

API
---
``Store(path=None)``; ``create_dataset(name, parameters) -> DatasetRef``;
``stored_images(ref)``; ``add_image_result(ref, name, sha256=..., result=... | error=...)``;
``mark_complete(ref)``; ``list_datasets() -> DataFrame``; ``versions(name)``;
``resolve(name, version=None)``; ``dataset(name, version=None) -> StoredDataset``
(``particles``, ``images``, ``failures``, ``labels(image)``, ``crops(image)``,
``micrograph(image)``); ``export(name, out_dir, version=None) -> summary``;
``delete(name, version=None)``. Analysing straight into a store:
:func:`tempipe.batch.store_batch`.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout

from tempipe import __version__
from tempipe import _store_files as files
from tempipe import _store_schema as schema
from tempipe._store_dataset import IMAGE_COLUMNS, DatasetRef, StoredDataset
from tempipe._store_export import export_dataset
from tempipe.errors import StoreError

__all__ = ["Store", "DatasetRef", "StoredDataset", "default_path", "HOME_ENV"]

#: Environment variable naming the folder of the default store.
HOME_ENV = "TEMPIPE_HOME"
DB_NAME = "tempipe.duckdb"


def default_path() -> Path:
    """``$TEMPIPE_HOME/tempipe.duckdb``, else ``~/.tempipe/tempipe.duckdb``."""
    home = os.environ.get(HOME_ENV)
    return (Path(home).expanduser() if home else Path.home() / ".tempipe") / DB_NAME


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    if is_dataclass(value):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def canonical_json(value) -> str:
    """Sorted, compact JSON (the identity of a parameter set)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Store:
    """A DuckDB file of datasets (see the module docstring).

    Parameters
    ----------
    path : path-like, optional
        The DuckDB file; None = :func:`default_path`. Nothing is created until a write.
    timeout_s : float
        How long an operation waits for another process's operation to finish.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, timeout_s: float = 120.0):
        self.path = Path(path).expanduser() if path is not None else default_path()
        if self.path.is_dir():
            self.path = self.path / DB_NAME
        self.files_dir = self.path.parent / f"{self.path.stem}-files"
        self._lock = FileLock(f"{self.path}.lock", timeout=timeout_s)
        self._schema_checked = False

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @contextmanager
    def _session(self, write: bool = True):
        """Lock, connect, yield the connection (None: read of a store not yet created)."""
        if not write and not self.path.is_file():
            yield None
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                con = schema.connect(self.path)
                try:
                    if not self._schema_checked:
                        schema.ensure_schema(con)
                        self._schema_checked = True
                    yield con
                finally:
                    con.close()
        except Timeout as exc:
            raise StoreError(f"The store {self.path} is busy (another tempipe process holds "
                             f"it for over {self._lock.timeout:.0f} s); try again later.") from exc
        except OSError as exc:
            raise StoreError(f"Cannot use the store {self.path}: {exc}. Choose a writable "
                             "folder (--store or TEMPIPE_HOME).") from exc

    @staticmethod
    def _ref(row, resumed: bool = False) -> DatasetRef:
        id_, name, version, status, created, parameters = row
        return DatasetRef(int(id_), name, int(version), status, created.isoformat(" ", "seconds"),
                          json.loads(parameters), resumed)

    _REF_SQL = "SELECT id, name, version, status, created, parameters FROM datasets"

    # --- writing ----------------------------------------------------------------------

    def create_dataset(self, name: str, parameters: dict, *, source: str | None = None
                       ) -> DatasetRef:
        """The dataset ``name`` with these parameters: the stored one, else a new version.

        The dataset is marked ``incomplete`` until :meth:`mark_complete`.
        """
        name = " ".join(str(name).split())
        if not name:
            raise StoreError("A dataset needs a name; give one (e.g. --dataset NAME).")
        text = canonical_json(parameters)
        key = hashlib.sha256(text.encode()).hexdigest()
        with self._session() as con:
            rows = con.execute(f"{self._REF_SQL} WHERE name = ? AND parameters_key = ? "
                               "ORDER BY version DESC LIMIT 1", [name, key]).fetchall()
            if rows:
                row = rows[0]
                con.execute("UPDATE datasets SET status = 'incomplete', updated = ? WHERE id = ?",
                            [_now(), row[0]])
                return self._ref((*row[:3], "incomplete", *row[4:]), resumed=True)
            version = con.execute("SELECT coalesce(max(version), 0) + 1 FROM datasets "
                                  "WHERE name = ?", [name]).fetchall()[0][0]
            model = parameters.get("shape_model") if isinstance(parameters, dict) else None
            now = _now()
            row = con.execute(
                "INSERT INTO datasets (name, version, created, updated, status, parameters, "
                "parameters_key, model_version, source, tempipe_version) VALUES "
                "(?, ?, ?, ?, 'incomplete', ?, ?, ?, ?, ?) RETURNING id, name, version, "
                "status, created, parameters",
                [name, version, now, now, text, key, None if model is None else str(model),
                 source, __version__]).fetchall()[0]
            return self._ref(row)

    def stored_images(self, ref: DatasetRef) -> dict[str, tuple[str | None, str]]:
        """``{image name: (sha256, status)}`` of the images stored in ``ref``."""
        with self._session() as con:
            rows = con.execute("SELECT name, sha256, status FROM images WHERE dataset_id = ?",
                               [ref.id]).fetchall()
        return {name: (sha, status) for name, sha, status in rows}

    def add_image_result(self, ref: DatasetRef, name: str, *, sha256: str | None = None,
                         path: str | os.PathLike | None = None, result=None,
                         particles: pd.DataFrame | None = None, error: str | None = None,
                         seq: int | None = None, options: dict | None = None,
                         pixels: np.ndarray | None = None) -> bool:
        """Store one image's outcome in one transaction; False if it was stored already.

        Give ``result`` (a :class:`tempipe.pipeline.ImageResult`: counts, scale, label image
        and crops are taken from it) or ``error`` (the user-facing message of a failure).
        ``particles`` replaces ``result.particles`` (e.g. with the shape columns added);
        its ``image`` column is set to ``name``. ``pixels`` keeps a copy of the image
        (for images without a file). ``options``: the scale the user gave (JSON-able).
        """
        if (result is None) == (error is None):
            raise StoreError("add_image_result needs either a result or an error.")
        with self._session() as con:
            old = con.execute("SELECT status FROM images WHERE dataset_id = ? AND name = ?",
                              [ref.id, name]).fetchall()
            if old and old[0][0] == "ok":
                return False
            row = self._image_row(ref, name, sha256, path, result, error, options, pixels)
            if seq is None:
                seq = con.execute("SELECT count(*) FROM images WHERE dataset_id = ?",
                                  [ref.id]).fetchall()[0][0]
            row["seq"] = int(seq)
            table = None
            if result is not None:
                table = (result.particles if particles is None else particles).copy()
                table["image"] = name
                row["n_particles"] = len(table)
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute("DELETE FROM images WHERE dataset_id = ? AND name = ?", [ref.id, name])
                con.execute(f"INSERT INTO images ({', '.join(schema.IMAGE_FIELDS)}) VALUES "
                            f"({', '.join('?' * len(schema.IMAGE_FIELDS))})",
                            [row.get(f) for f in schema.IMAGE_FIELDS])
                if table is not None and len(table):
                    self._add_particles(con, ref, table)
                con.execute("UPDATE datasets SET updated = ? WHERE id = ?", [_now(), ref.id])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return True

    def _image_row(self, ref, name, sha256, path, result, error, options, pixels) -> dict:
        row = {"dataset_id": ref.id, "name": name, "path": None if path is None else str(path),
               "sha256": sha256, "status": "failed" if error is not None else "ok",
               "error": error, "options": canonical_json(options or {}), "stored": _now()}
        if pixels is not None:
            row["pixels_file"] = files.put_array(self.files_dir, np.asarray(pixels))
            row["height"], row["width"] = np.shape(pixels)[:2]
        if result is None:
            return row
        labels = np.asarray(result.labels)
        row.update(
            height=labels.shape[0], width=labels.shape[1],
            pixel_size_nm=(None if result.pixel_size_nm is None
                           else float(result.pixel_size_nm)),
            scale_source=result.scale_source,
            scale_note=result.scale_note, n_segmented=int(result.n_segmented),
            n_dropped_border=int(result.n_dropped_border),
            n_dropped_scale_bar=int(result.n_dropped_scale_bar),
            mask_file=files.put_array(self.files_dir, labels),
            crops_file=files.put_array(self.files_dir, np.asarray(result.crops)),
            scale_bar=None if result.scale_bar is None else canonical_json(result.scale_bar))
        return row

    @staticmethod
    def _add_particles(con, ref: DatasetRef, table: pd.DataFrame) -> None:
        known = con.execute("SELECT particle_columns FROM datasets WHERE id = ?",
                            [ref.id]).fetchall()[0][0]
        columns = schema.merge_columns(json.loads(known) if known else None, table)
        schema.insert_particles(con, ref.id, table)
        con.execute("UPDATE datasets SET particle_columns = ? WHERE id = ?",
                    [json.dumps(columns), ref.id])

    def mark_complete(self, ref: DatasetRef, complete: bool = True) -> None:
        """Record that every image of the dataset's batch was stored (or failed)."""
        with self._session() as con:
            con.execute("UPDATE datasets SET status = ?, updated = ? WHERE id = ?",
                        ["complete" if complete else "incomplete", _now(), ref.id])

    def delete(self, name: str, version: int | None = None) -> list[DatasetRef]:
        """Delete one version (or, without ``version``, every version) of a dataset.

        Its rows go in one transaction; then array files no stored image names any more
        are removed. Returns the deleted versions.
        """
        refs = [self.resolve(name, version)] if version is not None else self.versions(name)
        if not refs:
            raise StoreError(f"There is no dataset {name!r} in {self.path}; "
                             "`tempipe datasets list` shows the stored ones.")
        ids = [r.id for r in refs]
        marks = ", ".join("?" * len(ids))
        with self._session() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                if schema.table_exists(con, "particles"):
                    con.execute(f"DELETE FROM particles WHERE dataset_id IN ({marks})", ids)
                con.execute(f"DELETE FROM images WHERE dataset_id IN ({marks})", ids)
                con.execute(f"DELETE FROM datasets WHERE id IN ({marks})", ids)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            rows = con.execute("SELECT mask_file, crops_file, pixels_file FROM images").fetchall()
            files.collect_garbage(self.files_dir, {d for r in rows for d in r if d})
            con.execute("CHECKPOINT")
        return refs

    # --- reading ----------------------------------------------------------------------

    def versions(self, name: str) -> list[DatasetRef]:
        """Every stored version of ``name``, oldest first."""
        with self._session(write=False) as con:
            if con is None:
                return []
            rows = con.execute(f"{self._REF_SQL} WHERE name = ? ORDER BY version",
                               [name]).fetchall()
        return [self._ref(r) for r in rows]

    def resolve(self, name: str, version: int | None = None) -> DatasetRef:
        """The version ``version`` of ``name`` (None = the newest); StoreError if absent."""
        refs = self.versions(name)
        found = [r for r in refs if version is None or r.version == int(version)]
        if not found:
            have = ", ".join(f"v{r.version}" for r in refs)
            raise StoreError(f"There is no dataset {name!r}"
                             + (f" version {version} (stored: {have})" if refs else "")
                             + f" in {self.path}; `tempipe datasets list` shows what is stored.")
        return found[-1]

    def list_datasets(self) -> pd.DataFrame:
        """One row per dataset version: name, version, status, counts, model, parameters."""
        columns = ["name", "version", "status", "created", "updated", "images", "failed",
                   "particles", "model_version", "source", "parameters"]
        with self._session(write=False) as con:
            if con is None:
                return pd.DataFrame(columns=columns)
            table = con.execute(
                "SELECT d.name, d.version, d.status, d.created, d.updated, "
                "count(i.name) FILTER (WHERE i.status = 'ok') AS images, "
                "count(i.name) FILTER (WHERE i.status = 'failed') AS failed, "
                "coalesce(sum(i.n_particles) FILTER (WHERE i.status = 'ok'), 0)::BIGINT "
                "AS particles, d.model_version, d.source, d.parameters::VARCHAR AS parameters "
                "FROM datasets d LEFT JOIN images i ON i.dataset_id = d.id "
                "GROUP BY ALL ORDER BY d.name, d.version").df()
        return table[columns]

    def dataset(self, name: str, version: int | None = None) -> StoredDataset:
        """Read a dataset back: particles, images and failures (arrays on demand)."""
        ref = self.resolve(name, version)
        with self._session(write=False) as con:
            records, columns = self._records(con, ref)
            particles = schema.read_particles(con, ref.id, columns)
        ok = records["status"] == "ok"
        images = records.loc[ok, IMAGE_COLUMNS].reset_index(drop=True)
        failures = records.loc[~ok, ["image", "error"]].reset_index(drop=True)
        return StoredDataset(ref, particles, images, failures, records, self)

    @staticmethod
    def _records(con, ref: DatasetRef) -> tuple[pd.DataFrame, list]:
        records = con.execute("SELECT * EXCLUDE (options, scale_bar), options::VARCHAR AS "
                              "options, scale_bar::VARCHAR AS scale_bar FROM images WHERE "
                              "dataset_id = ? ORDER BY seq, name", [ref.id]).df()
        records = records.rename(columns={"name": "image"})
        for column in ("options", "scale_bar"):
            records[column] = [json.loads(v) if isinstance(v, str) else None
                               for v in records[column]]
        known = con.execute("SELECT particle_columns FROM datasets WHERE id = ?",
                            [ref.id]).fetchall()[0][0]
        return records, json.loads(known) if known else []

    def export(self, name: str, out_dir: str | os.PathLike, version: int | None = None) -> dict:
        """Write ``particles.csv``, ``particles.parquet`` and ``summary.json`` into ``out_dir``.

        The same files ``tempipe analyze --out`` writes, streamed in chunks of images so a
        large dataset never sits in memory whole. Returns the summary.
        """
        ref = self.resolve(name, version)
        with self._session(write=False) as con:
            records, columns = self._records(con, ref)
        ok = records["status"] == "ok"

        def read_chunk(seq_low: int, seq_high: int) -> pd.DataFrame:
            with self._session(write=False) as con:
                return schema.read_particles(con, ref.id, columns, (seq_low, seq_high))

        return export_dataset(records[ok], records.loc[~ok, ["image", "error"]],
                              [c for c, _ in columns], read_chunk, Path(out_dir))

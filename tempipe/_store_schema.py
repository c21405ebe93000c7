"""The store's DuckDB schema, its connections, and the particle table's open set of columns.

Tables
------
``datasets``
    ``id``, ``name``, ``version`` (1, 2, ... per name), ``created``/``updated`` (UTC),
    ``status`` (``incomplete`` while a writer adds images or after it died, ``complete``
    when it finished), ``parameters`` (JSON), ``parameters_key`` (sha256 of their canonical
    JSON: same name + same key = same dataset), ``model_version``, ``source``,
    ``tempipe_version``, ``particle_columns`` (JSON list of ``[column, pandas dtype]``: the
    dataset's particle table is read back with exactly these columns and dtypes).
``images``
    One row per image and dataset, primary key ``(dataset_id, name)``: ``seq`` (position in
    the batch that stored it; the order of read-back), ``path``, ``sha256`` (of the file's
    bytes, or of the pixels for images that had no file), ``height``, ``width``,
    ``pixel_size_nm``, ``scale_source``, ``scale_note``, ``status`` (``ok``/``failed``),
    ``error``, the counts of the pipeline, the digests of the mask/crops/pixels files,
    ``options`` (JSON: the scale the user gave for this image) and ``scale_bar`` (JSON).
``particles``
    Every column of the particle tables stored so far, plus ``dataset_id`` and ``_row``
    (row order within its image). Columns are added when a table brings new ones;
    a numeric column whose type differs is widened (to BIGINT or DOUBLE), never narrowed.
``store_meta``
    ``key``/``value`` pairs (``schema_version``).

Connections are opened per operation and closed after it (see :class:`tempipe.store.Store`
for the lock around them), so no process keeps the file open between operations.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from tempipe.errors import StoreError

SCHEMA_VERSION = 1

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS store_meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    "CREATE SEQUENCE IF NOT EXISTS dataset_id_seq START 1",
    """CREATE TABLE IF NOT EXISTS datasets (
        id INTEGER PRIMARY KEY DEFAULT nextval('dataset_id_seq'),
        name VARCHAR NOT NULL, version INTEGER NOT NULL,
        created TIMESTAMP NOT NULL, updated TIMESTAMP NOT NULL, status VARCHAR NOT NULL,
        parameters JSON NOT NULL, parameters_key VARCHAR NOT NULL, model_version VARCHAR,
        source VARCHAR, tempipe_version VARCHAR, particle_columns JSON,
        UNIQUE (name, version))""",
    """CREATE TABLE IF NOT EXISTS images (
        dataset_id INTEGER NOT NULL, seq INTEGER NOT NULL, name VARCHAR NOT NULL,
        path VARCHAR, sha256 VARCHAR, height INTEGER, width INTEGER, pixel_size_nm DOUBLE,
        scale_source VARCHAR, scale_note VARCHAR, status VARCHAR NOT NULL, error VARCHAR,
        n_particles INTEGER, n_segmented INTEGER, n_dropped_border INTEGER,
        n_dropped_scale_bar INTEGER, mask_file VARCHAR, crops_file VARCHAR,
        pixels_file VARCHAR, options JSON, scale_bar JSON, stored TIMESTAMP NOT NULL,
        PRIMARY KEY (dataset_id, name))""",
)

IMAGE_FIELDS = ("dataset_id", "seq", "name", "path", "sha256", "height", "width",
                "pixel_size_nm", "scale_source", "scale_note", "status", "error",
                "n_particles", "n_segmented", "n_dropped_border", "n_dropped_scale_bar",
                "mask_file", "crops_file", "pixels_file", "options", "scale_bar", "stored")

_INTEGER = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT"}
_FLOAT = {"FLOAT", "DOUBLE"}
_SIGNED = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT")


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file (created if missing); StoreError when it is not a store."""
    try:
        return duckdb.connect(str(path))
    except duckdb.Error as exc:
        raise StoreError(f"Cannot open the store {path}: {exc}. If another program holds "
                         "it, wait for it to finish; if the file is not a tempipe store, "
                         "choose another path (--store or TEMPIPE_HOME).") from exc


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables if missing; refuse a store written by a newer schema."""
    for statement in SCHEMA:
        con.execute(statement)
    rows = con.execute("SELECT value FROM store_meta WHERE key = 'schema_version'").fetchall()
    if not rows:
        con.execute("INSERT INTO store_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
    elif int(rows[0][0]) > SCHEMA_VERSION:
        raise StoreError(f"The store was written by a newer tempipe (schema {rows[0][0]}, this "
                         f"one reads {SCHEMA_VERSION}); update tempipe to open it.")


def quote(name: str) -> str:
    """A SQL identifier for a column name."""
    return '"' + str(name).replace('"', '""') + '"'


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
                       [table]).fetchall()[0][0] > 0


def _column_types(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    return {row[0]: row[1] for row in con.execute(f"DESCRIBE {relation}").fetchall()}


def _wider(old: str, new: str) -> str | None:
    """The type a column of type ``old`` must become to hold ``new`` (None: keep ``old``)."""
    if old == new:
        return None
    if old in _SIGNED and new in _SIGNED:
        return None if _SIGNED.index(old) >= _SIGNED.index(new) else new
    if old in _INTEGER and new in _INTEGER:
        return None if old in ("BIGINT", "HUGEINT") and new != "UBIGINT" else "HUGEINT"
    if {old, new} <= _INTEGER | _FLOAT:
        return None if old == "DOUBLE" else "DOUBLE"
    raise StoreError(f"A particle column holds {new} values where the store has {old}; "
                     "this table does not come from the same kind of analysis. Store it "
                     "in another store (--store PATH).")


def insert_particles(con: duckdb.DuckDBPyConnection, dataset_id: int,
                     particles: pd.DataFrame) -> None:
    """Append one image's particle rows (inside the caller's transaction).

    The frame is handed to DuckDB as a registered pandas view (no row-by-row inserts);
    new columns are added to the table first and numeric types widened when needed.
    """
    frame = particles.reset_index(drop=True)
    frame = frame.loc[:, frame.notna().any(axis=0).to_numpy()]  # all-NULL: nothing to add
    frame.insert(0, "_row", range(len(frame)))
    frame.insert(0, "dataset_id", dataset_id)
    con.register("tempipe_frame", frame)
    try:
        if not table_exists(con, "particles"):
            con.execute("CREATE TABLE particles AS SELECT * FROM tempipe_frame LIMIT 0")
        existing = _column_types(con, "particles")
        for column, kind in _column_types(con, "tempipe_frame").items():
            if column not in existing:
                con.execute(f"ALTER TABLE particles ADD COLUMN {quote(column)} {kind}")
            elif (target := _wider(existing[column], kind)) is not None:
                con.execute(f"ALTER TABLE particles ALTER {quote(column)} TYPE {target}")
        con.execute("INSERT INTO particles BY NAME SELECT * FROM tempipe_frame")
    finally:
        con.unregister("tempipe_frame")


def read_particles(con: duckdb.DuckDBPyConnection, dataset_id: int,
                   columns: list[list[str]], seq_range: tuple[int, int] | None = None
                   ) -> pd.DataFrame:
    """The stored particles of a dataset in image order, with its own columns and dtypes.

    ``columns`` is the dataset's ``particle_columns``; ``seq_range`` (inclusive) limits the
    read to the images with ``seq`` in that range (for chunked exports).
    """
    names = [c for c, _ in columns]
    if not names or not table_exists(con, "particles"):
        return _cast(pd.DataFrame({c: [] for c in names}), columns)
    present = _column_types(con, "particles")
    select = ", ".join(f"p.{quote(c)}" if c in present else f"NULL AS {quote(c)}"
                       for c in names)
    where, args = "p.dataset_id = ?", [dataset_id]
    if seq_range is not None:
        where += " AND i.seq BETWEEN ? AND ?"
        args += list(seq_range)
    sql = (f"SELECT {select} FROM particles p JOIN images i ON i.dataset_id = p.dataset_id "
           f"AND i.name = p.image WHERE {where} ORDER BY i.seq, i.name, p._row")
    return _cast(con.execute(sql, args).df(), columns)


def _cast(frame: pd.DataFrame, columns: list[list[str]]) -> pd.DataFrame:
    out = {}
    for name, dtype in columns:
        values = frame[name]
        try:
            out[name] = values.astype(dtype)
        except (TypeError, ValueError):
            out[name] = values          # e.g. integers with missing values stay float
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def merge_columns(known: list[list[str]] | None, particles: pd.DataFrame) -> list[list[str]]:
    """The dataset's column list after adding this table's (order kept, new ones appended)."""
    known = [list(c) for c in (known or [])]
    names = {c for c, _ in known}
    known += [[c, str(particles[c].dtype)] for c in particles.columns if c not in names]
    return known

"""Export of a stored dataset: the files ``tempipe analyze --out`` writes, in chunks.

Particles are read a few hundred thousand rows at a time (whole images per chunk) and
appended to ``particles.csv`` and ``particles.parquet``; only the three columns the summary
needs (``image`` and the two sizes in nm) are kept across chunks for ``summary.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tempipe.summary import SIZE_COLUMNS, summarize

#: Particle rows read per chunk (a chunk never splits an image).
CHUNK_ROWS = 200_000
SUMMARY_IMAGE_COLUMNS = ["image", "n_segmented", "n_dropped_border", "n_dropped_scale_bar",
                         "pixel_size_nm", "scale_source", "scale_note"]


def _seq_chunks(images: pd.DataFrame, rows: int) -> list[tuple[int, int]]:
    """Inclusive ``seq`` ranges holding about ``rows`` particles each."""
    counts = images.groupby("seq", sort=True)["n_particles"].sum()
    chunks, start, total = [], None, 0
    for seq, n in counts.items():
        start = seq if start is None else start
        total += int(n if pd.notna(n) else 0)
        if total >= rows:
            chunks.append((int(start), int(seq)))
            start, total = None, 0
    if start is not None:
        chunks.append((int(start), int(counts.index[-1])))
    return chunks


def export_dataset(images: pd.DataFrame, failures: pd.DataFrame, columns: list[str],
                   read_chunk: Callable[[int, int], pd.DataFrame], out: Path,
                   chunk_rows: int | None = None) -> dict:
    """Write the three files; ``read_chunk(seq_low, seq_high)`` yields particle rows.

    ``images``: the stored rows of the analysed images (``seq``, ``n_particles`` and the
    columns of the summary); ``failures``: ``image``, ``error``. Returns the summary.
    """
    out.mkdir(parents=True, exist_ok=True)
    csv_path, parquet_path = out / "particles.csv", out / "particles.parquet"
    keep = ["image", *[c for c in SIZE_COLUMNS.values() if c in columns]]
    sizes, writer, first = [], None, True
    try:
        with open(csv_path, "w", newline="") as handle:
            for low, high in _seq_chunks(images, chunk_rows or CHUNK_ROWS):
                chunk = read_chunk(low, high)
                if chunk.empty:
                    continue
                chunk.to_csv(handle, index=False, header=first)
                table = pa.Table.from_pandas(chunk, preserve_index=False,
                                             schema=None if writer is None else writer.schema)
                if writer is None:
                    writer = pq.ParquetWriter(parquet_path, table.schema)
                writer.write_table(table)
                sizes.append(chunk[keep])
                first = False
            if first:  # no particle at all: the header alone
                pd.DataFrame(columns=columns).to_csv(handle, index=False)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        pd.DataFrame(columns=columns).to_parquet(parquet_path, index=False)
    particles = pd.concat(sizes, ignore_index=True) if sizes else pd.DataFrame(columns=keep)
    summary = summarize(particles, images[SUMMARY_IMAGE_COLUMNS].reset_index(drop=True),
                        failures.reset_index(drop=True))
    (out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False))
    return summary

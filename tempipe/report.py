"""Reports for collaborators: one self-contained HTML page, the particle table, a ZIP.

:func:`build_html_report` writes a single HTML file that opens offline: plotly.js is
embedded once in its head and every figure stays interactive; tables are plain HTML; the
segmentation parameters, the shape model's card, the input files with their sha256 and
the date are stated. :func:`build_report_zip` bundles that page with ``particles.csv``,
``particles.parquet``, ``summary.json``, every table as CSV and every figure as a PNG
(rendered by kaleido with the system's Chromium; when that fails, the figure's Plotly JSON
is written instead and the ZIP's README says so).
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import math
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from tempipe import __version__
from tempipe.errors import ParameterError

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1200px;padding:0 1rem;color:#222}
h1{border-bottom:2px solid #1f77b4;padding-bottom:.3rem}h2{margin-top:2.5rem;color:#1f77b4}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0 1.5rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th{background:#f0f4f8}td:first-child,th:first-child{text-align:left}
.meta td{text-align:left}.note{color:#555;font-size:.9rem}.figure{margin:1rem 0}
code{background:#f4f4f4;padding:0 .2rem}
"""


@dataclass
class ReportSection:
    """One chapter of a report: a title, a paragraph, figures and tables (in that order).

    Attributes
    ----------
    title : str
    text : str
        Plain text (escaped in the HTML); blank lines separate paragraphs.
    figures : dict of str to plotly Figure
    tables : dict of str to DataFrame
    """

    title: str
    text: str = ""
    figures: dict[str, go.Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of some bytes (the fingerprint of an input file)."""
    return hashlib.sha256(bytes(data)).hexdigest()


def input_files(files: dict) -> pd.DataFrame:
    """Input-file table of a report: ``dataset, image, sha256`` for each file.

    ``files`` maps a dataset name to its micrograph paths; files are hashed in 1 MiB
    blocks (never read whole into memory).
    """
    rows = []
    for name, paths in files.items():
        for path in paths:
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            rows.append({"dataset": name, "image": Path(path).name,
                         "sha256": digest.hexdigest()})
    return pd.DataFrame(rows, columns=["dataset", "image", "sha256"])


def slug(text: str) -> str:
    """File-name-safe lower-case form of a title: ``"Size (nm)"`` -> ``"size-nm"``."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "item"


def _table_html(table: pd.DataFrame) -> str:
    def fmt(value):
        if isinstance(value, (float, np.floating)):
            return "" if not math.isfinite(value) else f"{value:.4g}"
        return html.escape(str(value))
    show_index = not isinstance(table.index, pd.RangeIndex)
    return table.to_html(index=show_index, formatters={c: fmt for c in table.columns},
                         escape=False, border=0, na_rep="")


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{html.escape(p.strip())}</p>" for p in text.split("\n\n") if p.strip())


def _key_values(mapping: dict) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_as_text(v))}</td></tr>"
                   for k, v in mapping.items())
    return f"<table class='meta'>{rows}</table>"


def _as_text(value) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    return str(value)


def model_version(card: dict | None) -> str:
    """A one-line identity of a model card (its version/name/date fields, or "none")."""
    if not card:
        return "none (shape CNN not run)"
    parts = [str(card[k]) for k in ("name", "version", "created", "trained", "date")
             if k in card and not isinstance(card[k], (dict, list))]
    return ", ".join(parts) or "model card without a version field"


def build_html_report(title: str, sections: list[ReportSection], *, parameters: dict,
                      inputs: pd.DataFrame, model_card: dict | None = None,
                      created: datetime | None = None) -> str:
    """A self-contained HTML report (plotly.js embedded once; opens offline).

    Parameters
    ----------
    title : str
    sections : list of ReportSection
    parameters : dict
        Analysis parameters (e.g. ``dataclasses.asdict(SegmentParams)`` per dataset).
    inputs : DataFrame
        One row per input file; must have columns ``image`` and ``sha256``.
    model_card : dict, optional
        The shape model's card (None when the CNN was not run).
    created : datetime, optional
        Report date (default: now, UTC).

    Returns
    -------
    str
        The complete HTML document.

    Raises
    ------
    ParameterError
        ``inputs`` lacks the ``image`` or ``sha256`` column, or a section is not a
        ReportSection.
    """
    if not isinstance(inputs, pd.DataFrame) or not {"image", "sha256"} <= set(inputs.columns):
        raise ParameterError("inputs must be a DataFrame with columns 'image' and 'sha256' "
                             "(one row per input file).")
    if not all(isinstance(s, ReportSection) for s in sections):
        raise ParameterError("sections must be a list of ReportSection.")
    created = created or datetime.now(timezone.utc)
    meta = {"date": created.isoformat(timespec="seconds"), "tempipe version": __version__,
            "shape model": model_version(model_card), "input files": len(inputs)}
    body = [f"<h1>{html.escape(title)}</h1>", _key_values(meta), "<h2>Contents</h2><ol>"]
    body += [f"<li><a href='#{slug(s.title)}'>{html.escape(s.title)}</a></li>" for s in sections]
    body.append("<li><a href='#parameters'>Parameters</a></li><li><a href='#model'>Shape "
                "model</a></li><li><a href='#inputs'>Input files</a></li></ol>")
    for s_i, section in enumerate(sections):
        body.append(f"<h2 id='{slug(section.title)}'>{html.escape(section.title)}</h2>")
        body.append(_paragraphs(section.text))
        for f_i, (name, fig) in enumerate(section.figures.items()):
            div = fig.to_html(full_html=False, include_plotlyjs=False,
                              div_id=f"fig-{s_i}-{f_i}", config={"displaylogo": False})
            body.append(f"<div class='figure'><h3>{html.escape(name)}</h3>{div}</div>")
        for name, table in section.tables.items():
            body.append(f"<h3>{html.escape(name)}</h3>{_table_html(table)}")
    body.append("<h2 id='parameters'>Parameters</h2>")
    body += [f"<h3>{html.escape(str(k))}</h3>" + (_key_values(v) if isinstance(v, dict)
                                                  else _paragraphs(_as_text(v)))
             for k, v in parameters.items()]
    body.append("<h2 id='model'>Shape model</h2>")
    body.append(_key_values({k: v for k, v in (model_card or {}).items()
                             if not isinstance(v, (dict, list))})
                if model_card else "<p>The shape CNN was not run for this report.</p>")
    body.append(f"<h2 id='inputs'>Input files</h2>{_table_html(inputs)}")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style>"
            f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
            + "\n".join(body) + "</body></html>")


def particles_csv(particles: pd.DataFrame) -> bytes:
    """The particle table as UTF-8 CSV bytes."""
    return particles.to_csv(index=False).encode("utf-8")


def particles_parquet(particles: pd.DataFrame) -> bytes:
    """The particle table as Parquet bytes (pyarrow)."""
    buffer = io.BytesIO()
    particles.to_parquet(buffer, index=False)
    return buffer.getvalue()


def figure_images(figures: dict[str, go.Figure], *, width: int = 1000, height: int = 600,
                  progress=None) -> tuple[dict[str, bytes], list[str]]:
    """PNG bytes of each figure, rendered by kaleido (Chromium); failures listed.

    Returns
    -------
    images : dict of str to bytes
        By figure name, for those that rendered.
    problems : list of str
        One sentence per figure that did not render (or for kaleido missing).
    """
    try:
        import kaleido
        kaleido.start_sync_server(silence_warnings=True)
    except Exception as exc:  # noqa: BLE001 - no images is a fallback, not a failure
        return {}, [f"figure images were not rendered: kaleido could not start ({exc})"]
    images, problems = {}, []
    for done, (name, fig) in enumerate(figures.items(), start=1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                images[name] = fig.to_image(format="png", width=width, height=height)
        except Exception as exc:  # noqa: BLE001 - keep the other figures
            problems.append(f"{name}: not rendered as PNG ({type(exc).__name__}: {exc})")
        if progress is not None:
            progress(done, len(figures), name)
    return images, problems


def build_report_zip(html_text: str, particles: pd.DataFrame, summary: dict,
                     sections: list[ReportSection], *, images: bool = True,
                     progress=None) -> bytes:
    """ZIP of everything: report, particle table (CSV, Parquet), summary, tables, figures.

    Parameters
    ----------
    html_text : str
        From :func:`build_html_report`.
    particles : DataFrame
    summary : dict
        JSON-ready summary (e.g. :func:`tempipe.summary.summarize`).
    sections : list of ReportSection
        Their tables go to ``tables/``, their figures to ``figures/`` (PNG, or Plotly JSON
        where rendering failed or ``images`` is False).
    images : bool
        Render PNGs with kaleido.
    progress : callable ``(done, total, name)``, optional
        Called after each figure image.

    Returns
    -------
    bytes
        The ZIP archive.
    """
    figures = {f"{slug(s.title)}/{slug(n)}": fig for s in sections for n, fig in s.figures.items()}
    pngs, problems = figure_images(figures, progress=progress) if images else (
        {}, ["figure images were not requested: figures are Plotly JSON"])
    listing = ["report.html - the report (opens offline, interactive figures)",
               "particles.csv, particles.parquet - one row per particle",
               "summary.json - counts and size statistics", "tables/ - every table as CSV",
               "figures/ - every figure as PNG (Plotly JSON where a PNG could not be made)"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("report.html", html_text)
        archive.writestr("particles.csv", particles_csv(particles))
        archive.writestr("particles.parquet", particles_parquet(particles))
        archive.writestr("summary.json", json.dumps(summary, indent=2, default=_json_default))
        for section in sections:
            for name, table in section.tables.items():
                archive.writestr(f"tables/{slug(section.title)}/{slug(name)}.csv",
                                 table.to_csv().encode("utf-8"))
        for name, fig in figures.items():
            if name in pngs:
                archive.writestr(f"figures/{name}.png", pngs[name])
            else:
                archive.writestr(f"figures/{name}.json", fig.to_json())
        notes = "\n".join(f"- {p}" for p in problems) or "- every figure rendered as PNG"
        archive.writestr("README.txt", "tempipe report bundle\n\nContents:\n"
                         + "\n".join(f"- {line}" for line in listing)
                         + f"\n\nFigure images:\n{notes}\n")
    return buffer.getvalue()


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)

"""Helpers of the Datasets page: demo loading, uploads (files or a ZIP), scale choice."""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import replace
from pathlib import PurePosixPath

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from tempipe.io import SUPPORTED_SUFFIXES
from tempipe.scalebar import ScaleBar
from tempipe.simulate import DEMO_BATCHES
from tempipe_app import analysis, state
from tempipe_app.common import ProgressBar, explain
from tempipe_app.overlay import grey_uint8, png_uri

UPLOAD_TYPES = sorted({s.lstrip(".") for s in SUPPORTED_SUFFIXES} | {"zip"})
DEMO_TITLES = {"hot-injection": "hot-injection (demo)", "larp": "LARP (demo)"}
#: Largest total of uncompressed bytes taken from one ZIP (a guard against zip bombs).
MAX_ZIP_BYTES = 2 * 1024**3
SCALE_CHOICES = {
    "file": "From each file's calibration (else the scale bar, if its label is read)",
    "scale-bar": "From the scale bar drawn on each image",
    "typed": "Typed pixel size (nm per pixel) for every image",
}


def load_demo(n_images: int, progress_text: str = "Preparing the demo") -> list[state.Dataset]:
    """Simulate both demo batches, store them, and segment + run the CNN with progress."""
    made = []
    bar = ProgressBar(progress_text)
    names = list(DEMO_BATCHES)
    for i, name in enumerate(names, start=1):
        bar(i - 1, len(names), f"simulating {name}")
        images = [state.ImageEntry(m, sha, scale_choice="file")
                  for m, sha in analysis.demo_micrographs(name, n_images)]
        made.append(state.add(state.Dataset(DEMO_TITLES.get(name, name), images,
                                            source=f"demo: {name}")))
    bar.done()
    for dataset in made:
        seg = ProgressBar(f"Segmenting {dataset.name}")
        analysis.run_segmentation(dataset, seg)
        seg.done()
        cnn = ProgressBar(f"Shape inference on {dataset.name}")
        analysis.run_shape_inference(dataset, cnn)
        cnn.done()
    state.set_active(made[0].name)
    return made


def _is_image_name(name: str) -> bool:
    path = PurePosixPath(name)
    hidden = any((part.startswith(".") and part not in (".", ".."))  # "../x.png" is kept
                 or part == "__MACOSX" for part in path.parts)  # (only its name is used)
    return not hidden and path.suffix.lower() in SUPPORTED_SUFFIXES


def expand_uploads(files) -> tuple[list[tuple[str, bytes]], list[dict]]:
    """Uploaded files (and the members of uploaded ZIPs) as (name, bytes) pairs.

    Returns the pairs and a list of ``{"image", "error"}`` for what cannot be used.
    """
    pairs, problems = [], []
    for upload in files or []:
        data = upload.getvalue()
        if not upload.name.lower().endswith(".zip"):
            pairs.append((upload.name, data))
            continue
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()]
                if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
                    raise zipfile.BadZipFile("its content is larger than 2 GB")
                found = [m for m in members if _is_image_name(m.filename)]
                if not found:
                    problems.append({"image": upload.name, "error": (
                        f"{upload.name} holds no micrograph ({', '.join(SUPPORTED_SUFFIXES)}).")})
                pairs += [(PurePosixPath(m.filename).name, archive.read(m)) for m in found]
        except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
            problems.append({"image": upload.name, "error": (
                f"{upload.name} is not a readable ZIP archive ({exc}); zip the images again.")})
    return pairs, problems


def decode(pairs: list[tuple[str, bytes]]) -> tuple[list[state.ImageEntry], list[dict]]:
    """Read each file (cached by content); unreadable files become ``{"image", "error"}``."""
    entries, problems, seen = [], [], set()
    for name, data in pairs:
        sha = hashlib.sha256(data).hexdigest()
        if (sha, name) in seen:
            continue
        seen.add((sha, name))
        try:
            micrograph = analysis.read_upload(sha, name, data)
        except Exception as exc:  # noqa: BLE001 - every file gets its verdict
            problems.append({"image": name, "error": explain(exc)})
            continue
        entries.append(state.ImageEntry(micrograph, sha))
    names = [e.name for e in entries]
    for entry in entries:  # the same name twice (e.g. from two ZIP folders): keep both
        if names.count(entry.name) > 1:
            entry.micrograph = replace(entry.micrograph, name=f"{entry.sha256[:8]}-{entry.name}")
    return entries, problems


def scale_bars(entries: list[state.ImageEntry]) -> dict[str, ScaleBar | None]:
    """The scale bar found on each image, by image name."""
    return {e.name: analysis.scale_bar(e.sha256, e.micrograph.image) for e in entries}


def scale_bar_figure(image: np.ndarray, bar: ScaleBar, height: int = 180) -> go.Figure:
    """The region around a found scale bar, with the bar outlined (what the app read)."""
    r0, c0, r1, c1 = bar.label_bbox or bar.bbox
    pad = max(10, (r1 - r0) // 2)
    r0, c0 = max(0, r0 - pad), max(0, c0 - pad)
    r1, c1 = min(image.shape[0], r1 + pad), min(image.shape[1], c1 + pad)
    rgb = np.repeat(grey_uint8(image)[r0:r1, c0:c1, None], 3, axis=2)
    fig = go.Figure(go.Image(source=png_uri(rgb), x0=c0, y0=r0, hoverinfo="skip"))
    b0, b1, b2, b3 = bar.bbox
    fig.add_shape(type="rect", x0=b1 - 0.5, x1=b3 - 0.5, y0=b0 - 0.5, y1=b2 - 0.5,
                  line={"color": "#ff7f0e", "width": 3})
    fig.update_layout(height=height, margin={"l": 0, "r": 0, "t": 0, "b": 0})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def apply_scale(entries: list[state.ImageEntry], choice: str, typed_nm: float | None,
                bar_values: dict[str, float | None], bars: dict[str, ScaleBar | None]) -> None:
    """Record the chosen scale on each entry (see :class:`~tempipe_app.state.ImageEntry`)."""
    for entry in entries:
        entry.scale_choice = choice
        entry.pixel_size_nm, entry.scale_bar_nm = None, None
        if choice == "typed":
            entry.pixel_size_nm = typed_nm
        elif choice == "scale-bar":
            bar, value = bars.get(entry.name), bar_values.get(entry.name)
            if bar is not None and value:  # in the file's pixels, as a typed size is
                factor = entry.micrograph.metadata.get("downsample_factor", 1)
                entry.pixel_size_nm = float(value) / float(bar.length_px) / factor
        elif choice == "file" and entry.micrograph.pixel_size_nm is None:
            entry.scale_bar_nm = bar_values.get(entry.name)


def files_table(entries: list[state.ImageEntry], bars: dict) -> pd.DataFrame:
    """What was read from each file: size, calibration, scale bar."""
    rows = []
    for e in entries:
        bar = bars.get(e.name)
        rows.append({
            "image": e.name, "rows x cols": "x".join(map(str, e.micrograph.image.shape)),
            "file calibration": (f"{e.micrograph.pixel_size_nm:.4g} nm/px"
                                 if e.micrograph.pixel_size_nm else "none"),
            "scale bar": ("not found" if bar is None else
                          f"{bar.length_px:.0f} px, label "
                          + (f"read as {bar.value_nm:g} nm" if bar.value_nm else "not read")),
            "sha256": e.sha256[:12]})
    return pd.DataFrame(rows)


def datasets_table() -> pd.DataFrame:
    """Stored datasets: name, source, images, particles, scale."""
    rows = []
    for ds in state.store().values():
        n = sum(len(r.particles) for r in ds.results.values()) if ds.segmented else None
        rows.append({"dataset": ds.name, "source": ds.source, "images": len(ds.images),
                     "particles": n, "failed images": len(ds.failures) + len(ds.unreadable),
                     "segmented": ds.segmented, "shape CNN": ds.shaped, "created": ds.created})
    return pd.DataFrame(rows)


def check_zip_error(problems: list[dict]) -> None:
    """Show unreadable files as one warning (the other files go on)."""
    if problems:
        st.warning(f"{len(problems)} file(s) could not be used; the others go on.")
        st.dataframe(pd.DataFrame(problems), hide_index=True, width="stretch")

"""The segmentation overlay: coloured instances, boxes, excluded particles grey, scale bar.

Large images are previewed on a block-averaged copy (factor ``f`` so the longer side is
about 1024 px): the parameters are length-free (multiples of the typical radius), so the
preview shows what the full-resolution run will find, in well under a second on 2048².
"""

from __future__ import annotations

import base64
import colorsys
import io
import math
import time
from dataclasses import dataclass, replace

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image
from scipy import ndimage as ndi

from tempipe.scalebar import ScaleBar, scale_bar_exclusion
from tempipe.segment import SegmentParams, segment

#: Longer side of the preview and display images (px).
DISPLAY_SIDE = 1024
#: Colours of kept particles (cycled by label id): saturated hues, golden-angle spaced, so
#: neighbours differ and none is close to the grey of excluded particles.
PALETTE = np.array([[255 * c for c in colorsys.hsv_to_rgb((i * 0.618034) % 1, 0.85, 1.0)]
                    for i in range(32)], dtype=np.float32)
EXCLUDED_RGB = np.array([150.0, 150.0, 150.0], dtype=np.float32)
SCALE_BAR_COLOR = "#ffd400"


def grey_uint8(image: np.ndarray) -> np.ndarray:
    """(M, N) image -> uint8, 0.5-99.5 percentile stretch (percentiles on a subsample)."""
    image = np.asarray(image, dtype=np.float32)
    step = max(1, int(math.sqrt(image.size / 250_000)))
    sample = image[::step, ::step]
    lo, hi = np.nanpercentile(sample, [0.5, 99.5])
    scaled = (image - lo) * (255.0 / max(float(hi - lo), 1e-12))
    return np.clip(np.nan_to_num(scaled, nan=0.0), 0, 255).astype(np.uint8)


def png_uri(rgb: np.ndarray) -> str:
    """PNG data URI of an (M, N, 3) uint8 image, fast compression."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def jpeg_uri(rgb: np.ndarray, quality: int = 90) -> str:
    """JPEG data URI of an (M, N, 3) uint8 image (large overlays: ~10x smaller than PNG)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def display_factor(shape: tuple[int, int]) -> int:
    """Integer block size that brings the longer side to about :data:`DISPLAY_SIDE`."""
    return max(1, math.ceil(max(shape) / (DISPLAY_SIDE * 1.25)))


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks (the image trimmed to a multiple of it)."""
    if factor == 1:
        return np.asarray(image, dtype=np.float32)
    rows, cols = (s // factor * factor for s in image.shape)
    view = np.asarray(image[:rows, :cols], dtype=np.float32)
    return view.reshape(rows // factor, factor, cols // factor, factor).mean(axis=(1, 3))


@st.cache_data(max_entries=32, show_spinner=False)
def reduced(sha256: str, factor: int, _image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The block-averaged image (float32) and its grey uint8 rendering, per image."""
    small = block_mean(_image, factor)
    return small, grey_uint8(small)


@st.cache_data(max_entries=64, show_spinner=False)
def preview_labels(sha256: str, factor: int, params: SegmentParams,
                   _image: np.ndarray) -> np.ndarray:
    """Labels of the image segmented at 1/``factor`` resolution (``factor`` 1 = full)."""
    if factor == 1:
        return segment(_image, params)
    if params.particle_radius_px is not None:
        params = replace(params, particle_radius_px=params.particle_radius_px / factor)
    return segment(reduced(sha256, factor, _image)[0], params)


def excluded_ids(labels: np.ndarray, bar: ScaleBar | None, factor: int = 1) -> np.ndarray:
    """Ids of particles the pipeline leaves out: cut by the border, or at the scale bar.

    ``bar`` is in full-resolution pixels; ``labels`` at 1/``factor`` resolution.
    """
    edges = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    ids = set(np.unique(edges[edges > 0]).tolist())
    if bar is not None:
        full_shape = (labels.shape[0] * factor, labels.shape[1] * factor)
        r0, c0, r1, c1 = (v // factor for v in scale_bar_exclusion(bar, full_shape))
        window = labels[r0:r1 + 1, c0:c1 + 1]
        ids |= set(np.unique(window[window > 0]).tolist())
    return np.array(sorted(ids), dtype=np.int64)


def _edges(labels: np.ndarray) -> np.ndarray:
    """Inner boundary pixels of every instance (a label differs from a 4-neighbour)."""
    edge = np.zeros(labels.shape, dtype=bool)
    vertical = labels[1:] != labels[:-1]
    horizontal = labels[:, 1:] != labels[:, :-1]
    edge[1:] |= vertical
    edge[:-1] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return edge & (labels > 0)


def render_overlay(grey: np.ndarray, labels: np.ndarray, excluded: np.ndarray, *,
                   boxes: bool = True, alpha: float = 0.35) -> np.ndarray:
    """(M, N, 3) uint8: grey image, tinted instances with outlines, boxes; excluded grey.

    ``grey`` (uint8, see :func:`grey_uint8`) and ``labels`` have the same shape (both at
    display resolution).
    """
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    n = int(labels.max(initial=0))
    lut = PALETTE[np.arange(n + 1) % len(PALETTE)]
    lut[np.asarray(excluded, dtype=np.int64)] = EXCLUDED_RGB
    fg = labels > 0
    colour = lut[labels[fg]]
    rgb[fg] = (1 - alpha) * rgb[fg] + alpha * colour
    edge = _edges(labels)
    rgb[edge] = lut[labels[edge]]
    if boxes:
        skip = np.zeros(n + 1, dtype=bool)
        skip[np.asarray(excluded, dtype=np.int64)] = True
        for i, sl in enumerate(ndi.find_objects(labels), start=1):
            if sl is None or skip[i]:
                continue
            (r0, r1), (c0, c1) = (sl[0].start, sl[0].stop - 1), (sl[1].start, sl[1].stop - 1)
            rgb[r0, c0:c1 + 1] = rgb[r1, c0:c1 + 1] = lut[i]
            rgb[r0:r1 + 1, c0] = rgb[r0:r1 + 1, c1] = lut[i]
    return rgb.astype(np.uint8)


@dataclass
class Preview:
    """A rendered overlay and what it shows."""

    figure: go.Figure
    n_segmented: int
    n_excluded: int
    factor: int
    seconds: float


def overlay_figure(rgb: np.ndarray, factor: int, bar: ScaleBar | None,
                   title: str = "", height: int = 720) -> go.Figure:
    """Plotly figure of a display-resolution overlay, axes in full-resolution pixels."""
    fig = go.Figure(go.Image(source=jpeg_uri(rgb), dx=factor, dy=factor, x0=0, y0=0,
                             hoverinfo="skip"))
    if bar is not None:
        for box, dash in ((bar.bbox, "solid"), (bar.label_bbox, "dot")):
            if box is None:
                continue
            r0, c0, r1, c1 = box
            fig.add_shape(type="rect", x0=c0, x1=c1, y0=r0, y1=r1,
                          line={"color": SCALE_BAR_COLOR, "width": 3, "dash": dash})
    fig.update_layout(title=title, height=height, margin={"l": 0, "r": 0, "t": 40, "b": 0},
                      xaxis_title="column (px)", yaxis_title="row (px)")
    fig.update_yaxes(scaleanchor="x")
    return fig


def preview(sha256: str, image: np.ndarray, params: SegmentParams, bar: ScaleBar | None, *,
            full_resolution: bool = False, boxes: bool = True) -> Preview:
    """Segment (cached) and render the overlay of one image; timed end to end."""
    start = time.perf_counter()
    factor = display_factor(image.shape)
    seg_factor = 1 if full_resolution else factor
    labels = preview_labels(sha256, seg_factor, params, image)
    if seg_factor == 1 and factor > 1:
        labels = labels[:image.shape[0] // factor * factor:factor,
                        :image.shape[1] // factor * factor:factor]
    excluded = excluded_ids(labels, bar, factor)
    rgb = render_overlay(reduced(sha256, factor, image)[1], labels, excluded, boxes=boxes)
    n = int(np.unique(labels[labels > 0]).size)
    fig = overlay_figure(rgb, factor, bar)
    return Preview(fig, n, int(excluded.size), factor, time.perf_counter() - start)

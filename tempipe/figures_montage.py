"""Image figures of shape groups: per-group montages, population montage, group overlay.

Inputs are the particle crops of :func:`tempipe.pipeline.analyze_micrograph`
(``ImageResult.crops``, (N, S, S), particle ~1 on 0, aligned with its particle rows) and
group labels aligned with the same rows. Images are embedded as PNG data URIs (small
figures, fast in a browser); axes are in pixels where they mean something.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from PIL import Image
from plotly.colors import hex_to_rgb
from plotly.subplots import make_subplots
from skimage.transform import resize

from tempipe.errors import ParameterError
from tempipe.figures import group_color
from tempipe.shape_features import seed_of

#: Crop value shown at full darkness (crops hold ~1 inside a particle, up to 2).
_FULL_SCALE = 1.5
#: Darkest grey of a particle in the grey montages (0 = black).
_DARKEST = 0.15


def png_uri(rgb: np.ndarray) -> str:
    """PNG data URI of an (M, N, 3) uint8 image (for ``go.Image(source=...)``)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _check_crops(crops, labels) -> tuple[np.ndarray, np.ndarray]:
    crops = np.asarray(crops, dtype=float)
    labels = np.asarray(labels)
    if crops.ndim != 3 or crops.shape[1] != crops.shape[2]:
        raise ParameterError(f"crops must be an (N, S, S) array of square crops, got shape "
                             f"{crops.shape}.")
    if labels.shape != (len(crops),) or not np.issubdtype(labels.dtype, np.integer):
        raise ParameterError(f"labels must be {len(crops)} integer groups (one per crop), "
                             f"got shape {labels.shape} and dtype {labels.dtype}.")
    return crops, labels.astype(int)


def _tile(crops: np.ndarray, columns: int, gap: int = 2) -> np.ndarray:
    """(n, S, S) -> one (rows * (S + gap), columns * (S + gap)) mosaic, empty cells 0."""
    n, side = crops.shape[0], crops.shape[1]
    rows = max(1, -(-n // columns))
    padded = np.zeros((rows * columns, side + gap, side + gap))
    padded[:n, :side, :side] = crops
    grid = padded.reshape(rows, columns, side + gap, side + gap).transpose(0, 2, 1, 3)
    return grid.reshape(rows * (side + gap), columns * (side + gap))


def _intensity(mosaic: np.ndarray) -> np.ndarray:
    return np.clip(mosaic / _FULL_SCALE, 0.0, 1.0)


def _tinted(intensity: np.ndarray, color: np.ndarray) -> np.ndarray:
    """White background, particles blended towards ``color`` (RGB 0..255) by intensity."""
    return (255 + intensity[..., None] * (color - 255.0)).astype(np.uint8)


def group_montage(crops, labels, *, max_per_group: int = 210, columns: int = 15,
                  rng=0) -> go.Figure:
    """One panel per group showing up to ``max_per_group`` of its particles (paper Fig. 4c).

    Parameters
    ----------
    crops : (N, S, S) ndarray
        Normalised particle crops.
    labels : (N,) int ndarray
        Group of each crop (0 = not grouped, not shown).
    max_per_group : int
        Seeded random sample per larger group.
    columns : int
        Crops per panel row.
    """
    crops, labels = _check_crops(crops, labels)
    groups = [int(g) for g in np.unique(labels[labels > 0])]
    if not groups:
        raise ParameterError("no grouped particles to show (all labels are 0).")
    gen = np.random.default_rng(seed_of(rng))
    n_cols = min(3, len(groups))
    n_rows = -(-len(groups) // n_cols)
    fig = make_subplots(rows=n_rows, cols=n_cols, horizontal_spacing=0.02,
                        vertical_spacing=0.06, subplot_titles=[
                            f"group {g} ({(labels == g).sum()} particles)" for g in groups])
    for i, g in enumerate(groups):
        idx = np.flatnonzero(labels == g)
        if idx.size > max_per_group:
            idx = np.sort(gen.choice(idx, max_per_group, replace=False))
        grey = 1.0 - (1.0 - _DARKEST) * _intensity(_tile(crops[idx], columns))
        rgb = np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=2)
        border = np.array(hex_to_rgb(group_color(g)), dtype=np.uint8)
        rgb[:3], rgb[-3:], rgb[:, :3], rgb[:, -3:] = border, border, border, border
        fig.add_trace(go.Image(source=png_uri(rgb), hoverinfo="skip"),
                      row=i // n_cols + 1, col=i % n_cols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    fig.update_layout(title="Particles of each shape group (crops scaled to one size)",
                      height=320 * n_rows + 80)
    return fig


def population_montage(crops, labels, *, max_particles: int = 1500, tile_px: int = 24,
                       rng=0) -> go.Figure:
    """Every particle (or a proportional sample) tiled in group order, tinted by group.

    The area each colour covers is the group's share of the population (paper Fig. S18).
    Above ``max_particles`` a seeded sample keeps each group's share.
    """
    crops, labels = _check_crops(crops, labels)
    keep = np.flatnonzero(labels > 0)
    if keep.size == 0:
        raise ParameterError("no grouped particles to show (all labels are 0).")
    gen = np.random.default_rng(seed_of(rng))
    if keep.size > max_particles:
        keep = np.sort(gen.choice(keep, max_particles, replace=False))
    keep = keep[np.argsort(labels[keep], kind="stable")]
    small = resize(crops[keep], (keep.size, tile_px, tile_px), order=1, anti_aliasing=True)
    columns = max(1, int(np.ceil(np.sqrt(keep.size * 1.6))))
    mosaic = _intensity(_tile(small, columns, gap=1))
    colors = np.array([hex_to_rgb(group_color(g)) for g in labels[keep]], dtype=float)
    color_map = _tile(np.broadcast_to(np.arange(keep.size)[:, None, None] + 1.0,
                                      (keep.size, tile_px, tile_px)), columns, gap=1)
    cells = color_map.astype(int) - 1
    rgb = np.full(mosaic.shape + (3,), 255, dtype=np.uint8)
    inside = cells >= 0
    rgb[inside] = _tinted(np.maximum(mosaic[inside], 0.25), colors[cells[inside]])
    counts = pd.Series(labels[labels > 0]).value_counts().sort_index()
    fig = go.Figure(go.Image(source=png_uri(rgb), hoverinfo="skip"))
    for g, n in counts.items():  # legend entries only
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=(
            f"group {g}: {n} ({n / counts.sum():.0%})"), marker={"color": group_color(g),
                                                               "size": 12}))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    fig.update_layout(title=f"Population by group ({keep.size} of {counts.sum()} particles "
                            "shown)", plot_bgcolor="white")
    return fig


def group_overlay(image, label_image, particles: pd.DataFrame, labels, *,
                  alpha: float = 0.5) -> go.Figure:
    """Micrograph with each kept particle painted in its group's colour (paper Fig. 4a).

    Parameters
    ----------
    image : (M, N) ndarray
        The micrograph.
    label_image : (M, N) int ndarray
        Its segmentation (e.g. ``ImageResult.labels``).
    particles : DataFrame
        Rows of this image only, with column ``label`` (ids in ``label_image``).
    labels : (len(particles),) int array-like
        Group of each row; particles absent from the table stay uncoloured.
    alpha : float
        Opacity of the colour over the particle, in [0, 1].
    """
    image, label_image = np.asarray(image, float), np.asarray(label_image)
    labels = np.asarray(labels)
    if image.ndim != 2 or label_image.shape != image.shape:
        raise ParameterError(f"image and label_image must be 2-D arrays of one shape, got "
                             f"{image.shape} and {label_image.shape}.")
    if "label" not in particles or labels.shape != (len(particles),):
        raise ParameterError("particles needs a 'label' column and labels one group per row "
                             f"({len(particles)}), got {labels.shape}.")
    if not 0 <= alpha <= 1:
        raise ParameterError(f"alpha must be in [0, 1], got {alpha}.")
    lo, hi = np.percentile(image, [0.5, 99.5])
    grey = np.clip((image - lo) / max(hi - lo, 1e-12), 0, 1) * 255
    rgb = np.repeat(grey[..., None], 3, axis=2)
    ids = particles["label"].to_numpy(int)
    lut = np.zeros(max(int(label_image.max(initial=0)), int(ids.max(initial=0))) + 1, int)
    lut[ids] = labels.astype(int)
    group_image = lut[label_image]
    palette = np.array([hex_to_rgb(group_color(g)) for g in range(lut.max() + 1)], float)
    painted = group_image > 0
    rgb[painted] = (1 - alpha) * rgb[painted] + alpha * palette[group_image[painted]]
    fig = go.Figure(go.Image(source=png_uri(rgb.astype(np.uint8)), hoverinfo="skip"))
    for g in np.unique(labels[labels > 0]):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"group {g}",
                                 marker={"color": group_color(int(g)), "size": 12}))
    fig.update_layout(title="Shape groups on the micrograph", xaxis_title="column (px)",
                      yaxis_title="row (px)", plot_bgcolor="white")
    fig.update_yaxes(scaleanchor="x")
    return fig

"""Helpers of the Shape inference page: montage with re-simulated outlines, histograms,
the model card and its diagnostics figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots
from skimage.draw import polygon2mask

from tempipe.crops import crop_masks
from tempipe.simulate import superformula_radius
from tempipe_app.overlay import png_uri

#: Angles of the re-simulated outline, and rotations tried per symmetry period.
_THETA = np.linspace(0.0, 2 * np.pi, 360, endpoint=False)
N_ROTATIONS = 24
OUTLINE_COLOR = "#ff7f0e"
DIAGNOSTICS = {"learning_curve": "Learning curve", "qq_d": "Q-Q plot of d",
               "rmse_p": "RMSE of p against p", "rmse_l_ratio_d": "RMSE of L_ratio per d"}
#: Particle-to-crop scale of the montage tiles, and the height of the text band.
TEXT_BAND_PX = 14
#: Width the montage is drawn at in the page (sets its height from the mosaic's aspect).
WIDTH_GUESS_PX = 1000


def _polygon_centroid(rows: np.ndarray, cols: np.ndarray) -> tuple[float, float]:
    """Area centroid of a closed polygon (shoelace formula)."""
    r1, c1 = np.roll(rows, -1), np.roll(cols, -1)
    cross = cols * r1 - c1 * rows
    area = cross.sum() / 2
    return (float(((rows + r1) * cross).sum() / (6 * area)),
            float(((cols + c1) * cross).sum() / (6 * area)))


def resim_outline(mask: np.ndarray, p: float, d: float, l_ratio: float
                  ) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Outline of the re-simulated shape that best overlaps a particle mask.

    The eq. 1 curve with the predicted (p, round(d), L) is scaled to the mask's area,
    centred on its centroid and rotated (``N_ROTATIONS`` steps over the symmetry period)
    to the best Jaccard index, as :func:`tempipe.resim.resim_jaccard` does.

    Parameters
    ----------
    mask : (S, S) ndarray
        Particle mask (> 0.5 inside), e.g. from :func:`tempipe.crops.crop_masks`.
    p, d, l_ratio : float
        Predicted parameters.

    Returns
    -------
    (rows, cols, jaccard) or None
        Closed outline vertices in mask pixel coordinates and its Jaccard index; None
        for an empty mask or non-finite parameters.
    """
    inside = np.asarray(mask) > 0.5
    if not inside.any() or not all(np.isfinite([p, d, l_ratio])) or p <= 0 or l_ratio <= 0:
        return None
    d_int = max(float(np.rint(d)), 1.0)
    rows_m, cols_m = np.nonzero(inside)
    centre = rows_m.mean(), cols_m.mean()
    unit = superformula_radius(_THETA, p, d_int, l_ratio)
    unit_area = 0.5 * np.sum(unit ** 2) * (2 * np.pi / _THETA.size)
    scale = np.sqrt(inside.sum() / unit_area)
    best = None
    for phi in np.arange(N_ROTATIONS) * (2 * np.pi / d_int / N_ROTATIONS):
        radius = scale * superformula_radius(_THETA, p, d_int, l_ratio, phi)
        rows, cols = -radius * np.sin(_THETA), radius * np.cos(_THETA)
        c_row, c_col = _polygon_centroid(rows, cols)
        rows, cols = rows - c_row + centre[0], cols - c_col + centre[1]
        shape = polygon2mask(inside.shape, np.column_stack([rows + 0.0, cols + 0.0]))
        jaccard = (shape & inside).sum() / max((shape | inside).sum(), 1)
        if best is None or jaccard > best[2]:
            best = (rows, cols, float(jaccard))
    return best


def montage_sample(table: pd.DataFrame, order: str, n: int, rng=0) -> pd.DataFrame:
    """Rows to show: ``order`` is "random", "worst fit first" or "best fit first"."""
    if order == "random":
        return table.sample(min(n, len(table)), random_state=rng)
    ascending = order == "worst fit first"
    return table.sort_values("resim_jaccard", ascending=ascending, na_position="first").head(n)


def montage_figure(crops: np.ndarray, masks: np.ndarray, rows: pd.DataFrame,
                   columns: int = 8) -> go.Figure:
    """Crops (particle dark on white) with the re-simulated outline and the predictions.

    ``crops`` and ``masks`` are (K, S, S), aligned with ``rows`` (columns ``p``, ``d``,
    ``l_ratio``, ``resim_jaccard``).
    """
    k, side = crops.shape[0], crops.shape[1]
    n_rows = max(1, -(-k // columns))
    cell_h, cell_w = side + TEXT_BAND_PX, side + 4
    mosaic = np.full((n_rows * cell_h, columns * cell_w), 255, np.uint8)
    line_r, line_c, notes = [], [], []
    for i, row in enumerate(rows.itertuples(index=False)):
        top, left = (i // columns) * cell_h, (i % columns) * cell_w
        tile = 255 * (1 - 0.85 * np.clip(crops[i] / 1.5, 0, 1))
        mosaic[top:top + side, left:left + side] = tile.astype(np.uint8)
        outline = resim_outline(masks[i], row.p, row.d, row.l_ratio)
        if outline is not None:
            line_r += [*(outline[0] + top), outline[0][0] + top, None]
            line_c += [*(outline[1] + left), outline[1][0] + left, None]
        notes.append(dict(x=left + side / 2, y=top + side + TEXT_BAND_PX / 2, showarrow=False,
                          text=(f"p {row.p:.2g} · d {row.d:.2g} · L {row.l_ratio:.2g}"
                                f"<br>J {row.resim_jaccard:.2f}"), font={"size": 10}))
    rgb = np.repeat(mosaic[..., None], 3, axis=2)
    fig = go.Figure(go.Image(source=png_uri(rgb), hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=line_c, y=line_r, mode="lines", hoverinfo="skip",
                             line={"color": OUTLINE_COLOR, "width": 1.5},
                             name="re-simulated shape"))
    aspect = mosaic.shape[0] / mosaic.shape[1]
    fig.update_layout(annotations=notes, height=int(WIDTH_GUESS_PX * aspect + 50),
                      margin={"l": 0, "r": 0, "t": 30, "b": 0}, showlegend=True,
                      legend={"orientation": "h", "y": 1.02}, plot_bgcolor="white")
    fig.update_xaxes(visible=False, range=[-0.5, columns * cell_w - 0.5])
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    return fig


def crops_and_masks(results: dict, rows: pd.DataFrame, size: int) -> tuple[np.ndarray,
                                                                            np.ndarray]:
    """Crops and masks (size x size) of the chosen rows (columns ``image``, ``label``)."""
    crops, masks = [], []
    for row in rows.itertuples(index=False):
        result = results[row.image]
        idx = int(np.flatnonzero(result.particles["label"].to_numpy() == row.label)[0])
        crops.append(result.crops[idx])
        masks.append(crop_masks(result.labels, result.crops.shape[1],
                                label_ids=[row.label])[0])
    if not crops:
        return np.zeros((0, size, size)), np.zeros((0, size, size))
    return np.stack(crops), np.stack(masks)


def parameter_histograms(table: pd.DataFrame) -> go.Figure:
    """Histograms of p, d, L ratio and re-simulation Jaccard, confident vs uncertain."""
    panels = (("p", "p (curvature)"), ("d", "d (major axes)"),
              ("l_ratio", "L ratio (elongation)"), ("resim_jaccard", "re-simulation Jaccard"))
    fig = make_subplots(rows=1, cols=4, subplot_titles=[t for _, t in panels])
    uncertain = table["uncertain"].to_numpy(bool) if "uncertain" in table else np.zeros(
        len(table), bool)
    for i, (col, title) in enumerate(panels, start=1):
        for flag, name, colour in ((False, "confident", "#1f77b4"),
                                   (True, "uncertain", "#bbbbbb")):
            values = table.loc[uncertain == flag, col]
            if col == "p":
                values = np.log10(values)
            fig.add_trace(go.Histogram(x=values, name=name, marker_color=colour,
                                       legendgroup=name, showlegend=i == 1), row=1, col=i)
        fig.update_xaxes(title_text="log10 p (1)" if col == "p" else f"{title} (1)",
                         row=1, col=i)
    fig.update_yaxes(title_text="particles (count)", row=1, col=1)
    fig.update_layout(barmode="stack", height=380, margin={"t": 50, "b": 60})
    return fig


def read_card(card_path: Path) -> dict | None:
    """The model card as a dict (None when missing or unreadable)."""
    try:
        return json.loads(card_path.read_text())
    except (OSError, ValueError):
        return None


def card_summary(card: dict) -> pd.DataFrame:
    """Flat key/value table of the card's top-level scalars and small dicts."""
    rows = []
    for key, value in card.items():
        if isinstance(value, dict) and key not in ("architecture",):
            rows += [{"item": f"{key}.{k}", "value": json.dumps(v) if not isinstance(
                v, str) else v} for k, v in value.items() if not isinstance(v, (list, dict))]
        elif not isinstance(value, (list, dict)):
            rows.append({"item": key, "value": str(value)})
    return pd.DataFrame(rows)


def diagnostics(weights_path: Path) -> dict[str, go.Figure]:
    """The diagnostics figures saved next to the weights (missing ones are skipped)."""
    figures = {}
    for name, title in DIAGNOSTICS.items():
        path = weights_path.with_name(f"{weights_path.stem}_{name}.json")
        try:
            figures[title] = pio.from_json(path.read_text())
        except (OSError, ValueError):
            continue
    return figures

"""The paper's diagnostics of the shape CNN (its Fig. 3) as Plotly figures.

- learning curve: training and validation RMSE against the number of training images
  seen (the x axis of the paper's training-progress curve), one line per parameter;
- Q-Q plot of predicted versus true ``d`` on the test split;
- RMSE of ``p`` (on a log scale, as the network regresses it) as a function of true ``p``
  (the canonical ``p`` the network learns, :func:`tempipe.training.canonical_parameters`);
- RMSE of ``l_ratio`` for each true ``d`` (``d = 1`` is the hard case: its polar origin is not
  a symmetry centre of the silhouette, so ``l_ratio`` trades off against ``p``).

:func:`write_diagnostics` saves each figure as JSON (for the dashboard) and all three in one
HTML page next to the model weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from tempipe.training import canonical_parameters


def learning_curve(history: list[dict]) -> go.Figure:
    """Train / validation RMSE per parameter against training images seen."""
    fig = go.Figure()
    seen = [h["samples_seen"] for h in history]
    for key, label in (("log_p", "log p"), ("l_ratio", "L_ratio"), ("d", "d")):
        for split, dash in (("train", "solid"), ("val", "dash")):
            fig.add_scatter(x=seen, y=[h[f"{split}_rmse"][key] for h in history],
                            mode="lines+markers", line={"dash": dash},
                            name=f"{label} ({'training' if split == 'train' else 'validation'})")
    fig.update_layout(title="Learning curve", xaxis_title="training images seen",
                      yaxis_title="RMSE (parameter units)", template="plotly_white")
    return fig


def qq_plot_d(true_d: np.ndarray, pred_d: np.ndarray) -> go.Figure:
    """Quantiles of predicted (continuous) d against quantiles of true d."""
    q = np.linspace(0.005, 0.995, 199)
    fig = go.Figure()
    fig.add_scatter(x=np.quantile(true_d, q), y=np.quantile(pred_d, q), mode="markers",
                    name="quantiles")
    lo, hi = float(np.min(true_d)), float(np.max(true_d))
    fig.add_scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x",
                    line={"dash": "dot", "color": "grey"})
    fig.update_layout(title="Q-Q plot of d (test set)", xaxis_title="true d quantile",
                      yaxis_title="predicted d quantile", template="plotly_white")
    return fig


def rmse_by_p(true_p: np.ndarray, pred_p: np.ndarray, n_bins: int = 12) -> go.Figure:
    """RMSE of log p in bins of true p (log-spaced)."""
    true_p, pred_p = np.asarray(true_p), np.asarray(pred_p)
    edges = np.geomspace(true_p.min(), true_p.max() * (1 + 1e-9), n_bins + 1)
    which = np.digitize(true_p, edges) - 1
    err = (np.log(pred_p) - np.log(true_p)) ** 2
    frame = pd.DataFrame({"bin": which, "err": err}).groupby("bin")["err"].agg(["mean", "size"])
    centres = np.sqrt(edges[:-1] * edges[1:])[frame.index]
    fig = go.Figure(go.Scatter(x=centres, y=np.sqrt(frame["mean"]), mode="lines+markers",
                               text=[f"n = {n}" for n in frame["size"]], name="RMSE(log p)"))
    fig.update_layout(title="RMSE of p as a function of p (test set)", xaxis_type="log",
                      xaxis_title="true p", yaxis_title="RMSE of log p", template="plotly_white")
    return fig


def rmse_l_ratio_by_d(true_d: np.ndarray, true_l: np.ndarray, pred_l: np.ndarray) -> go.Figure:
    """RMSE of l_ratio for each true d."""
    frame = pd.DataFrame({"d": np.asarray(true_d), "se": (np.asarray(pred_l) - true_l) ** 2})
    stats = frame.groupby("d")["se"].agg(["mean", "size"])
    fig = go.Figure(go.Bar(x=stats.index.astype(int), y=np.sqrt(stats["mean"]),
                           text=[f"n = {n}" for n in stats["size"]], name="RMSE(L_ratio)"))
    fig.update_layout(title="RMSE of L_ratio by d (test set)", xaxis_title="true d",
                      yaxis_title="RMSE of L_ratio", template="plotly_white")
    return fig


def write_diagnostics(history: list[dict], test_params: pd.DataFrame, test_pred: pd.DataFrame,
                      out_dir: str | Path, stem: str = "shape_cnn") -> list[Path]:
    """Write the figures as ``<stem>_<name>.json`` and all in one ``<stem>_diagnostics.html``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {"learning_curve": learning_curve(history),
               "qq_d": qq_plot_d(test_params["d"].to_numpy(), test_pred["d"].to_numpy()),
               "rmse_p": rmse_by_p(canonical_parameters(test_params)["p"].to_numpy(),
                                   test_pred["p"].to_numpy()),
               "rmse_l_ratio_d": rmse_l_ratio_by_d(test_params["d"].to_numpy(),
                                                   test_params["l_ratio"].to_numpy(),
                                                   test_pred["l_ratio"].to_numpy())}
    paths = []
    for name, fig in figures.items():
        path = out_dir / f"{stem}_{name}.json"
        path.write_text(fig.to_json())
        paths.append(path)
    html = out_dir / f"{stem}_diagnostics.html"
    parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0))
             for i, fig in enumerate(figures.values())]
    html.write_text("<html><head><meta charset='utf-8'><title>tempipe shape CNN diagnostics"
                    "</title></head><body>" + "".join(parts) + "</body></html>")
    paths.append(html)
    return paths

"""Plotly figures of a particle population, for the app and the report.

Every function takes tables or arrays (a particle table, the group labels of
:func:`tempipe.population.find_shape_groups`, a classifier result...) and returns a new
``plotly.graph_objects.Figure`` with units in its axis titles; nothing is shown or saved
here. Groups keep one colour everywhere (:func:`group_color`). The image figures (group
montages, population montage, group overlay on a micrograph) are in
:mod:`tempipe.figures_montage`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots
from scipy.cluster.hierarchy import dendrogram as scipy_dendrogram
from scipy.cluster.hierarchy import linkage, to_tree
from scipy.stats import norm
from sklearn.decomposition import PCA

from tempipe.errors import ParameterError
from tempipe.features import FEATURES
from tempipe.groupstats import _check_labels, _check_table, size_column
from tempipe.shape_features import has_cnn, random_subset, seed_of, standardized_features

#: One colour per group (group g -> PALETTE[(g - 1) % len]); grey for 0 (not grouped).
PALETTE: tuple[str, ...] = tuple(qualitative.D3)
UNGROUPED_COLOR = "#9e9e9e"
_UNITS = {f.name: f.unit for f in FEATURES} | {
    f.px_name: ("px^2" if f.unit == "nm^2" else "px") for f in FEATURES if f.px_name} | {
    "p": "1", "d": "1", "l_ratio": "1", "log_p": "1", "log_l_ratio": "1", "d_class": "1",
    "resim_jaccard": "1"}
_NAMES = {"p": "p (curvature)", "d": "d (major axes)", "l_ratio": "L ratio (elongation)"}


def group_color(group: int) -> str:
    """Colour of a group number (1..K); grey for 0 (not grouped)."""
    return UNGROUPED_COLOR if group <= 0 else PALETTE[(int(group) - 1) % len(PALETTE)]


def axis_title(column: str) -> str:
    """Readable axis title with unit: ``"major axis length (nm)"``, ``"p (curvature) (1)"``."""
    unit = _UNITS.get(column, "1").replace("^2", "²")
    name = _NAMES.get(column)
    if name is None:
        name = column
        for suffix in ("_nm2", "_nm", "_px", "_deg"):
            name = name.removesuffix(suffix)
        name = name.replace("_", " ")
    return f"{name} ({unit})"


def _default_set(particles: pd.DataFrame, feature_set: str | None) -> str:
    if feature_set is not None:
        return feature_set
    return "both" if has_cnn(particles) else "features"


def _groups(particles, labels):
    labels = _check_labels(_check_table(particles), labels)
    return labels, [int(g) for g in np.unique(labels)]


def _name(g: int) -> str:
    return f"group {g}" if g > 0 else "not grouped"


def scatter_3d(particles: pd.DataFrame, labels, *, max_points: int = 20000, rng=0
               ) -> go.Figure:
    """3-D scatter of the CNN parameters (p, d, L ratio) coloured by group.

    Parameters
    ----------
    particles : DataFrame
        Table with ``p, d, l_ratio``.
    labels : (N,) int array-like
        Group per row.
    max_points : int
        Seeded subsample above this many particles (WebGL stays responsive).
    """
    labels, groups = _groups(particles, labels)
    missing = [c for c in ("p", "d", "l_ratio") if c not in particles]
    if missing:
        raise ParameterError(f"the 3-D scatter needs the CNN columns, missing {missing}; "
                             "analyse the images with the shape model.")
    keep = random_subset(len(particles), max_points, seed_of(rng))
    sub, lab = particles.iloc[keep], labels[keep]
    fig = go.Figure([go.Scatter3d(
        x=sub["p"][lab == g], y=sub["d"][lab == g], z=sub["l_ratio"][lab == g],
        mode="markers", name=_name(g), marker={"size": 2.5, "color": group_color(g)})
        for g in groups])
    fig.update_layout(title="Shape parameter space", legend={"itemsizing": "constant"},
                      scene={"xaxis_title": axis_title("p"), "yaxis_title": axis_title("d"),
                             "zaxis_title": axis_title("l_ratio"), "xaxis_type": "log"})
    return fig


def histogram_with_fits(particles: pd.DataFrame, labels, column: str, *, bins: int = 40
                        ) -> go.Figure:
    """Histogram of one variable per group with each group's normal fit (paper Fig. 4d).

    Bars are counts per bin (groups overlaid); each curve is the normal density with
    the group's mean and sd (ddof=1), scaled to counts (n x bin width).
    """
    labels, groups = _groups(particles, labels)
    if column not in particles:
        raise ParameterError(f"column {column!r} is not in the particle table.")
    values = particles[column].to_numpy(float)
    finite = np.isfinite(values)
    if finite.sum() < 2:
        raise ParameterError(f"column {column!r} has fewer than 2 finite values.")
    edges = np.histogram_bin_edges(values[finite], bins=bins)
    width = edges[1] - edges[0]
    grid = np.linspace(edges[0], edges[-1], 300)
    fig = go.Figure()
    for g in groups:
        v = values[(labels == g) & finite]
        fig.add_trace(go.Histogram(x=v, xbins={"start": edges[0], "end": edges[-1],
                                               "size": width}, name=_name(g), opacity=0.55,
                                   marker_color=group_color(g), legendgroup=str(g)))
        if v.size > 1 and v.std(ddof=1) > 0:
            fit = norm.pdf(grid, v.mean(), v.std(ddof=1)) * v.size * width
            fig.add_trace(go.Scatter(x=grid, y=fit, mode="lines", showlegend=False,
                                     legendgroup=str(g), line={"color": group_color(g)},
                                     name=f"{_name(g)} normal fit"))
    fig.update_layout(barmode="overlay", title=f"{axis_title(column)} by group",
                      xaxis_title=axis_title(column), yaxis_title="particles (count)")
    return fig


def dendrogram(particles: pd.DataFrame, labels=None, *, feature_set: str | None = None,
               max_leaves: int = 30, subsample: int = 2000, rng=0) -> go.Figure:
    """Ward linkage tree of the population, cut to its top ``max_leaves`` branches.

    The tree is built on a seeded subsample of the standardised feature set. Each leaf
    is a branch of particles, labelled with its size, and (with ``labels``) marked in the
    colour of its majority group. ``feature_set`` default: "both" when the table has the
    CNN columns, else "features".
    """
    particles = _check_table(particles)
    X, valid, _ = standardized_features(particles, _default_set(particles, feature_set))
    if len(X) < 3:
        raise ParameterError("the dendrogram needs at least 3 particles.")
    sub = random_subset(len(X), subsample, seed_of(rng))
    tree = linkage(X[sub], "ward")
    info = scipy_dendrogram(tree, truncate_mode="lastp", p=max_leaves, no_plot=True)
    fig = go.Figure()
    for xs, ys in zip(info["icoord"], info["dcoord"]):
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", showlegend=False,
                                 line={"color": "#555", "width": 1}, hoverinfo="skip"))
    nodes = to_tree(tree, rd=True)[1]
    members = [nodes[i].pre_order() for i in info["leaves"]]
    xs = 5 + 10 * np.arange(len(members))
    colors = ["#555"] * len(members)
    if labels is not None:
        group_of = _check_labels(particles, labels)[valid][sub]
        colors = [group_color(np.bincount(group_of[m]).argmax()) for m in members]
    fig.add_trace(go.Scatter(x=xs, y=np.zeros(len(xs)), mode="markers", showlegend=False,
                             marker={"color": colors, "size": 9},
                             text=[f"{len(m)} particles" for m in members]))
    fig.update_layout(title=f"Ward linkage tree ({len(sub)} particles, top {len(xs)} branches)",
                      xaxis={"tickvals": xs, "ticktext": [str(len(m)) for m in members],
                             "title": "branch (particles in it, count)"},
                      yaxis_title="Ward linkage distance (standardised units)")
    return fig


def parallel_coordinates(particles: pd.DataFrame, labels, columns=None, *,
                         max_lines: int = 3000, rng=0) -> go.Figure:
    """Parallel-coordinate plot of chosen variables, one line per particle, group colours.

    ``columns`` default: size, aspect ratio, circularity, solidity and the CNN parameters
    present in the table.
    """
    labels, groups = _groups(particles, labels)
    if columns is None:
        columns = [c for c in (size_column(particles), "aspect_ratio", "circularity",
                               "solidity", "p", "d", "l_ratio") if c in particles]
    missing = [c for c in columns if c not in particles]
    if missing or not columns:
        raise ParameterError(f"columns {missing or columns!r} are not in the particle table.")
    keep = random_subset(len(particles), max_lines, seed_of(rng))
    sub, lab = particles.iloc[keep], labels[keep]
    top = max(groups)
    scale = [[i / max(top, 1), group_color(i)] for i in range(0, top + 1)]
    dims = [{"label": axis_title(c), "values": sub[c].to_numpy(float)} for c in columns]
    fig = go.Figure(go.Parcoords(dimensions=dims, line={
        "color": lab, "colorscale": scale, "cmin": 0, "cmax": max(top, 1),
        "showscale": True, "colorbar": {"title": "group", "tickvals": groups}}))
    fig.update_layout(title="Parallel coordinates by group")
    return fig


def pca_pareto(particles: pd.DataFrame, feature_set: str | None = None) -> go.Figure:
    """Pareto chart of the principal components of the standardised feature set.

    Bars: explained variance of each component (%); line: cumulative (%).
    ``feature_set`` default: "both" with CNN columns, else "features".
    """
    particles = _check_table(particles)
    X, _, columns = standardized_features(particles, _default_set(particles, feature_set))
    if len(X) < 2:
        raise ParameterError("PCA needs at least 2 particles.")
    ratio = PCA().fit(X).explained_variance_ratio_ * 100
    names = [f"PC{i + 1}" for i in range(ratio.size)]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=names, y=ratio, name="explained"), secondary_y=False)
    fig.add_trace(go.Scatter(x=names, y=np.cumsum(ratio), name="cumulative",
                             mode="lines+markers"), secondary_y=True)
    fig.update_layout(title=f"Principal components of {len(columns)} standardised variables",
                      xaxis_title="principal component")
    fig.update_yaxes(title_text="explained variance (%)", secondary_y=False)
    fig.update_yaxes(title_text="cumulative explained variance (%)", range=[0, 101],
                     secondary_y=True)
    return fig


def confusion_matrix(confusion) -> go.Figure:
    """Heatmap of a confusion matrix (a DataFrame, or a ClassifierResult's ``confusion``).

    Cells show counts; the title gives the accuracy (trace / total).
    """
    confusion = getattr(confusion, "confusion", confusion)
    if not isinstance(confusion, pd.DataFrame) or confusion.shape[0] != confusion.shape[1]:
        raise ParameterError("confusion must be a square DataFrame (true x predicted), or a "
                             "ClassifierResult.")
    counts = confusion.to_numpy()
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    names = [str(c) for c in confusion.columns]
    fig = go.Figure(go.Heatmap(z=counts, x=names, y=[str(i) for i in confusion.index],
                               colorscale="Blues", text=counts, texttemplate="%{text}",
                               colorbar={"title": "particles"}))
    fig.update_layout(title=f"Confusion matrix (test accuracy {accuracy:.1%})",
                      xaxis_title="predicted group", yaxis_title="true group",
                      yaxis_autorange="reversed")
    return fig


def silhouette_curves(silhouettes: pd.DataFrame) -> go.Figure:
    """Mean silhouette against K for each algorithm x feature set (ShapeGroups.silhouettes)."""
    needed = {"algorithm", "feature_set", "k", "silhouette"}
    if not needed <= set(silhouettes.columns):
        raise ParameterError(f"silhouettes needs columns {sorted(needed)}.")
    fig = go.Figure()
    for (alg, fset), part in silhouettes.groupby(["algorithm", "feature_set"], sort=False):
        fig.add_trace(go.Scatter(x=part["k"], y=part["silhouette"], mode="lines+markers",
                                 name=f"{alg} / {fset}"))
    fig.update_layout(title="Cluster quality against the number of groups",
                      xaxis_title="number of groups K", yaxis_title="mean silhouette (1)")
    return fig


def size_comparison(particles_a: pd.DataFrame, particles_b: pd.DataFrame,
                    names=("A", "B"), *, column: str | None = None, bins: int = 40,
                    tests: pd.DataFrame | None = None) -> go.Figure:
    """Size distributions of two datasets: density histograms and normal fits.

    ``tests`` (``PopulationComparison.tests``) adds the KS and Mann-Whitney p-values to
    the title.
    """
    column = column or size_column(particles_a)
    values = [p[column].to_numpy(float) for p in (particles_a, particles_b)]
    values = [v[np.isfinite(v)] for v in values]
    edges = np.histogram_bin_edges(np.concatenate(values), bins=bins)
    grid = np.linspace(edges[0], edges[-1], 300)
    fig = go.Figure()
    for i, (name, v) in enumerate(zip(names, values)):
        color = PALETTE[i + 7]
        fig.add_trace(go.Histogram(x=v, histnorm="probability density", name=str(name),
                                   xbins={"start": edges[0], "end": edges[-1],
                                          "size": edges[1] - edges[0]},
                                   opacity=0.5, marker_color=color))
        if v.size > 1:
            fig.add_trace(go.Scatter(x=grid, y=norm.pdf(grid, v.mean(), v.std(ddof=1)),
                                     mode="lines", line={"color": color},
                                     name=f"{name}: {v.mean():.3g} ± {v.std(ddof=1):.2g}"))
    title = "Size distributions"
    if tests is not None:
        p = dict(zip(tests["test"], tests["p_value"]))
        title += f" (KS p = {p.get('ks', np.nan):.2g}, Mann-Whitney p = " \
                 f"{p.get('mann_whitney', np.nan):.2g})"
    fig.update_layout(barmode="overlay", title=title, xaxis_title=axis_title(column),
                      yaxis_title=f"probability density (1/{_UNITS.get(column, '1')})")
    return fig


def group_fractions(fractions: pd.DataFrame) -> go.Figure:
    """Share of every group in each dataset, side by side (``PopulationComparison.fractions``).

    Parameters
    ----------
    fractions : DataFrame
        Index ``group``; ``<name> n`` and ``<name> fraction`` columns per dataset (as
        :func:`tempipe.compare.group_fractions` returns).
    """
    names = [c.removesuffix(" fraction") for c in fractions.columns if c.endswith(" fraction")]
    if not names or not all(f"{n} n" in fractions for n in names):
        raise ParameterError("fractions needs '<name> n' and '<name> fraction' columns per "
                             "dataset (tempipe.compare.group_fractions).")
    groups = [_name(int(g)) for g in fractions.index]
    fig = go.Figure([go.Bar(x=groups, y=fractions[f"{n} fraction"], name=n,
                            marker_color=PALETTE[i + 7], text=fractions[f"{n} n"],
                            hovertemplate="%{x}: %{y:.1%} (%{text} particles)")
                     for i, n in enumerate(names)])
    fig.update_layout(barmode="group", title="Share of each shape group",
                      xaxis_title="shape group", yaxis_title="fraction of particles (1)",
                      yaxis_tickformat=".0%")
    return fig


def size_histogram(particles: pd.DataFrame) -> go.Figure:
    """Histogram of the major axis length (nm when calibrated, else px)."""
    col = size_column(particles)
    unit = col.rsplit("_", 1)[1]
    fig = go.Figure(go.Histogram(x=particles[col], nbinsx=40, marker_color="#1f77b4"))
    fig.update_layout(title="Size distribution (major axis length)",
                      xaxis_title=f"major axis length ({unit})", yaxis_title="particles (count)")
    return fig

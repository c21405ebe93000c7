"""Statistics of shape groups: counts, fractions, sizes and per-group feature tables.

The per-group quantities of the paper's Table 1 (particles, fraction, average size,
sigma/d-bar per group and for the whole population) and of its Tables S10-S11 (mean and
sd of every feature and CNN parameter per group). Groups are given as an integer label per
row of the particle table, 1..K, 0 = not grouped (left out of the group columns).

Size is the moment-ellipse major axis, in nm when every row is calibrated, otherwise in
pixels (:func:`size_column`). :func:`order_groups_by_size` gives groups the numbering
:func:`tempipe.population.find_shape_groups` returns (1..K by increasing mean size), and
:func:`cophenetic_correlation` says how well a grouping represents the particles'
distances (the paper's ccc, used to rank clusterings).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import cophenet, linkage
from scipy.spatial.distance import pdist, squareform

from tempipe.errors import ParameterError
from tempipe.features import FEATURE_NAMES, FEATURES

#: Shape-model columns reported beside the 30 features, when the table has them.
SHAPE_MODEL_COLUMNS: tuple[str, ...] = ("p", "d", "l_ratio", "d_class", "resim_jaccard")
#: Pixel twin of every calibrated feature (``area_nm2`` -> ``area_px``).
PX_NAME = {f.name: f.px_name for f in FEATURES}


def _check_table(particles) -> pd.DataFrame:
    if not isinstance(particles, pd.DataFrame):
        raise ParameterError(f"particles must be a pandas DataFrame (the particle table of "
                             f"analyze_batch), got {type(particles).__name__}.")
    return particles


def _check_labels(particles: pd.DataFrame, labels) -> np.ndarray:
    """``labels`` as an (N,) int array aligned with the table (ParameterError otherwise)."""
    particles = _check_table(particles)
    labels = np.asarray(labels)
    if labels.shape != (len(particles),) or not np.issubdtype(labels.dtype, np.integer):
        raise ParameterError(f"labels must be an integer array with one group per row of "
                             f"the particle table ({len(particles)} rows), got shape "
                             f"{labels.shape} and dtype {labels.dtype}.")
    if labels.size and labels.min() < 0:
        raise ParameterError("labels must be >= 0 (0 = not grouped).")
    return labels.astype(int)


def size_column(particles: pd.DataFrame) -> str:
    """``major_axis_length_nm`` when calibrated for every row, else the ``_px`` column."""
    if ("major_axis_length_nm" in particles
            and np.isfinite(particles["major_axis_length_nm"].to_numpy(float)).all()):
        return "major_axis_length_nm"
    if "major_axis_length_px" in particles:
        return "major_axis_length_px"
    raise ParameterError("the particle table has no major_axis_length_nm/_px column; pass "
                         "the table of analyze_batch.")


def order_groups_by_size(particles: pd.DataFrame, labels) -> np.ndarray:
    """Renumber groups 1..K by increasing mean major axis (0 stays 0).

    Parameters
    ----------
    particles : DataFrame
        Particle table (N rows) with a major-axis column.
    labels : (N,) int array-like
        Any positive group ids, 0 = not grouped.

    Returns
    -------
    (N,) int ndarray

    Examples
    --------
    >>> t = pd.DataFrame({"major_axis_length_px": [9.0, 3.0, 8.0, 0.0]})
    >>> order_groups_by_size(t, [5, 7, 5, 0]).tolist()
    [2, 1, 2, 0]
    """
    labels = _check_labels(particles, labels)
    size = particles[size_column(particles)].to_numpy(float)
    groups = np.unique(labels[labels > 0])
    means = [np.nanmean(size[labels == g]) for g in groups]
    lut = np.zeros(labels.max(initial=0) + 1, dtype=int)
    lut[groups[np.argsort(means, kind="stable")]] = np.arange(1, groups.size + 1)
    return lut[labels]


def _size_stats(size: np.ndarray) -> dict:
    """Mean, sample sd and sigma/mean of sizes."""
    mean = float(np.mean(size)) if size.size else np.nan
    sd = float(np.std(size, ddof=1)) if size.size > 1 else np.nan
    return {"mean": mean, "sd": sd, "rel_sd": sd / mean if mean else np.nan}


def group_summary(particles: pd.DataFrame, labels) -> pd.DataFrame:
    """Count, fraction and size statistics of every group (Table 1 quantities).

    Parameters
    ----------
    particles : DataFrame
        Particle table (N rows).
    labels : (N,) int array-like
        Group per row, 0 = not grouped (left out).

    Returns
    -------
    DataFrame
        Index ``group`` (1..K); columns ``n``, ``fraction`` (of the grouped particles),
        ``size_mean_<u>``, ``size_sd_<u>`` (sample sd, ddof=1) and ``size_rel_sd``
        (sigma/d-bar), where size is the major axis length and ``<u>`` is ``nm`` (``px``
        without calibration).

    Raises
    ------
    ParameterError
        Labels not an integer array aligned with the table, or no size column.
    """
    labels = _check_labels(particles, labels)
    col = size_column(particles)
    unit = col.rsplit("_", 1)[1]
    size = particles[col].to_numpy(float)
    grouped = labels > 0
    rows = []
    for g in np.unique(labels[grouped]):
        s = _size_stats(size[labels == g])
        rows.append({"group": int(g), "n": int((labels == g).sum()),
                     "fraction": (labels == g).sum() / grouped.sum(),
                     f"size_mean_{unit}": s["mean"], f"size_sd_{unit}": s["sd"],
                     "size_rel_sd": s["rel_sd"]})
    return pd.DataFrame(rows).set_index("group")


def population_table(particles: pd.DataFrame, labels) -> pd.DataFrame:
    """The paper's Table 1 for one dataset: rows are quantities, columns groups + total.

    Returns
    -------
    DataFrame
        Index ``Particles, Fraction, Average size (<u>), Size sd (<u>), Size
        distribution (sigma/d)``; columns ``"1" .. "K"`` and ``"total"`` (every
        particle of the table, grouped or not).
    """
    summary = group_summary(particles, labels)
    unit = size_column(particles).rsplit("_", 1)[1]
    total = _size_stats(particles[size_column(particles)].to_numpy(float))
    table = pd.DataFrame({str(g): [r.n, r.fraction, r[f"size_mean_{unit}"],
                                   r[f"size_sd_{unit}"], r.size_rel_sd]
                          for g, r in summary.iterrows()},
                         index=["Particles", "Fraction", f"Average size ({unit})",
                                f"Size sd ({unit})", "Size distribution (σ/d̄)"])
    table["total"] = [len(particles), 1.0, total["mean"], total["sd"], total["rel_sd"]]
    return table


def statistics_columns(particles: pd.DataFrame) -> list[str]:
    """Every feature (calibrated, else ``_px``) and CNN parameter present in the table."""
    cols = []
    for name in FEATURE_NAMES:
        px = PX_NAME.get(name)
        ok = name in particles and np.isfinite(particles[name].to_numpy(float)).any()
        cols.append(name if ok or not (px and px in particles) else px)
    extra = [c for c in SHAPE_MODEL_COLUMNS if c in particles]
    return [c for c in cols if c in particles] + extra


def group_feature_statistics(particles: pd.DataFrame, labels) -> pd.DataFrame:
    """Mean and sd of every feature and CNN parameter per group (Tables S10-S11).

    Returns
    -------
    DataFrame
        Index: variable names (:func:`statistics_columns`); columns ``unit``,
        ``"group 1 mean"``, ``"group 1 sd"``, ..., ``"all mean"``, ``"all sd"``
        (sample sd, ddof=1; ``all`` = every particle of the table).
    """
    labels = _check_labels(particles, labels)
    cols = statistics_columns(particles)
    values = particles[cols].astype(float)
    units = {f.name: f.unit for f in FEATURES} | {f.px_name: ("px^2" if f.unit == "nm^2"
                                                             else "px")
                                                  for f in FEATURES if f.px_name}
    out = pd.DataFrame({"unit": [units.get(c, "1") for c in cols]}, index=cols)
    for g in np.unique(labels[labels > 0]):
        part = values[labels == g]
        out[f"group {g} mean"], out[f"group {g} sd"] = part.mean(), part.std(ddof=1)
    out["all mean"], out["all sd"] = values.mean(), values.std(ddof=1)
    return out


def cophenetic_correlation(X: np.ndarray, labels: np.ndarray, dist: np.ndarray | None = None
                           ) -> float:
    """ccc of a clustering: how well its dendrogram keeps the particles' distances.

    The clustering is written as a dendrogram constrained to it: the particles of each
    group are joined by average linkage (UPGMA) inside the group, then the groups are
    joined by average linkage on their mean inter-group distances. The ccc is the Pearson
    correlation between the tree's cophenetic distances and the Euclidean distances of
    ``X`` (1 = the groups and the tree represent the data perfectly).

    Parameters
    ----------
    X : (n, F) ndarray
    labels : (n,) int ndarray
        At least two groups.
    dist : (n, n) ndarray, optional
        Euclidean distance matrix of ``X``, when already computed.
    """
    dist = squareform(pdist(X)) if dist is None else dist
    groups, inverse = np.unique(labels, return_inverse=True)
    if groups.size < 2:
        raise ParameterError("cophenetic_correlation needs at least two groups.")
    coph = np.zeros_like(dist)
    for g in range(groups.size):
        idx = np.flatnonzero(inverse == g)
        if idx.size > 1:
            block = dist[np.ix_(idx, idx)]
            tree = linkage(squareform(block, checks=False), "average")
            coph[np.ix_(idx, idx)] = squareform(cophenet(tree))
    onehot = np.eye(groups.size)[inverse]  # (n, K)
    counts = onehot.sum(axis=0)
    between = onehot.T @ dist @ onehot / np.outer(counts, counts)  # mean inter-group distance
    np.fill_diagonal(between, 0.0)
    top = squareform(cophenet(linkage(squareform(between, checks=False), "average")))
    cross = inverse[:, None] != inverse[None, :]
    coph[cross] = top[inverse[:, None], inverse[None, :]][cross]
    upper = np.triu_indices(len(X), 1)
    return float(np.corrcoef(dist[upper], coph[upper])[0, 1])

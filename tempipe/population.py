"""Shape groups of a particle population: feature sets and the cluster comparison.

The paper's unsupervised step (Williamson et al. 2022, "Unsupervised clustering and
classification into shape groups"): three clustering algorithms (k-means, Gaussian mixture,
hierarchical Ward) are run on three feature sets (morphology descriptors, CNN parameters,
both); within each algorithm the number of groups K is the one with the best mean
silhouette over K = 2..12, and the solutions are compared by their cophenetic correlation
coefficient (ccc). :func:`find_shape_groups` returns the best solution (or the one asked
for). Groups are numbered 1..K by increasing mean size (major axis length); label 0 marks
a row that could not be grouped (a non-finite value in the chosen feature set).

The feature sets themselves (:func:`feature_table`, :func:`standardized_features`) live in
:mod:`tempipe.shape_features` and are re-exported here. Per-group statistics (Table 1, Tables S10-S11) live in :mod:`tempipe.groupstats`, the
classifier in :mod:`tempipe.classifier`; ``group_summary``, ``population_table``,
``group_feature_statistics``, ``train_classifier``, ``ClassifierResult`` ... are
re-exported here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import cdist, pdist, squareform
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from tempipe.errors import ParameterError
from tempipe.shape_features import (CNN_COLUMNS, CNN_FEATURES, FEATURE_SETS,  # noqa: F401
                                     LOG_FEATURES, MORPHOLOGY_FEATURES, feature_table,
                                     has_cnn, morphology_columns, seed_of,
                                     standardized_features)
from tempipe.shape_features import random_subset
from tempipe.groupstats import (PX_NAME, _check_labels, _check_table,  # noqa: F401
                                cophenetic_correlation, group_feature_statistics,
                                group_summary, order_groups_by_size, population_table,
                                size_column, statistics_columns)

ALGORITHMS: tuple[str, ...] = ("kmeans", "gmm", "ward")


@dataclass(frozen=True)
class ClusterParams:
    """Knobs of the cluster comparison.

    Attributes
    ----------
    k_min, k_max : int
        Range of K tried for every algorithm (inclusive).
    subsample : int
        Particles (seeded random subset) on which K is chosen and silhouette and ccc are
        computed; the chosen solution is then fitted on every particle.
    n_init : int
        k-means restarts.
    """

    k_min: int = 2
    k_max: int = 12
    subsample: int = 2000
    n_init: int = 4

    def __post_init__(self):
        if not (2 <= self.k_min <= self.k_max):
            raise ParameterError(f"ClusterParams: need 2 <= k_min <= k_max, got k_min="
                                 f"{self.k_min}, k_max={self.k_max}.")
        if self.subsample < 50 or self.n_init < 1:
            raise ParameterError(f"ClusterParams: subsample={self.subsample} must be >= 50 "
                                 f"and n_init={self.n_init} >= 1.")


@dataclass
class ShapeGroups:
    """Result of :func:`find_shape_groups`.

    Attributes
    ----------
    labels : (N,) int ndarray
        Group of each row of the particle table, 1..K by increasing mean size; 0 = not
        grouped (non-finite feature).
    k : int
    algorithm : str
        "kmeans", "gmm" or "ward".
    feature_set : str
        "features", "cnn" or "both".
    comparison : DataFrame
        One row per (algorithm, feature set): ``algorithm, feature_set, k, silhouette,
        ccc, seconds``, best first (by ccc); ``seconds`` is the time of the K sweep.
    silhouettes : DataFrame
        Long table ``algorithm, feature_set, k, silhouette`` of every K tried.
    columns : list of str
        Particle-table columns the chosen feature set was built from.
    """

    labels: np.ndarray
    k: int
    algorithm: str
    feature_set: str
    comparison: pd.DataFrame
    silhouettes: pd.DataFrame = field(default_factory=pd.DataFrame)
    columns: list[str] = field(default_factory=list)


def _cluster(algorithm: str, X: np.ndarray, k: int, seed: int, params: ClusterParams,
             tree=None) -> np.ndarray:
    """Labels 0..k-1 of ``X`` by one algorithm (``tree``: a Ward linkage of ``X``)."""
    with threadpool_limits(1):  # small problems: threads only fight over shared cores
        return _cluster_impl(algorithm, X, k, seed, params, tree)


def _cluster_impl(algorithm, X, k, seed, params, tree):
    if algorithm == "kmeans":
        return KMeans(k, n_init=params.n_init, random_state=seed).fit_predict(X)
    if algorithm == "gmm":
        return GaussianMixture(k, covariance_type="full", reg_covar=1e-3, n_init=1,
                               random_state=seed).fit(X).predict(X)
    tree = linkage(X, "ward") if tree is None else tree
    return fcluster(tree, k, criterion="maxclust") - 1


def _sweep(algorithm: str, X: np.ndarray, dist: np.ndarray, seed: int, params: ClusterParams,
           tree) -> tuple[list[float], int, float]:
    """Silhouette for every K, the best K and the ccc of its solution, on a subsample."""
    ks = range(params.k_min, min(params.k_max, len(X) - 1) + 1)
    scores, labelings = [], []
    for k in ks:
        labels = _cluster(algorithm, X, k, seed, params, tree)
        labelings.append(labels)
        n_groups = np.unique(labels).size
        scores.append(silhouette_score(dist, labels, metric="precomputed")
                      if 1 < n_groups < len(X) else -1.0)
    best = int(np.argmax(scores))
    return scores, ks[best], cophenetic_correlation(X, labelings[best], dist)


def compare_clusterings(particles: pd.DataFrame, feature_sets=None, algorithms=ALGORITHMS,
                        rng=0, params: ClusterParams | None = None
                        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paper's cluster comparison: algorithm x feature set, best K, silhouette, ccc.

    Parameters
    ----------
    particles : DataFrame
    feature_sets : sequence of str, optional
        Default: all of :data:`FEATURE_SETS` when the table has CNN columns, else
        ``("features",)``.
    algorithms : sequence of str
    rng : int or Generator
        Seeds the subsample and the algorithms.
    params : ClusterParams, optional

    Returns
    -------
    comparison : DataFrame
        ``algorithm, feature_set, k, silhouette, ccc, seconds``, sorted by ccc (best first).
    silhouettes : DataFrame
        ``algorithm, feature_set, k, silhouette`` for every K tried.
    """
    params = params or ClusterParams()
    particles = _check_table(particles)
    feature_sets = _default_sets(particles) if feature_sets is None else tuple(feature_sets)
    for name, allowed, given in (("algorithm", ALGORITHMS, algorithms),
                                 ("feature_set", FEATURE_SETS, feature_sets)):
        bad = [g for g in given if g not in allowed]
        if bad or not given:
            raise ParameterError(f"{name} {bad or given!r} not among {allowed}.")
    seed = seed_of(rng)
    rows, curves = [], []
    for fset in feature_sets:
        X, _, _ = standardized_features(particles, fset)
        if len(X) < params.k_min + 2:
            raise ParameterError(f"only {len(X)} particles can be grouped; clustering "
                                 f"needs at least {params.k_min + 2}.")
        sub = random_subset(len(X), params.subsample, seed)
        Xs = X[sub]
        dist = squareform(pdist(Xs))
        for algorithm in algorithms:
            start = time.perf_counter()
            tree = linkage(Xs, "ward") if algorithm == "ward" else None
            scores, k, ccc = _sweep(algorithm, Xs, dist, seed, params, tree)
            rows.append({"algorithm": algorithm, "feature_set": fset, "k": k,
                         "silhouette": max(scores), "ccc": ccc,
                         "seconds": time.perf_counter() - start})
            curves += [{"algorithm": algorithm, "feature_set": fset, "k": kk, "silhouette": s}
                       for kk, s in zip(range(params.k_min, params.k_min + len(scores)), scores)]
    comparison = pd.DataFrame(rows).sort_values("ccc", ascending=False, kind="stable")
    return comparison.reset_index(drop=True), pd.DataFrame(curves)


def _default_sets(particles: pd.DataFrame) -> tuple[str, ...]:
    return FEATURE_SETS if has_cnn(particles) else ("features",)


def find_shape_groups(particles: pd.DataFrame, algorithm: str | None = None,
                      k: int | None = None, feature_set: str | None = None, rng=0, *,
                      params: ClusterParams | None = None,
                      comparison: pd.DataFrame | None = None) -> ShapeGroups:
    """Group particles into shape groups, unsupervised, as the paper does.

    The cluster comparison (:func:`compare_clusterings`) ranks every algorithm x feature
    set by ccc, K chosen per pair by silhouette; the default is its best row (the paper
    found k-means on both). ``algorithm``, ``feature_set`` and ``k`` override parts of
    that choice. The chosen solution is fitted on every particle (Ward: on the
    subsample, the other particles joining the nearest group centroid).

    Parameters
    ----------
    particles : DataFrame
        Particle table of :func:`tempipe.pipeline.analyze_batch` (N rows).
    algorithm : {"kmeans", "gmm", "ward"}, optional
    k : int, optional
        Number of groups (>= 2); default: the silhouette's choice.
    feature_set : {"features", "cnn", "both"}, optional
    rng : int or Generator
    params : ClusterParams, optional
    comparison : DataFrame, optional
        A comparison already computed for this table (skips recomputing it).

    Returns
    -------
    ShapeGroups
        ``labels`` (N,) in 1..K by increasing mean size (0 = not grouped).

    Raises
    ------
    ParameterError
        Unknown algorithm or feature set, bad K, too few particles, CNN set without CNN.

    Examples
    --------
    >>> groups = find_shape_groups(table)                      # doctest: +SKIP
    >>> group_summary(table, groups.labels)                    # doctest: +SKIP
    """
    params = params or ClusterParams()
    particles = _check_table(particles)
    _check_choice(algorithm, ALGORITHMS, "algorithm")
    _check_choice(feature_set, FEATURE_SETS, "feature_set")
    seed = seed_of(rng)
    silhouettes = pd.DataFrame()
    if comparison is None:
        sets = _default_sets(particles)
        if feature_set is not None and feature_set not in sets:
            sets = (feature_set,)  # raises the CNN error in feature_table
        comparison, silhouettes = compare_clusterings(particles, sets, rng=seed, params=params)
    rows = comparison
    if algorithm is not None:
        rows = rows[rows["algorithm"] == algorithm]
    if feature_set is not None:
        rows = rows[rows["feature_set"] == feature_set]
    if rows.empty:
        raise ParameterError(f"the comparison has no row for algorithm={algorithm!r}, "
                             f"feature_set={feature_set!r}; recompute it without "
                             "comparison=.")
    best = rows.iloc[0]
    k = int(best["k"]) if k is None else _check_k(k)
    X, valid, columns = standardized_features(particles, str(best["feature_set"]))
    if k >= len(X):
        raise ParameterError(f"k={k} but only {len(X)} particles can be grouped.")
    raw = _fit_all(str(best["algorithm"]), X, k, seed, params)
    labels = np.zeros(len(particles), dtype=int)
    labels[valid] = raw + 1
    labels = order_groups_by_size(particles, labels)
    return ShapeGroups(labels=labels, k=k, algorithm=str(best["algorithm"]),
                       feature_set=str(best["feature_set"]), comparison=comparison,
                       silhouettes=silhouettes, columns=columns)


def _check_choice(value, allowed, name) -> None:
    if value is not None and value not in allowed:
        raise ParameterError(f"{name}={value!r} is not one of {allowed} (or None for the "
                             "comparison's best).")


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ParameterError(f"k={k!r} must be an integer >= 2 (or None to let the "
                             "silhouette choose).")
    return int(k)


def _fit_all(algorithm: str, X: np.ndarray, k: int, seed: int, params: ClusterParams
             ) -> np.ndarray:
    """Labels 0..k-1 of every row of ``X``; Ward on a subsample, then nearest centroid."""
    if algorithm != "ward" or len(X) <= params.subsample:
        return _cluster(algorithm, X, k, seed, params)
    sub = random_subset(len(X), params.subsample, seed)
    sub_labels = _cluster("ward", X[sub], k, seed, params)
    centroids = np.stack([X[sub][sub_labels == g].mean(axis=0) for g in range(k)])
    labels = np.argmin(cdist(X, centroids), axis=1)
    labels[sub] = sub_labels
    return labels


def __getattr__(name):
    """``train_classifier``, ``ClassifierResult`` and ``classifier_ablation`` live in
    :mod:`tempipe.classifier` (imported lazily: it imports this module)."""
    if name in ("train_classifier", "ClassifierResult", "classifier_ablation"):
        from tempipe import classifier
        return getattr(classifier, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Cached population analysis for the Clusters, Compare and Report pages.

Keys are the dataset's analysis fingerprint (content + segmentation parameters), the CNN
run and the uncertainty filter, so the three pages share one computation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from tempipe import figures
from tempipe.classifier import ClassifierResult, train_classifier
from tempipe.compare import PopulationComparison, compare_populations
from tempipe.errors import ParameterError
from tempipe.population import (ALGORITHMS, ShapeGroups, compare_clusterings,
                                find_shape_groups, has_cnn)
from tempipe_app import analysis
from tempipe_app.state import Dataset

ALGORITHM_NAMES = {"kmeans": "k-means", "gmm": "Gaussian mixture", "ward": "hierarchical (Ward)"}
FEATURE_SET_NAMES = {"features": "morphology features", "cnn": "CNN parameters",
                     "both": "features + CNN parameters"}
#: Fewest particles a population analysis is attempted on.
MIN_PARTICLES = 20


def table_key(ds: Dataset) -> str:
    """What a dataset's particle table depends on."""
    flt = repr(ds.shape_filter) if ds.shape_filter.exclude else "all"
    return f"{ds.analysis_key}|{ds.shape_key if ds.shaped else 'no-cnn'}|{flt}"


def particles(ds: Dataset) -> pd.DataFrame:
    """The table the population analysis uses (raises ParameterError when too small)."""
    if not ds.segmented:
        raise ParameterError(f"dataset {ds.name!r} is not segmented with its current "
                             "parameters; apply the segmentation first.")
    table = analysis.particle_table(ds)
    if len(table) < MIN_PARTICLES:
        raise ParameterError(f"dataset {ds.name!r} has {len(table)} particles; shape groups "
                             f"need at least {MIN_PARTICLES}. Add images or loosen the "
                             "uncertainty filter.")
    return table


@st.cache_data(max_entries=16, show_spinner=False)
def _comparison(key: str, _table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return compare_clusterings(_table, rng=0)


@st.cache_data(max_entries=32, show_spinner=False)
def _groups(key: str, algorithm, feature_set, k, _table, _comparison) -> ShapeGroups:
    return find_shape_groups(_table, algorithm, k, feature_set, rng=0, comparison=_comparison)


@st.cache_data(max_entries=16, show_spinner=False)
def _classifier(key: str, groups_key: str, _table, _labels) -> ClassifierResult:
    return train_classifier(_table, _labels, rng=0)


@dataclass
class Population:
    """A dataset's table, cluster comparison and chosen groups."""

    table: pd.DataFrame
    comparison: pd.DataFrame
    silhouettes: pd.DataFrame
    groups: ShapeGroups
    key: str

    @property
    def groups_key(self) -> str:
        g = self.groups
        return f"{self.key}|{g.algorithm}|{g.feature_set}|{g.k}"


def population(ds: Dataset) -> Population:
    """Comparison + groups for the dataset's chosen clustering (``ds.clustering``)."""
    table = particles(ds)
    key = table_key(ds)
    comparison, silhouettes = _comparison(key, table)
    choice = {k: ds.clustering.get(k) for k in ("algorithm", "feature_set", "k")}
    if choice["feature_set"] not in (None, *comparison["feature_set"].unique()):
        choice["feature_set"] = None
    groups = _groups(key, choice["algorithm"], choice["feature_set"], choice["k"], table,
                     comparison)
    return Population(table, comparison, silhouettes, groups, key)


def classifier(pop: Population) -> ClassifierResult:
    """The SVM trained on the chosen groups (cached)."""
    return _classifier(pop.key, pop.groups_key, pop.table, pop.groups.labels)


def comparison_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """The cluster comparison with readable names, best (highest ccc) first."""
    out = comparison.copy()
    out["algorithm"] = out["algorithm"].map(ALGORITHM_NAMES).fillna(out["algorithm"])
    out["feature_set"] = out["feature_set"].map(FEATURE_SET_NAMES).fillna(out["feature_set"])
    return out.rename(columns={"feature_set": "feature set", "k": "best K",
                               "ccc": "cophenetic correlation", "seconds": "time (s)"})


def choices(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Algorithms and feature sets offered for this table."""
    sets = ["features", "cnn", "both"] if has_cnn(table) else ["features"]
    return list(ALGORITHMS), sets


@st.cache_data(max_entries=64, show_spinner=False)
def figure(kind: str, key: str, _pop: Population, **options):
    """A population figure of :mod:`tempipe.figures`, cached by dataset, groups and options."""
    table, labels = _pop.table, _pop.groups.labels
    if kind == "scatter_3d":
        return figures.scatter_3d(table, labels).update_layout(height=650)
    if kind == "histogram":
        return figures.histogram_with_fits(table, labels, options["column"])
    if kind == "dendrogram":
        return figures.dendrogram(table, labels, feature_set=_pop.groups.feature_set)
    if kind == "parallel":
        return figures.parallel_coordinates(table, labels)
    if kind == "pca":
        return figures.pca_pareto(table, feature_set=_pop.groups.feature_set)
    if kind == "silhouettes":
        return figures.silhouette_curves(_pop.silhouettes)
    raise ParameterError(f"unknown figure {kind!r}")


@st.cache_data(max_entries=16, show_spinner=False)
def _compare(key: str, names: tuple[str, str], _a: Population, _b_table: pd.DataFrame,
             _clf: ClassifierResult) -> tuple[PopulationComparison, np.ndarray]:
    labels_b = _clf.predict(_b_table)
    return compare_populations(_a.table, _b_table, _a.groups.labels, labels_b, names=names,
                               rng=0), labels_b


def compare(ds_a: Dataset, ds_b: Dataset) -> tuple[Population, pd.DataFrame,
                                                    PopulationComparison, np.ndarray]:
    """Groups of A, B labelled by A's classifier, and the comparison of both."""
    if ds_a.name == ds_b.name:
        raise ParameterError("choose two different datasets to compare.")
    pop_a = population(ds_a)
    table_b = particles(ds_b)
    clf = classifier(pop_a)
    key = f"{pop_a.groups_key}||{table_key(ds_b)}"
    result, labels_b = _compare(key, (ds_a.name, ds_b.name), pop_a, table_b, clf)
    return pop_a, table_b, result, labels_b

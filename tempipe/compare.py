"""Two particle populations side by side (beyond the paper's Tables 1 and 2).

Typical use (:func:`compare_datasets`, what ``tempipe compare`` runs): find the shape
groups of dataset A, train a classifier on them, label dataset B with it
(:meth:`tempipe.classifier.ClassifierResult.predict`) so both share one group numbering,
then :func:`compare_populations`; :func:`write_comparison` writes the tables as CSV and
one self-contained HTML page. The statistics live in :mod:`tempipe.comparestats`. It reports group fractions side by
side, two-sample tests of the size distributions (Kolmogorov-Smirnov, Mann-Whitney U),
bootstrap 95 % confidence intervals of the mean size and of sigma/d-bar, and the energy
distance between the two shape distributions in standardised (log p, d, log l_ratio)
space with a permutation p-value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tempipe.comparestats import (bootstrap_size_ci, group_fractions,  # noqa: F401
                                  shape_distance, size_tests)
from tempipe.errors import InputFileError, ParameterError
from tempipe.groupstats import _check_labels, _check_table, size_column
from tempipe.shape_features import has_cnn, seed_of


@dataclass
class PopulationComparison:
    """Result of :func:`compare_populations`.

    Attributes
    ----------
    table : DataFrame
        Rows are quantities (Table 1 / 2 style), one column per dataset.
    fractions : DataFrame
        Index ``group``; columns ``<name> n`` and ``<name> fraction`` per dataset.
    tests : DataFrame
        ``test, statistic, p_value, meaning`` for the size tests and the shape distance.
    names : (str, str)
    """

    table: pd.DataFrame
    fractions: pd.DataFrame
    tests: pd.DataFrame
    names: tuple[str, str]


def _dataset_column(size, labels, fractions, name, unit, seed, n_boot) -> dict:
    """One dataset's column of the comparison table."""
    ci = bootstrap_size_ci(size, seed, n_boot)
    rows = {"Particles": len(size), "Shape groups": np.unique(labels[labels > 0]).size,
            f"Average size ({unit})": ci["mean"],
            f"Average size 95% CI low ({unit})": ci["mean_lo"],
            f"Average size 95% CI high ({unit})": ci["mean_hi"],
            f"Size sd ({unit})": np.nanstd(size, ddof=1),
            "Size distribution (σ/d̄)": ci["rel_sd"],
            "σ/d̄ 95% CI low": ci["rel_sd_lo"], "σ/d̄ 95% CI high": ci["rel_sd_hi"]}
    for g in fractions.index:
        in_g = labels == g
        rows[f"Group {g} fraction"] = fractions.loc[g, f"{name} fraction"]
        rows[f"Group {g} average size ({unit})"] = size[in_g].mean() if in_g.any() else np.nan
    return rows


def compare_populations(particles_a: pd.DataFrame, particles_b: pd.DataFrame, labels_a,
                        labels_b, names=("A", "B"), rng=0, *, n_boot: int = 1000
                        ) -> PopulationComparison:
    """Compare two datasets: groups, sizes and shapes (one table, Tables 1-2 style).

    Parameters
    ----------
    particles_a, particles_b : DataFrame
        Particle tables, sizes in the same unit (both calibrated, or neither).
    labels_a, labels_b : (N_a,), (N_b,) int array-like
        Groups sharing one numbering (label B with a classifier trained on A).
    names : (str, str)
    rng : int or Generator
    n_boot : int
        Bootstrap resamples for the confidence intervals.

    Returns
    -------
    PopulationComparison
    """
    names = tuple(str(n) for n in names)
    if len(names) != 2 or names[0] == names[1]:
        raise ParameterError(f"names must be two different strings, got {names!r}.")
    labels = [_check_labels(_check_table(p), l)
              for p, l in ((particles_a, labels_a), (particles_b, labels_b))]
    cols = [size_column(p) for p in (particles_a, particles_b)]
    if cols[0] != cols[1]:
        raise ParameterError(f"sizes are {cols[0]} in {names[0]} but {cols[1]} in "
                             f"{names[1]}; give both datasets a pixel size.")
    unit = cols[0].rsplit("_", 1)[1]
    sizes = [p[c].to_numpy(float) for p, c in zip((particles_a, particles_b), cols)]
    seed = seed_of(rng)
    fractions = group_fractions(*labels, names)
    tests = size_tests(*sizes)
    if has_cnn(particles_a) and has_cnn(particles_b):
        energy, p_value = shape_distance(particles_a, particles_b, seed)
        tests.loc[len(tests)] = {"test": "energy_distance", "statistic": energy,
                                 "p_value": p_value, "meaning": "distance between the "
                                 "(log p, d, log l_ratio) distributions, standardised units"}
    columns = {name: _dataset_column(sizes[i], labels[i], fractions, name, unit, seed + i,
                                      n_boot) for i, name in enumerate(names)}
    table = pd.DataFrame({n: pd.Series(c, dtype=object) for n, c in columns.items()})  # ints kept
    return PopulationComparison(table, fractions, tests, names)


#: Columns a particle table read from disk must have to be compared.
_REQUIRED_COLUMNS = ("image", "major_axis_length_px")


@dataclass
class DatasetComparison:
    """Result of :func:`compare_datasets`: A's groups applied to B, and the comparison.

    Attributes
    ----------
    particles_a, particles_b : DataFrame
    groups : ShapeGroups
        Shape groups found in A (:func:`tempipe.population.find_shape_groups`).
    classifier : ClassifierResult
        Trained on A's groups.
    labels_b : (N_b,) int ndarray
        B's groups as predicted by the classifier (0 = a variable not finite).
    comparison : PopulationComparison
    """

    particles_a: pd.DataFrame
    particles_b: pd.DataFrame
    groups: object
    classifier: object
    labels_b: np.ndarray
    comparison: PopulationComparison


def compare_datasets(particles_a: pd.DataFrame, particles_b: pd.DataFrame,
                     names=("A", "B"), rng=0, *, cluster_params=None,
                     classifier_params=None, n_boot: int = 1000) -> DatasetComparison:
    """Cluster A, train the classifier on A's groups, label B with it, compare both.

    Parameters
    ----------
    particles_a, particles_b : DataFrame
        Particle tables of :func:`tempipe.pipeline.analyze_batch` (both calibrated, or
        neither; with or without the CNN columns, but the same for both).
    names : (str, str)
    rng : int or Generator
    cluster_params : ClusterParams, optional
    classifier_params : ClassifierParams, optional
    n_boot : int
        Bootstrap resamples of the confidence intervals.

    Returns
    -------
    DatasetComparison

    Raises
    ------
    ParameterError
        Too few particles in A to group, fewer than two trainable groups, or B lacking a
        variable A was grouped on (another calibration or no CNN columns).
    """
    from tempipe.classifier import train_classifier
    from tempipe.population import find_shape_groups

    seed = seed_of(rng)
    groups = find_shape_groups(_check_table(particles_a), rng=seed, params=cluster_params)
    classifier = train_classifier(particles_a, groups.labels, rng=seed,
                                  params=classifier_params)
    labels_b = classifier.predict(_check_table(particles_b))
    comparison = compare_populations(particles_a, particles_b, groups.labels, labels_b, names,
                                     seed, n_boot=n_boot)
    return DatasetComparison(particles_a, particles_b, groups, classifier, labels_b,
                             comparison)


def read_particle_table(path) -> pd.DataFrame | None:
    """The particle table of ``tempipe analyze`` at ``path``, or None if there is none.

    Parameters
    ----------
    path : path-like
        A ``.parquet`` file, or a folder holding ``particles.parquet`` (an ``analyze``
        output folder). Anything else (a folder of micrographs) gives None.

    Raises
    ------
    InputFileError
        The Parquet file cannot be read or is not a particle table.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "particles.parquet"
    if path.suffix.lower() != ".parquet" or not path.is_file():
        return None
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise InputFileError(f"{path}: cannot read it as Parquet ({exc}); give the "
                             "particles.parquet written by `tempipe analyze`.") from exc
    missing = [c for c in _REQUIRED_COLUMNS if c not in table]
    if missing:
        raise InputFileError(f"{path} is not a particle table (no {missing} column); give "
                             "the particles.parquet written by `tempipe analyze`.")
    return table


def write_comparison(result: DatasetComparison, out_dir, *, files: dict | None = None,
                     model_card: dict | None = None) -> list[Path]:
    """Write ``comparison.csv``, ``fractions.csv``, ``tests.csv`` and ``comparison.html``.

    Parameters
    ----------
    result : DatasetComparison
    out_dir : path-like
        Created if missing; existing files of those names are replaced.
    files : dict of str to list of path-like, optional
        Micrographs analysed per dataset name; the page lists them with their sha256.
        Without it the page lists the images named in the particle tables.
    model_card : dict, optional
        Card of the shape model that measured ``p, d, l_ratio``.

    Returns
    -------
    list of Path
        The four files written. The HTML page opens offline (plotly.js embedded once).
    """
    from tempipe.report import build_html_report, input_files

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    comp = result.comparison
    comp.table.to_csv(out / "comparison.csv", index_label="quantity")
    comp.fractions.to_csv(out / "fractions.csv")
    comp.tests.to_csv(out / "tests.csv", index=False)
    if files:
        inputs = input_files(files)
    else:
        inputs = pd.DataFrame([{"dataset": name, "image": image, "sha256": "not recorded "
                                "(read from a particle table)"}
                               for name, table in zip(comp.names, (result.particles_a,
                                                                   result.particles_b))
                               for image in pd.unique(table["image"])])
    groups, clf = result.groups, result.classifier
    parameters = {"shape groups of " + comp.names[0]: {
        "algorithm": groups.algorithm, "feature set": groups.feature_set, "K": groups.k,
        "variables": ", ".join(groups.columns)}, "classifier": clf.best_params}
    page = build_html_report(f"{comp.names[0]} compared with {comp.names[1]}",
                             _sections(result), parameters=parameters, inputs=inputs,
                             model_card=model_card)
    (out / "comparison.html").write_text(page, encoding="utf-8")
    return [out / n for n in ("comparison.csv", "fractions.csv", "tests.csv",
                              "comparison.html")]


def _sections(result: DatasetComparison) -> list:
    """The chapters of the comparison page."""
    from tempipe import figures
    from tempipe.groupstats import population_table
    from tempipe.report import ReportSection

    comp, groups, clf = result.comparison, result.groups, result.classifier
    (a, b), (pa, pb) = comp.names, (result.particles_a, result.particles_b)
    text = (f"Shape groups were found in {a} ({len(pa)} particles) without labels: "
            f"{groups.algorithm} on the {groups.feature_set} variables, K = {groups.k} "
            f"(mean silhouette over K, algorithms ranked by cophenetic correlation). A "
            f"classifier trained on those groups (test accuracy {clf.test_accuracy:.1%}, "
            f"10-fold CV {clf.cv_accuracy:.1%}) labelled the {len(pb)} particles of {b}, "
            "so both datasets share one group numbering.")
    return [
        ReportSection("Comparison", text, figures={
            "Size distributions": figures.size_comparison(pa, pb, comp.names,
                                                          tests=comp.tests),
            "Group shares": figures.group_fractions(comp.fractions)},
            tables={"Both datasets (Tables 1-2 layout)": comp.table,
                    "Group counts and fractions": comp.fractions,
                    "Statistical tests": comp.tests}),
        ReportSection("Groups of each dataset", "Table 1 of the paper for each dataset.",
                      tables={a: population_table(pa, groups.labels),
                              b: population_table(pb, result.labels_b)}),
        ReportSection(f"Shape groups of {a}", "How K and the algorithm were chosen, and how "
                      "well the classifier separates the groups.",
                      figures={"Silhouette against K": figures.silhouette_curves(
                          groups.silhouettes),
                          "Classifier confusion matrix": figures.confusion_matrix(clf)},
                      tables={"Cluster comparison": groups.comparison})]

"""One dataset's report from its tables: overview, shape parameters, shape groups.

:func:`dataset_report` is what ``tempipe report`` runs on a particle table (from
``tempipe analyze``, the store or :func:`tempipe.pipeline.analyze_batch`): it finds the
shape groups without labels (:func:`tempipe.population.find_shape_groups`), trains the
classifier on them (:func:`tempipe.population.train_classifier`) and lays out the
sections of :func:`tempipe.report.build_html_report`; :func:`write_dataset_report` writes
the HTML page and the ZIP bundle of :func:`tempipe.report.build_report_zip`. A part that
cannot be made (too few particles to group, one group only) becomes a note in the report,
never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tempipe import figures
from tempipe.errors import ParameterError, TempipeError
from tempipe.groupstats import group_feature_statistics, population_table, size_column
from tempipe.report import ReportSection, build_html_report, build_report_zip
from tempipe.shape_features import has_cnn
from tempipe.summary import summarize

#: CNN outputs summarised in the shape-parameter section.
SHAPE_COLUMNS = ("p", "d", "l_ratio", "resim_jaccard", "p_std", "d_std", "l_ratio_std")


@dataclass
class DatasetReport:
    """Result of :func:`dataset_report`.

    Attributes
    ----------
    name : str
    html : str
        The self-contained HTML page.
    sections : list of ReportSection
    summary : dict
        :func:`tempipe.summary.summarize` of the tables (plus ``dataset`` and ``notes``).
    particles : DataFrame
        The particle table, with a ``group`` column when groups were found (0 = not grouped).
    groups : ShapeGroups or None
    classifier : ClassifierResult or None
    notes : list of str
        Parts that could not be made, and why.
    """

    name: str
    html: str
    sections: list[ReportSection]
    summary: dict
    particles: pd.DataFrame
    groups: object | None = None
    classifier: object | None = None
    notes: list[str] = field(default_factory=list)


def overview_section(name: str, info: dict, particles: pd.DataFrame, images: pd.DataFrame,
                     failures: pd.DataFrame) -> ReportSection:
    """Counts, mean size ± sd, σ/d̄, the size histogram, the image and failure tables."""
    overall = info["overall"]
    size = overall["major_axis"]
    text = (f"Dataset {name}: {overall['n_images']} image(s) analysed, "
            f"{overall['n_failed']} failed, {overall['n_particles']} particles kept.")
    if size.get("mean_nm") is not None:
        text += (f" Mean size (major axis) {size['mean_nm']:.2f} ± {size['sd_nm']:.2f} nm, "
                 f"σ/d̄ = {size['sigma_over_mean']:.2f}.")
    if overall.get("note"):
        text += "\n\n" + overall["note"]
    figs = {"Size distribution": figures.size_histogram(particles)} if len(particles) else {}
    tables = {"Images": images}
    if len(failures):
        tables["Failures"] = failures
    return ReportSection(f"{name}: overview", text, figs, tables)


def shape_section(name: str, particles: pd.DataFrame) -> ReportSection:
    """Summary statistics of the CNN's parameters and their spreads."""
    stats = particles[[c for c in SHAPE_COLUMNS if c in particles]].describe().T
    text = (f"Shape CNN parameters (p, d, L_ratio of eq. 1) for {len(particles)} particles, "
            "with the model's per-particle spread and the Jaccard index of the "
            "re-simulated shape against the particle's mask.")
    return ReportSection(f"{name}: shape parameters", text,
                         tables={"Shape parameter statistics": stats})


def groups_section(name: str, particles: pd.DataFrame, groups, classifier) -> ReportSection:
    """The shape groups (Table 1 layout), how they were chosen, how well they separate."""
    labels = groups.labels
    figs = {"Silhouette against K": figures.silhouette_curves(groups.silhouettes)}
    if has_cnn(particles):
        figs["Shape parameter space"] = figures.scatter_3d(particles, labels)
    figs["Size by group"] = figures.histogram_with_fits(
        particles, labels, size_column(particles))
    figs["PCA"] = figures.pca_pareto(particles, groups.feature_set)
    text = (f"{groups.k} shape groups found without labels: {groups.algorithm} on the "
            f"{groups.feature_set} variables (K by mean silhouette, algorithm and feature "
            "set by cophenetic correlation).")
    if classifier is not None:
        figs["Classifier confusion matrix"] = figures.confusion_matrix(classifier)
        text += (f" An SVM trained on the groups: test accuracy "
                 f"{classifier.test_accuracy:.1%}, 10-fold CV {classifier.cv_accuracy:.1%} "
                 f"± {classifier.cv_sd:.1%}.")
        if classifier.left_out:
            text += (" Left out of it, too small to learn: " + ", ".join(
                f"group {g} ({n} particles)" for g, n in sorted(classifier.left_out.items()))
                + ".")
    tables = {"Groups (Table 1)": population_table(particles, labels),
              "Feature statistics per group": group_feature_statistics(particles, labels),
              "Cluster comparison": groups.comparison}
    return ReportSection(f"{name}: shape groups", text, figs, tables)


def _population(particles: pd.DataFrame, rng, notes: list[str]):
    """Groups and classifier, or None for each with the reason appended to ``notes``."""
    from tempipe.population import find_shape_groups, train_classifier

    try:
        groups = find_shape_groups(particles, rng=rng)
    except TempipeError as exc:
        notes.append(f"No shape groups: {exc}")
        return None, None
    try:
        classifier = train_classifier(particles, groups.labels, rng=rng)
    except TempipeError as exc:
        notes.append(f"No classifier: {exc}")
        classifier = None
    return groups, classifier


def dataset_report(particles: pd.DataFrame, images: pd.DataFrame | None = None,
                   failures: pd.DataFrame | None = None, *, name: str = "dataset", rng=0,
                   inputs: pd.DataFrame | None = None, model_card: dict | None = None,
                   parameters: dict | None = None) -> DatasetReport:
    """Group a dataset's particles, train the classifier and lay out its report.

    Parameters
    ----------
    particles : DataFrame
        Particle table of :func:`tempipe.pipeline.analyze_batch` (``image`` column).
    images, failures : DataFrame, optional
        The batch's per-image rows and failures (``BatchResult.images``/``.failures``);
        default: one row per image named in ``particles``, no failures.
    name : str
        Dataset name used in titles.
    rng : int or Generator
        Seed of clustering and classifier.
    inputs : DataFrame, optional
        Input files with ``image`` and ``sha256`` columns (see
        :func:`tempipe.report.input_files`); default: the images named in the table.
    model_card : dict, optional
        Card of the shape model that measured ``p, d, l_ratio``.
    parameters : dict, optional
        Analysis parameters to state (e.g. the segmentation parameters).
    """
    if not isinstance(particles, pd.DataFrame) or "image" not in particles:
        raise ParameterError("particles must be the particle table of tempipe analyze "
                             "(a DataFrame with an 'image' column).")
    names = pd.unique(particles["image"]).tolist()
    if images is None:
        images = pd.DataFrame({"image": names})
    if failures is None:
        failures = pd.DataFrame(columns=["image", "error"])
    info = summarize(particles, images, failures)
    info["dataset"] = name
    notes: list[str] = []
    sections = [overview_section(name, info, particles, images, failures)]
    if has_cnn(particles):
        sections.append(shape_section(name, particles))
    groups, classifier = _population(particles, rng, notes) if len(particles) else (None, None)
    table = particles.copy()
    if groups is not None:
        sections.append(groups_section(name, particles, groups, classifier))
        table["group"] = groups.labels
    info["notes"] = notes
    if inputs is None:
        inputs = pd.DataFrame({"image": names, "sha256": "not recorded (read from a "
                               "particle table)"})
    params = dict(parameters or {})
    if groups is not None:
        params["Shape groups"] = {"algorithm": groups.algorithm, "feature set":
                                  groups.feature_set, "K": groups.k,
                                  "variables": ", ".join(groups.columns)}
    if classifier is not None:
        params["Classifier"] = classifier.best_params
    if notes:
        sections.append(ReportSection("Notes", "\n\n".join(notes)))
    html = build_html_report(f"tempipe report: {name}", sections, parameters=params,
                             inputs=inputs, model_card=model_card if has_cnn(particles)
                             else None)
    return DatasetReport(name, html, sections, info, table, groups, classifier, notes)


def write_dataset_report(report: DatasetReport, out_dir, *, bundle: bool = True,
                         images: bool = True, progress=None) -> list[Path]:
    """Write ``report.html`` (and ``report.zip`` with ``bundle``) into ``out_dir``.

    ``images``: render the figures as PNG in the ZIP (kaleido + Chromium); ``progress`` is
    passed to :func:`tempipe.report.build_report_zip`. Returns the files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.html"]
    written[0].write_text(report.html, encoding="utf-8")
    if bundle:
        data = build_report_zip(report.html, report.particles, report.summary,
                                report.sections, images=images, progress=progress)
        (out / "report.zip").write_bytes(data)
        written.append(out / "report.zip")
    return written

"""Helpers of the Report page: gather a dataset's results into :mod:`tempipe.report` sections."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from tempipe.errors import TempipeError
from tempipe.dataset_report import SHAPE_COLUMNS, overview_section
from tempipe.figures import confusion_matrix, size_comparison
from tempipe.figures_montage import group_montage
from tempipe.population import group_feature_statistics, population_table, size_column
from tempipe.report import ReportSection, build_html_report
from tempipe.summary import summarize
from tempipe_app import analysis, clusters, shapes
from tempipe_app.common import explain
from tempipe_app.state import Dataset


def images_frame(ds: Dataset) -> pd.DataFrame:
    """Per-image rows in the form :func:`tempipe.summary.summarize` reads."""
    rows = [{"image": name, "n_particles": len(r.particles), "n_segmented": r.n_segmented,
             "n_dropped_border": r.n_dropped_border,
             "n_dropped_scale_bar": r.n_dropped_scale_bar, "pixel_size_nm": r.pixel_size_nm,
             "scale_source": r.scale_source, "scale_note": r.scale_note}
            for name, r in ds.results.items()]
    return pd.DataFrame(rows, columns=["image", "n_particles", "n_segmented",
                                       "n_dropped_border", "n_dropped_scale_bar",
                                       "pixel_size_nm", "scale_source", "scale_note"])


def failures_frame(ds: Dataset) -> pd.DataFrame:
    rows = [{"image": k, "error": v} for k, v in ds.failures.items()] + list(ds.unreadable)
    return pd.DataFrame(rows, columns=["image", "error"])


def summary(ds: Dataset, particles: pd.DataFrame) -> dict:
    out = summarize(particles, images_frame(ds), failures_frame(ds))
    out["dataset"] = ds.name
    return out


def inputs_frame(*datasets: Dataset) -> pd.DataFrame:
    """Input files: dataset, name, sha256, file calibration and the scale used."""
    rows = []
    for ds in datasets:
        for e in ds.images:
            result = ds.results.get(e.name)
            rows.append({"dataset": ds.name, "image": e.name, "sha256": e.sha256,
                         "file calibration (nm/px)": e.micrograph.pixel_size_nm,
                         "scale used (nm/px)": result.pixel_size_nm if result else None,
                         "scale": result.scale_note if result else ds.failures.get(e.name)})
    return pd.DataFrame(rows)


def _overview(ds: Dataset, particles: pd.DataFrame, info: dict) -> ReportSection:
    return overview_section(ds.name, info, particles, analysis.images_table(ds),
                            failures_frame(ds))


def _shape_section(ds: Dataset, particles: pd.DataFrame) -> ReportSection:
    stats = particles[[c for c in SHAPE_COLUMNS if c in particles]].describe().T
    text = (f"Shape CNN predictions for {len(particles)} particles; "
            f"{int(particles['uncertain'].sum())} flagged uncertain by the filter "
            f"{asdict(ds.shape_filter)}.")
    return ReportSection(f"{ds.name}: shape parameters", text,
                         {"Shape parameters": shapes.parameter_histograms(particles)},
                         {"Shape parameter statistics": stats})


def _groups_section(ds: Dataset) -> ReportSection:
    pop = clusters.population(ds)
    g = pop.groups
    figs = {}
    if {"p", "d", "l_ratio"} <= set(pop.table.columns):
        figs["Shape parameter space"] = clusters.figure("scatter_3d", pop.groups_key, pop)
    figs["Size by group"] = clusters.figure("histogram", pop.groups_key, pop,
                                            column=size_column(pop.table))
    figs["Dendrogram"] = clusters.figure("dendrogram", pop.groups_key, pop)
    figs["Parallel coordinates"] = clusters.figure("parallel", pop.groups_key, pop)
    figs["PCA"] = clusters.figure("pca", pop.groups_key, pop)
    figs["Group montage"] = group_montage(analysis.particle_crops(ds), g.labels)
    clf = clusters.classifier(pop)
    figs["Classifier confusion matrix"] = confusion_matrix(clf)
    text = (f"{g.k} shape groups by {clusters.ALGORITHM_NAMES[g.algorithm]} on "
            f"{clusters.FEATURE_SET_NAMES[g.feature_set]} (chosen by the cluster comparison "
            f"unless overridden). Classifier: test accuracy {clf.test_accuracy:.1%}, "
            f"cross-validated {clf.cv_accuracy:.1%} ± {clf.cv_sd:.1%}.")
    tables = {"Cluster comparison": clusters.comparison_table(pop.comparison),
              "Groups (Table 1)": population_table(pop.table, g.labels),
              "Feature statistics per group": group_feature_statistics(pop.table, g.labels)}
    return ReportSection(f"{ds.name}: shape groups", text, figs, tables)


def _compare_section(ds_a: Dataset, ds_b: Dataset) -> ReportSection:
    pop_a, table_b, result, _ = clusters.compare(ds_a, ds_b)
    names = result.names
    return ReportSection(
        f"Comparison: {names[0]} vs {names[1]}",
        f"The groups of {names[0]} train a classifier that labels {names[1]}.",
        {"Size distributions": size_comparison(pop_a.table, table_b, names, tests=result.tests)},
        {"Comparison": result.table, "Group fractions": result.fractions,
         "Tests": result.tests})


def sections(ds: Dataset, other: Dataset | None) -> tuple[list[ReportSection], list[str]]:
    """Every section the results allow, and a note for each part that could not be made."""
    particles = analysis.particle_table(ds)
    info = summary(ds, particles)
    out, notes = [_overview(ds, particles, info)], []
    if ds.shaped:
        out.append(_shape_section(ds, particles))
    for build, args, what in ((_groups_section, (ds,), "shape groups"),
                              (_compare_section, (ds, other), "comparison")):
        if what == "comparison" and other is None:
            continue
        try:
            out.append(build(*args))
        except TempipeError as exc:
            notes.append(f"No {what} section: {explain(exc)}")
    return out, notes


def parameters(ds: Dataset, other: Dataset | None) -> dict:
    params = {f"Segmentation ({d.name})": asdict(d.params) for d in (ds, other) if d}
    params["Uncertainty filter"] = asdict(ds.shape_filter)
    params["Clustering choice"] = {k: (v if v is not None else "best")
                                   for k, v in ({"algorithm": None, "feature_set": None,
                                                 "k": None} | ds.clustering).items()}
    return params


def build(ds: Dataset, other: Dataset | None, card: dict | None) -> dict:
    """HTML, sections, particle table, summary and notes of a report on ``ds``."""
    secs, notes = sections(ds, other)
    particles = analysis.particle_table(ds)
    datasets = (ds, other) if other is not None else (ds,)
    html = build_html_report(f"tempipe report: {ds.name}", secs,
                             parameters=parameters(ds, other), inputs=inputs_frame(*datasets),
                             model_card=card if ds.shaped else None)
    return {"html": html, "sections": secs, "particles": particles,
            "summary": summary(ds, particles), "notes": notes,
            "name": ds.name}

"""Population benchmark: shape groups, classifier and timing on simulated populations.

Simulates calibrated 1024² fields of four shape families that differ in shape and size
(small discs, rounded squares, rods L~2, large triangles; touching clusters included),
writes them as TIFF, runs the full pipeline on the files (``analyze_batch``, two
processes, the shipped shape CNN when ``models/shape_cnn.pt`` exists), matches every
detected particle to the truth label under its centroid, then prints:

- the cluster comparison table and the chosen algorithm / feature set / K;
- the adjusted Rand index of the default shape groups against the true families;
- the classifier's test and 10-fold CV accuracy and the ablation (features only, CNN only);
- the wall time of the whole population analysis (comparison, clustering, statistics,
  classifier with its bounded search, a two-dataset comparison, every figure) and the
  machine's load average while it ran.

With ``--demo hot-injection`` or ``--demo larp`` the population is a built-in demo batch
instead (:mod:`tempipe.demo`, written by ``write_demo_batch``): the same report, so the
groups tempipe recovers can be checked against the demo's families (the paper's story).

Usage: .venv/bin/python bench/bench_population.py [--images 40] [--seed 0] [--no-cnn]
       [--cache DIR]  (reuses the analysed table of an earlier run in DIR)
       [--demo NAME]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from tempipe import figures, figures_montage
from tempipe.classifier import classifier_ablation, train_classifier
from tempipe.compare import compare_populations
from tempipe.io import Micrograph, save_micrograph
from tempipe.pipeline import analyze_batch, analyze_micrograph
from tempipe.population import (find_shape_groups, group_feature_statistics, group_summary,
                                population_table)
from tempipe.shape_model import DEFAULT_WEIGHTS
from tempipe.simulate import (DEMO_BATCHES, ShapeFamily, demo_batch, simulate_micrograph,
                              write_demo_batch)

PIXEL_SIZE_NM = 0.5
FAMILIES = (
    ShapeFamily("small-disc", p=(2.0, 2.4), d=(2,), l_ratio=(1.0, 1.08), size_mean_px=22,
                size_rel_sd=0.12, fraction=0.35),
    ShapeFamily("rounded-square", p=(4.0, 8.0), d=(2,), l_ratio=(1.0, 1.1), size_mean_px=36,
                size_rel_sd=0.12, fraction=0.3),
    ShapeFamily("rod", p=(2.5, 5.0), d=(2,), l_ratio=(1.8, 2.2), size_mean_px=44,
                size_rel_sd=0.12, fraction=0.2),
    ShapeFamily("triangle", p=(1.3, 2.0), d=(3,), l_ratio=(1.6, 2.0), size_mean_px=52,
                size_rel_sd=0.10, fraction=0.15),
)


def simulate(n_images: int, seed: int, folder: Path) -> tuple[list[Path], dict]:
    """Write the fields as calibrated TIFFs; return paths and {file name: truth}."""
    paths, truth = [], {}
    for i in range(n_images):
        sim = simulate_micrograph((1024, 1024), n_particles=300, families=FAMILIES,
                                  pixel_size_nm=PIXEL_SIZE_NM, rng=seed + i)
        path = save_micrograph(folder / f"pop-{i:03d}.tif", sim.image, PIXEL_SIZE_NM)
        paths.append(path)
        truth[path.name] = (sim.labels, sim.particles.set_index("label")["family"], sim.image,
                            PIXEL_SIZE_NM)
    return paths, truth


def simulate_demo(name: str, n_images: int, seed: int, folder: Path) -> tuple[list[Path], dict]:
    """Write a demo batch as the app ships it; return paths and {file name: truth}."""
    paths = write_demo_batch(name, folder, n_images=n_images, rng=seed)
    truth = {f"{sim.name}.tif": (sim.labels, sim.particles.set_index("label")["family"],
                                 sim.image, sim.pixel_size_nm)
             for sim in demo_batch(name, n_images=n_images, rng=seed)}
    return paths, truth


def match_truth(particles: pd.DataFrame, truth: dict) -> np.ndarray:
    """True family of each detected particle: the truth label under its centroid."""
    family = np.full(len(particles), None, dtype=object)
    for name, rows in particles.groupby("image").groups.items():
        labels, fam = truth[name][:2]
        part = particles.loc[rows]
        r = np.clip(np.rint(part["centroid_row"]).astype(int), 0, labels.shape[0] - 1)
        c = np.clip(np.rint(part["centroid_col"]).astype(int), 0, labels.shape[1] - 1)
        ids = labels[r, c]
        family[particles.index.get_indexer(rows)] = np.where(
            ids > 0, fam.reindex(ids).to_numpy(), None)
    return family


def population_analysis(particles: pd.DataFrame, crop_set, rng: int = 0) -> dict:
    """Everything the app shows for one population (+ one two-dataset comparison)."""
    out = {"groups": find_shape_groups(particles, rng=rng)}
    labels = out["groups"].labels
    out["summary"] = group_summary(particles, labels)
    out["table1"] = population_table(particles, labels)
    out["feature_stats"] = group_feature_statistics(particles, labels)
    out["classifier"] = clf = train_classifier(particles, labels, rng=rng)
    half = particles["image"] < sorted(particles["image"].unique())[
        particles["image"].nunique() // 2]
    a, b = particles[half].reset_index(drop=True), particles[~half].reset_index(drop=True)
    out["comparison"] = comp = compare_populations(a, b, labels[half.to_numpy()],
                                                   clf.predict(b), ("first half", "second half"))
    image, label_image, overlay_table, crops, crops_table = crop_set
    crop_groups = clf.predict(crops_table)
    figs = [figures.histogram_with_fits(particles, labels, "circularity"),
            figures.dendrogram(particles, labels, feature_set=out["groups"].feature_set),
            figures.parallel_coordinates(particles, labels),
            figures.pca_pareto(particles, out["groups"].feature_set),
            figures.confusion_matrix(clf), figures.size_comparison(a, b, tests=comp.tests),
            figures.silhouette_curves(out["groups"].silhouettes),
            figures_montage.group_montage(crops, crop_groups),
            figures_montage.population_montage(crops, crop_groups),
            figures_montage.group_overlay(image, label_image, overlay_table,
                                          clf.predict(overlay_table))]
    if "p" in particles:
        figs.append(figures.scatter_3d(particles, labels))
    out["figures"] = [f.to_json() for f in figs]  # serialised, as the app would send them
    return out


def crops_for_figures(paths, truth, shape_model) -> tuple:
    """(image, label image, particles) of one field for the overlay, and the crops and
    particles of three fields for the montages."""
    results = [analyze_micrograph(Micrograph(truth[p.name][2], truth[p.name][3], p.name, {}),
                                  shape_model=shape_model) for p in paths[:3]]
    table = pd.concat([r.particles for r in results], ignore_index=True)
    crops = np.concatenate([r.crops for r in results])
    first = results[0]
    return truth[paths[0].name][2], first.labels, first.particles, crops, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-cnn", action="store_true")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--demo", choices=("hot-injection", "larp"), default=None,
                        help="analyse a built-in demo batch instead of the four families")
    args = parser.parse_args()
    shape_model = None if args.no_cnn or not DEFAULT_WEIGHTS.exists() else "shipped"
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.cache or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        paths, truth = (simulate_demo(args.demo, args.images, args.seed, folder) if args.demo
                        else simulate(args.images, args.seed, folder))
        print(f"simulated {len(paths)} fields in {time.perf_counter() - t0:.1f} s")
        stamp = (json.loads(DEFAULT_WEIGHTS.with_suffix(".json").read_text())["created"]
                 .replace(":", "") if shape_model else "nocnn")
        recipe = repr(DEMO_BATCHES[args.demo] if args.demo else FAMILIES).encode()
        cached = folder / (f"particles-{args.demo or 'pop'}-{hashlib.sha1(recipe).hexdigest()[:8]}"
                           f"-{stamp}-{args.images}-{args.seed}.parquet")
        if args.cache and cached.exists():
            particles = pd.read_parquet(cached)
        else:
            t0 = time.perf_counter()
            batch = analyze_batch(paths, n_jobs=2, shape_model=shape_model)
            print(f"analyze_batch (2 processes, shape model: {shape_model} {stamp}): "
                  f"{time.perf_counter() - t0:.1f} s, {len(batch.particles)} particles, "
                  f"{len(batch.failures)} failures")
            particles = batch.particles
            if args.cache:
                particles.to_parquet(cached)
        crop_set = crops_for_figures(paths, truth, shape_model)
    report(particles, truth, crop_set, args.seed)


def report(particles: pd.DataFrame, truth: dict, crop_set, seed: int) -> None:
    family = match_truth(particles, truth)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    out = population_analysis(particles, crop_set, rng=seed)
    seconds = time.perf_counter() - t0
    groups, clf = out["groups"], out["classifier"]
    matched = family != None  # noqa: E711 - elementwise on an object array
    true_k = len(set(family[matched]))
    ari = adjusted_rand_score(family[matched], groups.labels[matched])
    pd.set_option("display.width", 160)
    print(f"\n{len(particles)} particles from {particles['image'].nunique()} images; "
          f"{matched.sum()} matched to a true family ({true_k} families)")
    print("\ncluster comparison (K by silhouette on a 2000-particle subsample):")
    print(groups.comparison.round(4).to_string(index=False))
    print(f"\ndefault: {groups.algorithm} on {groups.feature_set}, K = {groups.k} "
          f"(true K = {true_k}); ARI = {ari:.4f}")
    print(pd.crosstab(family[matched], groups.labels[matched], rownames=["family"],
                      colnames=["group"]))
    if groups.k != true_k:
        forced = find_shape_groups(particles, algorithm=groups.algorithm, k=true_k,
                                   feature_set=groups.feature_set, rng=seed,
                                   comparison=groups.comparison)
        print(f"forced to the true K = {true_k} (same algorithm and feature set): ARI = "
              f"{adjusted_rand_score(family[matched], forced.labels[matched]):.4f}")
    print("\nTable 1 layout:\n" + out["table1"].round(3).to_string())
    print(f"\nclassifier: test accuracy {clf.test_accuracy:.4f} (n_test {clf.n_test}), "
          f"10-fold CV {clf.cv_accuracy:.4f} ± {clf.cv_sd:.4f}, {clf.best_params}, "
          f"{clf.n_trials} trials")
    print(f"\nwhole population analysis: {seconds:.1f} s (load average before "
          f"{load0:.2f}, after {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores)")
    print("\ntwo halves compared:\n" + out["comparison"].tests.round(4).to_string(index=False))
    print("\nablation (same labels, different inputs):")
    print(classifier_ablation(particles, groups.labels, rng=seed).round(4).to_string(index=False))
    for fset in ("features", "cnn"):
        if fset == "cnn" and "p" not in particles:
            continue
        alt = find_shape_groups(particles, feature_set=fset, rng=seed,
                                comparison=groups.comparison)
        print(f"clustering on {fset} only: {alt.algorithm}, K = {alt.k}, ARI = "
              f"{adjusted_rand_score(family[matched], alt.labels[matched]):.4f}")


if __name__ == "__main__":
    main()

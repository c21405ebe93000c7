"""Spine benchmark: segmentation accuracy and analyze_image throughput on simulated fields.

Prints, for N simulated 1024² fields (~150 particles each, touching pairs and small
agglomerates, default parameters, both polarities):
- detection precision / recall / F1 at IoU >= 0.5 (one-to-one), mean matched IoU, AP;
- median relative equivalent-diameter error of matched particles not cut by the border;
- throughput of analyze_batch (load from TIFF, scale bar search, segment, features, crops;
  then also with the shape CNN and re-simulation) in particles per minute, one process and
  two processes.

Usage: .venv/bin/python bench/bench_spine.py [--fields 20] [--seed 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from tempipe.io import save_micrograph
from tempipe.metrics import average_precision, match_instances
from tempipe.pipeline import analyze_batch
from tempipe.segment import segment
from tempipe.simulate import simulate_micrograph


def _diameter_errors(truth, pred, pairs) -> np.ndarray:
    """Relative equivalent-diameter error of matched pairs whose truth is off the border."""
    edge = np.concatenate([truth[0], truth[-1], truth[:, 0], truth[:, -1]])
    border = set(np.unique(edge).tolist())
    t_area = np.bincount(truth.ravel())
    p_area = np.bincount(pred.ravel())
    errors = [np.sqrt(p_area[p] / t_area[t]) - 1 for t, p in pairs if t not in border]
    return np.abs(np.asarray(errors))


def accuracy(n_fields: int, seed: int, polarity: str) -> dict:
    tp = fp = fn = 0
    ious, errors, aps, seconds, n_true = [], [], [], [], 0
    for i in range(n_fields):
        sim = simulate_micrograph((1024, 1024), n_particles=150, polarity=polarity, rng=seed + i)
        start = time.perf_counter()
        pred = segment(sim.image)
        seconds.append(time.perf_counter() - start)
        m = match_instances(sim.labels, pred, iou_threshold=0.5)
        tp, fp, fn = tp + m["tp"], fp + m["fp"], fn + m["fn"]
        ious.extend(m["ious"])
        errors.extend(_diameter_errors(sim.labels, pred, m["pairs"]))
        aps.append(average_precision(sim.labels, pred))
        n_true += int(sim.labels.max())
    precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return {"fields": n_fields, "true particles": n_true, "precision": precision,
            "recall": recall, "F1@0.5": 2 * precision * recall / max(precision + recall, 1e-9),
            "mean matched IoU": float(np.mean(ious)), "AP@0.5:0.95": float(np.mean(aps)),
            "median |ED error| (interior)": float(np.median(errors)),
            "segment s/field": float(np.mean(seconds))}


def throughput(n_fields: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(n_fields):
            sim = simulate_micrograph((1024, 1024), n_particles=150, pixel_size_nm=0.5,
                                      rng=seed + i)
            paths.append(save_micrograph(Path(tmp) / f"field_{i:03d}.tif", sim.image, 0.5))
        analyze_batch(paths[:1])  # warm-up (imports, caches, the model)
        out = {}
        for model, what in ((None, "spine"), ("shipped", "+ CNN")):
            for jobs in (1, 2):
                start = time.perf_counter()
                result = analyze_batch(paths, n_jobs=jobs, shape_model=model)
                elapsed = time.perf_counter() - start
                assert result.failures.empty, result.failures
                n = len(result.particles)
                out[f"{what}, {jobs} process(es)"] = (
                    f"{n} particles kept in {elapsed:.2f} s = {60 * n / elapsed:,.0f} "
                    f"particles/min ({elapsed / n_fields:.3f} s/image)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fields", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--throughput-only", action="store_true")
    args = parser.parse_args()
    for polarity in () if args.throughput_only else ("dark", "bright"):
        print(f"== accuracy, {polarity} particles ==")
        for key, value in accuracy(args.fields, args.seed, polarity).items():
            print(f"  {key:32s} {value:.4f}" if isinstance(value, float) else f"  {key:32s} {value}")
    print("== throughput of analyze_batch (load + scale bar + segment + features + crops) ==")
    for key, value in throughput(args.fields, args.seed).items():
        print(f"  {key:24s} {value}")


if __name__ == "__main__":
    main()

"""EMPS benchmark: tempipe.segment against a plain baseline on real micrographs.

Runs, in one pass over ``../shared/data/emps-train`` (366 published TEM/SEM figures with
human-drawn instance labels; particles cut by the border are labelled and kept), both
- the baseline: grey image, Gaussian (sigma 1.5 px), Otsu threshold with the particles
  taken as the minority phase, hole filling, removal of objects of 64 px or less, then a
  distance-transform watershed seeded by ``peak_local_max`` whose ``min_distance`` is
  the typical inscribed radius of the blobs (area-weighted median); and
- ``tempipe.segment.segment`` with default parameters (or ``--params``),
and prints for each, on all images and on the two halves of a fixed random split
(``tune``: 70 % of the ids, the only ones looked at while tuning; ``validation``: the
other 30 %): pooled precision, recall and F1 at IoU >= 0.5 (one-to-one matching), mean
matched IoU, AP (mean over IoU 0.50:0.05:0.95 of TP / (TP + FP + FN), pooled over images
and as the mean of per-image APs) and seconds per image (wall clock, and CPU time of
the worker process, which a busy machine inflates less).

Usage: .venv/bin/python bench/bench_real_micrographs.py [--jobs 2]
       [--subset all|tune|validation] [--limit N] [--params '{"valley_depth": 0.3}']
"""

from __future__ import annotations

import argparse
import json
import os
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from skimage import feature, filters, morphology, segmentation

from tempipe.io import load_micrograph
from tempipe.metrics import match_counts
from tempipe.segment import SegmentParams, segment

EMPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "emps-train"
#: The fixed split: this share of the ids, drawn with this seed, is held out while tuning.
VALIDATION_FRACTION = 0.3
SPLIT_SEED = 20240613
IOU_THRESHOLDS = np.round(np.arange(0.5, 1.0, 0.05), 2)
#: Baseline knobs: Gaussian sigma (px) and largest debris removed (px, skimage's default);
#: peaks of the distance transform are at least one typical inscribed radius apart.
BASELINE_SIGMA_PX = 1.5
BASELINE_DEBRIS_PX = 64


def emps_ids(root: Path = EMPS) -> list[str]:
    """Sorted ids of the images that have a label map."""
    return sorted(p.stem for p in (root / "images").glob("*.png")
                  if (root / "segmaps" / p.name).is_file())


def split_ids(ids: list[str]) -> tuple[list[str], list[str]]:
    """The fixed (tune, validation) split of ``ids``."""
    ids = sorted(ids)
    rng = np.random.default_rng(SPLIT_SEED)
    held = set(rng.choice(len(ids), int(round(VALIDATION_FRACTION * len(ids))),
                          replace=False).tolist())
    return ([i for k, i in enumerate(ids) if k not in held],
            [i for k, i in enumerate(ids) if k in held])


def load_pair(image_id: str, root: Path = EMPS) -> tuple[np.ndarray, np.ndarray]:
    """(M, N) float32 grey image (BT.601 luminance) and (M, N) int64 truth labels."""
    image = load_micrograph(root / "images" / f"{image_id}.png").image
    truth = np.asarray(Image.open(root / "segmaps" / f"{image_id}.png")).astype(np.int64)
    return image, truth


def baseline_segment(image: np.ndarray) -> np.ndarray:
    """Plain baseline: Gaussian + Otsu (minority phase) + distance-transform watershed.

    Parameters
    ----------
    image : (M, N) ndarray
        Grey micrograph.

    Returns
    -------
    (M, N) ndarray of int32
        Instance labels, 0 = background.
    """
    smooth = filters.gaussian(image.astype(np.float32), BASELINE_SIGMA_PX)
    if smooth.max() - smooth.min() < 1e-6:
        return np.zeros(image.shape, np.int32)
    bright = smooth > filters.threshold_otsu(smooth)
    mask = ~bright if bright.mean() > 0.5 else bright       # particles: the minority phase
    mask = ndi.binary_fill_holes(mask)
    mask = morphology.remove_small_objects(mask, max_size=BASELINE_DEBRIS_PX)
    components, n = ndi.label(mask)
    if n == 0:
        return components.astype(np.int32)
    distance = ndi.distance_transform_edt(mask)
    radius = _typical_radius(components, n, distance)
    peaks = feature.peak_local_max(distance, labels=components, exclude_border=False,
                                   min_distance=max(2, int(round(radius))))
    markers = np.zeros(image.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return segmentation.watershed(-distance, markers, mask=mask).astype(np.int32)


def _typical_radius(components, n, distance) -> float:
    """Area-weighted median of the blobs' inscribed radii (px)."""
    radii = np.asarray(ndi.maximum(distance, components, np.arange(1, n + 1)))
    areas = np.bincount(components.ravel(), minlength=n + 1)[1:]
    order = np.argsort(radii)
    cumulative = np.cumsum(areas[order])
    return float(radii[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def _run_one(task) -> dict:
    image_id, params_json = task
    image, truth = load_pair(image_id)
    params = SegmentParams(**json.loads(params_json))
    record = {"id": image_id}
    for name, method in (("baseline", baseline_segment),
                         ("tempipe", lambda im: segment(im, params))):
        start, cpu = time.perf_counter(), time.process_time()
        pred = method(image)
        record[name] = {"seconds": time.perf_counter() - start,
                        "cpu_seconds": time.process_time() - cpu,
                        **match_counts(truth, pred, IOU_THRESHOLDS)}
    return record


def evaluate(ids: list[str], params: dict | None = None, jobs: int = 1) -> list[dict]:
    """Per-image counts and timings of both methods (see :func:`summarize`)."""
    tasks = [(i, json.dumps(params or {})) for i in ids]
    if jobs <= 1:
        return [_run_one(t) for t in tasks]
    with Pool(jobs) as pool:
        return pool.map(_run_one, tasks, chunksize=4)


def summarize(records: list[dict], method: str) -> dict:
    """Pooled scores of ``method`` ("baseline" or "tempipe") over ``records``."""
    rows = [r[method] for r in records]
    n_true = sum(r["n_true"] for r in rows)
    n_pred = sum(r["n_pred"] for r in rows)
    tp = np.sum([r["tp"] for r in rows], axis=0)
    denom = n_true + n_pred - tp
    per_image = [np.mean(np.where(r["n_true"] + r["n_pred"] - r["tp"] > 0,
                                  r["tp"] / np.maximum(r["n_true"] + r["n_pred"] - r["tp"], 1),
                                  1.0)) for r in rows]
    ious = np.concatenate([r["ious"] for r in rows])
    return {"images": len(rows), "true": n_true,
            "precision": tp[0] / max(n_pred, 1), "recall": tp[0] / max(n_true, 1),
            "F1@0.5": 2 * tp[0] / max(n_true + n_pred, 1),
            "mean IoU": float(ious.mean()) if ious.size else float("nan"),
            "AP pooled": float(np.mean(tp / np.maximum(denom, 1))),
            "AP per-image": float(np.mean(per_image)),
            "s/image": float(np.mean([r["seconds"] for r in rows])),
            "cpu s/image": float(np.mean([r["cpu_seconds"] for r in rows]))}


def _print_table(title: str, records: list[dict]) -> None:
    print(f"== {title} ==")
    keys = list(summarize(records, "baseline"))
    print("  " + f"{'method':10s}" + "".join(f"{k:>14s}" for k in keys))
    for method in ("baseline", "tempipe"):
        s = summarize(records, method)
        print("  " + f"{method:10s}" + "".join(
            f"{s[k]:14.3f}" if isinstance(s[k], float) else f"{s[k]:14d}" for k in keys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--subset", choices=("all", "tune", "validation"), default="all")
    parser.add_argument("--limit", type=int, default=0, help="first N ids of the subset only")
    parser.add_argument("--params", default="{}", help="SegmentParams fields as JSON")
    args = parser.parse_args()
    if not (EMPS / "images").is_dir():
        raise SystemExit(f"EMPS data not found at {EMPS}")
    ids = emps_ids()
    tune, validation = split_ids(ids)
    chosen = {"all": ids, "tune": tune, "validation": validation}[args.subset]
    chosen = chosen[:args.limit] if args.limit else chosen
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores, {args.jobs} process(es), params {args.params}")
    records = evaluate(chosen, json.loads(args.params), args.jobs)
    print(f"(load average at the end {os.getloadavg()[0]:.1f})")
    _print_table(f"{args.subset}: {len(records)} images", records)
    if args.subset == "all":
        for name, part in (("tune", set(tune)), ("validation", set(validation))):
            _print_table(f"{name}: {len(part & set(chosen))} images",
                         [r for r in records if r["id"] in part])


if __name__ == "__main__":
    main()

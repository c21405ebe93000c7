"""End-to-end throughput (issue 7): nanocrystals per minute, and a full 7,000-particle analysis.

Simulates 2048² fields with the hot-injection demo batch's particles (its four families,
sizes in nm, 0.35 nm/px, 30 % touching, its image formation and scale bars) at the demo's
density (300 particles per 1024², so 1,200 per field), writes them as calibrated TIFFs
(``tempipe.io.save_micrograph``), then prints:

1. **Full analysis** of the first fields holding about 7,000 kept particles (the paper's
   hot-injection set took 8 min 39 s): ``analyze_batch`` on all cores, started cold (the
   worker pool is started by this call), then ``tempipe.dataset_report.dataset_report``
   (shape groups by ``find_shape_groups``, classifier by ``train_classifier``, every figure
   and table of ``tempipe report``) and writing ``report.html``. Target ≤ 30 s.
2. **One process**: ``analyze_batch(n_jobs=1)`` on every field (load → scale bar → segment
   → 30 features → crops → shape CNN → re-simulation Jaccard), nanocrystals per minute and
   the seconds per field of each stage (wall clock and CPU), measured on the real pipeline
   by timing the functions ``analyze_micrograph`` calls.
3. **All cores**: ``analyze_batch(n_jobs=N)`` on the same fields with the pool warm.
   Target ≥ 60,000 nanocrystals per minute on the 2-core machine.

Every timed part prints the load average before and after it: on a shared machine the
figures are upper bounds.

Usage: .venv/bin/python bench/throughput.py [--fields 8] [--jobs N] [--batch-particles 7000]
       [--seed 0] [--out DIR] [--torch-threads N]   (DIR keeps the fields and report.html)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from tempipe import population
from tempipe.batch import default_jobs
from tempipe.dataset_report import dataset_report, write_dataset_report
from tempipe.demo import HOT_INJECTION
from tempipe.io import save_micrograph
from tempipe.pipeline import analyze_batch
from tempipe.shape_model import DEFAULT_WEIGHTS, ShapeModel
from tempipe.simulate import ScaleBarStyle, simulate_micrograph

FIELD_SHAPE = (2048, 2048)
#: The demo's density: 300 particles per 1024 x 1024 field.
PARTICLES_PER_FIELD = 300 * (FIELD_SHAPE[0] * FIELD_SHAPE[1]) // (1024 * 1024)
#: Functions analyze_micrograph calls, by the stage they belong to (module attribute names).
STAGES = {"load_micrograph": "load", "find_scale_bar": "scale bar",
          "mask_scale_bar": "scale bar", "segment": "segment",
          "measure_particles": "features", "crop_particles": "crops",
          "crop_masks": "re-simulation", "resim_jaccard": "re-simulation"}
STAGE_ORDER = ("load", "scale bar", "segment", "features", "crops", "shape CNN",
               "re-simulation")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (5-min {five:.2f})"


def simulate_fields(n: int, seed: int, folder: Path) -> list[Path]:
    """Hot-injection-like 2048² fields written as calibrated TIFFs."""
    spec = HOT_INJECTION
    gens = np.random.default_rng(seed).spawn(n)
    paths = []
    for i, gen in enumerate(gens):
        corner = ("bottom-right", "bottom-left", "top-right", "top-left")[i % 4]
        sim = simulate_micrograph(
            FIELD_SHAPE, n_particles=PARTICLES_PER_FIELD, families=spec.families,
            pixel_size_nm=spec.pixel_size_nm, touching_fraction=spec.touching_fraction,
            scale_bar=ScaleBarStyle(corner=corner, color=("white", "black")[i % 2]),
            dose=float(gen.uniform(150, 300)), contrast=float(gen.uniform(0.4, 0.55)),
            blur_px=float(gen.uniform(0.8, 1.2)), rng=gen)
        paths.append(save_micrograph(folder / f"hot-2048-{i:03d}.tif", sim.image,
                                     spec.pixel_size_nm))
    return paths


class StageClock:
    """Wall and CPU seconds spent in each stage, by wrapping the functions of ``STAGES``
    wherever a ``tempipe`` module imported them (this process only)."""

    def __init__(self):
        self.wall, self.cpu = defaultdict(float), defaultdict(float)
        self._undo = []

    def _wrap(self, func, stage):
        def timed(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return func(*args, **kwargs)
            finally:
                self.wall[stage] += time.perf_counter() - wall
                self.cpu[stage] += time.process_time() - cpu
        return timed

    @contextmanager
    def installed(self):
        modules = [m for name, m in list(sys.modules.items())
                   if name == "tempipe" or name.startswith("tempipe.")]
        for name, stage in STAGES.items():
            for module in modules:
                func = getattr(module, name, None)
                if callable(func) and getattr(func, "__module__", "").startswith("tempipe"):
                    self._undo.append((module, name, func))
                    setattr(module, name, self._wrap(func, stage))
        predict = ShapeModel.predict
        ShapeModel.predict = self._wrap(predict, "shape CNN")
        try:
            yield self
        finally:
            ShapeModel.predict = predict
            for module, name, func in reversed(self._undo):
                setattr(module, name, func)
            self._undo.clear()


def timed_batch(paths, n_jobs, clock=None) -> tuple[object, float, float]:
    """analyze_batch on ``paths``; returns (result, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    if clock is None:
        result = analyze_batch(paths, n_jobs=n_jobs)
    else:
        with clock.installed():
            result = analyze_batch(paths, n_jobs=n_jobs)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if not result.failures.empty:
        raise SystemExit(f"failures:\n{result.failures.to_string()}")
    return result, wall, cpu


def full_analysis(paths, jobs: int, out: Path) -> None:
    print(f"\n== 1. full analysis of {len(paths)} fields (analyze_batch on {jobs} processes, "
          "pool started cold; shape groups, classifier, HTML report) ==")
    print(f"  before: {load()}")
    parts = {}
    start = time.perf_counter()
    result, parts["analyze_batch"], _ = timed_batch(paths, jobs)
    n = len(result.particles)
    clocks = defaultdict(float)

    def clocked(func, key):
        def run(*args, **kwargs):
            t = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                clocks[key] += time.perf_counter() - t
        return run

    originals = {k: getattr(population, k) for k in ("find_shape_groups", "train_classifier")}
    for key, func in originals.items():
        setattr(population, key, clocked(func, key))
    try:
        t = time.perf_counter()
        card_path = DEFAULT_WEIGHTS.with_suffix(".json")
        card = json.loads(card_path.read_text()) if card_path.is_file() else None
        report = dataset_report(result.particles, result.images, result.failures,
                                name="hot-injection-2048", rng=0, model_card=card)
        written = write_dataset_report(report, out, bundle=False)
        parts["report (groups + classifier + figures + HTML)"] = time.perf_counter() - t
    finally:
        for key, func in originals.items():
            setattr(population, key, func)
    total = time.perf_counter() - start
    groups, clf = report.groups, report.classifier
    print(f"  {n:,} particles in {len(paths)} images"
          + (f"; {groups.k} shape groups ({groups.algorithm} on {groups.feature_set})"
             if groups is not None else "; no shape groups")
          + (f"; classifier test accuracy {clf.test_accuracy:.3f}" if clf is not None else ""))
    for key, seconds in parts.items():
        print(f"  {key:48s} {seconds:7.2f} s")
    for key, seconds in clocks.items():
        print(f"    of which {key:38s} {seconds:7.2f} s")
    print(f"  {'TOTAL (target <= 30 s; paper 519 s)':48s} {total:7.2f} s   "
          f"-> {written[0]} ({written[0].stat().st_size / 1e6:.1f} MB)")
    for note in report.notes:
        print(f"  note: {note}")
    print(f"  after: {load()}")


def one_process(paths) -> int:
    print(f"\n== 2. one process: analyze_batch(n_jobs=1) on {len(paths)} fields "
          f"(torch {torch.get_num_threads()} threads) ==")
    analyze_batch(paths[:1], n_jobs=1)  # warm-up: imports, shipped model, caches
    print(f"  before: {load()}")
    clock = StageClock()
    result, wall, cpu = timed_batch(paths, 1, clock)
    n = len(result.particles)
    print(f"  {n:,} nanocrystals in {wall:.2f} s = {60 * n / wall:,.0f} per minute "
          f"({wall / len(paths):.3f} s per field; CPU {cpu / len(paths):.3f} s per field)")
    print(f"  {'stage':16s} {'wall s/field':>12s} {'CPU s/field':>12s} {'share':>6s}")
    for stage in STAGE_ORDER:
        w, c = clock.wall[stage] / len(paths), clock.cpu[stage] / len(paths)
        print(f"  {stage:16s} {w:12.3f} {c:12.3f} {w * len(paths) / wall:6.1%}")
    rest_w = (wall - sum(clock.wall.values())) / len(paths)
    rest_c = (cpu - sum(clock.cpu.values())) / len(paths)
    print(f"  {'other':16s} {rest_w:12.3f} {rest_c:12.3f} {rest_w * len(paths) / wall:6.1%}"
          "   (exclusions, tables, batch)")
    print(f"  after: {load()}")
    return n


def all_cores(paths, jobs: int) -> None:
    print(f"\n== 3. all cores: analyze_batch(n_jobs={jobs}) on {len(paths)} fields, pool warm ==")
    analyze_batch(paths[:jobs], n_jobs=jobs)  # workers started and the model loaded
    print(f"  before: {load()}")
    result, wall, _ = timed_batch(paths, jobs)
    n = len(result.particles)
    print(f"  {n:,} nanocrystals in {wall:.2f} s = {60 * n / wall:,.0f} per minute "
          f"({wall / len(paths):.3f} s per field; target >= 60,000 per minute)")
    print(f"  after: {load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fields", type=int, default=8, help="fields for the throughput runs")
    parser.add_argument("--jobs", type=int, default=None, help="processes (default all cores)")
    parser.add_argument("--batch-particles", type=int, default=7000,
                        help="kept particles in the full analysis (about)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="keep the fields and report.html here")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch threads in this process (default: torch's own, one per "
                             "core; workers always run one)")
    args = parser.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    jobs = args.jobs or default_jobs()
    print(f"machine: {os.cpu_count()} cores, {jobs} worker processes; {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.out or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        # ~1,120 of the 1,200 particles per field are kept (the others touch the border or
        # the scale bar); one extra field covers the batch whatever the exact count
        n_batch = math.ceil(args.batch_particles / (0.93 * PARTICLES_PER_FIELD))
        t = time.perf_counter()
        paths = simulate_fields(max(args.fields, n_batch), args.seed, folder)
        print(f"simulated {len(paths)} fields of {FIELD_SHAPE[0]}x{FIELD_SHAPE[1]} px, "
              f"{PARTICLES_PER_FIELD} particles each (hot-injection families, "
              f"{HOT_INJECTION.pixel_size_nm} nm/px, scale bar), in "
              f"{time.perf_counter() - t:.1f} s")
        full_analysis(paths[:n_batch], jobs, folder / "report")
        n = one_process(paths[:args.fields])
        print(f"  kept particles per field: {n / args.fields:,.0f} of {PARTICLES_PER_FIELD} "
              "simulated (border and scale-bar particles dropped)")
        all_cores(paths[:args.fields], jobs)


if __name__ == "__main__":
    main()

"""``tempipe report``: a dataset's full report (groups, classifier, figures) as HTML + ZIP.

The source is the output folder (or ``particles.parquet``) of ``tempipe analyze``, the
name of a dataset in the store (``tempipe datasets list``), micrograph files or folders
(analysed first), or ``--demo NAME``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

from tempipe.errors import TempipeError


def add_parser(sub) -> None:
    """Register the ``report`` sub-command on the ``tempipe`` parser's subparsers."""
    from tempipe.cli import DEMO_NAMES

    report = sub.add_parser("report", help="full report of one dataset: shape groups, "
                            "classifier, figures (report.html, report.zip)")
    report.add_argument("sources", nargs="*", help="an analyze output folder or its "
                        "particles.parquet, a stored dataset's name, or micrograph "
                        "files/folders to analyse")
    report.add_argument("--store", help="store file or folder (default $TEMPIPE_HOME or "
                        "~/.tempipe)")
    report.add_argument("--version", type=int, help="version of a stored dataset "
                        "(default the latest)")
    report.add_argument("--out", required=True, help="output folder")
    report.add_argument("--demo", choices=DEMO_NAMES,
                        help="report on a built-in demo batch")
    report.add_argument("--n-images", type=int, default=3, help="images in a demo batch")
    report.add_argument("--name", help="dataset name in the report (default: the source's)")
    scale = report.add_mutually_exclusive_group()
    scale.add_argument("--pixel-size-nm", type=float, help="pixel size in nm (overrides "
                       "the files) for micrographs analysed here")
    scale.add_argument("--scale-bar-nm", type=float, help="length in nm of the scale bar "
                       "drawn on micrographs analysed here")
    report.add_argument("--jobs", type=int, default=None, help="worker processes for "
                        "micrographs analysed here (default: every core)")
    report.add_argument("--seed", type=int, default=0, help="seed of clustering and classifier")
    report.add_argument("--no-zip", action="store_true", help="write report.html only")
    report.add_argument("--no-images", action="store_true",
                        help="figures in the ZIP as Plotly JSON instead of PNG (faster)")
    report.set_defaults(func=run)


def _from_table(source: Path):
    """Particles, images and failures of an analyze output (None if not one)."""
    from tempipe.compare import read_particle_table

    particles = read_particle_table(source)
    if particles is None:
        return None
    folder = source if source.is_dir() else source.parent
    images = failures = None
    summary_path = folder / "summary.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        images = pd.DataFrame(summary.get("images", []))
        failures = pd.DataFrame(summary.get("failures", []), columns=["image", "error"])
    return particles, images if images is not None and len(images) else None, failures, None


def _from_store(name: str, args):
    """Particles, images, failures and input files of a stored dataset."""
    from tempipe.store import Store

    stored = Store(args.store).dataset(name, args.version)
    records = stored.records
    inputs = None
    if "sha256" in records:
        inputs = records[["image", "sha256"]].assign(dataset=name)
    return stored.particles, stored.images, stored.failures, inputs


def _from_micrographs(paths: list[Path], args):
    from tempipe.cli import _expand
    from tempipe.pipeline import analyze_batch
    from tempipe.report import input_files

    files = _expand([str(p) for p in paths])
    result = analyze_batch(files, pixel_size_nm=args.pixel_size_nm,
                           scale_bar_nm=args.scale_bar_nm, n_jobs=args.jobs)
    for row in result.failures.itertuples():
        print(f"FAILED {row.image}: {row.error}", file=sys.stderr)
    readable = [f for f in files if f.is_file()]
    return result.particles, result.images, result.failures, input_files({"": readable})


def _load(args):
    """(name, particles, images, failures, inputs) of the command's source."""
    if args.demo:
        from tempipe.simulate import write_demo_batch

        paths = write_demo_batch(args.demo, Path(args.out) / "images", n_images=args.n_images)
        return (args.demo, *_from_micrographs(paths, args))
    if not args.sources:
        raise TempipeError("Give the output folder of `tempipe analyze` (or its "
                           "particles.parquet), micrographs to analyse, or --demo.")
    first = Path(args.sources[0])
    name = first.resolve().name.removesuffix(".parquet")
    if name == "particles":
        name = first.resolve().parent.name
    table = _from_table(first) if len(args.sources) == 1 else None
    if table is not None:
        return (name, *table)
    if len(args.sources) == 1 and not first.exists():
        return (args.sources[0], *_from_store(args.sources[0], args))
    return (name, *_from_micrographs([Path(s) for s in args.sources], args))


def run(args: argparse.Namespace) -> int:
    """Analyse (if needed), group, classify and write report.html (+ report.zip)."""
    from tempipe.dataset_report import dataset_report, write_dataset_report
    from tempipe.shape_model import DEFAULT_WEIGHTS

    start = time.perf_counter()
    name, particles, images, failures, inputs = _load(args)
    name = args.name or name
    if particles.empty:
        raise TempipeError(f"{name}: no particles to report on (see the failures above).")
    card_path = DEFAULT_WEIGHTS.with_suffix(".json")
    card = json.loads(card_path.read_text()) if card_path.is_file() else None
    if inputs is not None:
        inputs = inputs.assign(dataset=name)
    report = dataset_report(particles, images, failures, name=name, rng=args.seed,
                            inputs=inputs, model_card=card)
    written = write_dataset_report(report, args.out, bundle=not args.no_zip,
                                   images=not args.no_images)
    print(f"{name}: {len(particles)} particles from {particles['image'].nunique()} image(s)")
    if report.groups is not None:
        g = report.groups
        line = f"{g.k} shape groups ({g.algorithm} on {g.feature_set})"
        if report.classifier is not None:
            line += f"; classifier test accuracy {report.classifier.test_accuracy:.1%}"
        print(line)
    for note in report.notes:
        print("note:", note)
    print(f"wrote {', '.join(str(p) for p in written)} in {time.perf_counter() - start:.1f} s")
    return 0

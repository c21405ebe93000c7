"""``tempipe datasets list|show|export|delete`` and ``tempipe analyze``'s store options.

``tempipe analyze`` stores its results in the dataset store by default (one transaction
per image, so an interrupted run resumes where it stopped when run again):
``--dataset NAME`` (default: the folder's name), ``--store PATH`` (default
``$TEMPIPE_HOME/tempipe.duckdb`` or ``~/.tempipe/tempipe.duckdb``), ``--no-store``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from tempipe.errors import TempipeError

_STORE_HELP = ("DuckDB file of the dataset store (default: $TEMPIPE_HOME/tempipe.duckdb, "
               "else ~/.tempipe/tempipe.duckdb)")


def add_analyze_options(analyze: argparse.ArgumentParser) -> None:
    """The store and scaling options of ``tempipe analyze``."""
    analyze.add_argument("--dataset", help="name of the dataset in the store (default: the "
                         "folder's name, or the demo's); the same name and parameters "
                         "resume it, other parameters make a new version")
    analyze.add_argument("--store", help=_STORE_HELP)
    analyze.add_argument("--no-store", action="store_true",
                         help="do not store the results (then --out is needed)")
    analyze.add_argument("--scheduler", help="address of a Dask scheduler to run on "
                         "(default: $TEMPIPE_SCHEDULER, else local processes)")


def add_parser(sub) -> None:
    """``tempipe datasets ...`` subcommands."""
    datasets = sub.add_parser("datasets", help="list, show, export or delete stored datasets")
    actions = datasets.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="every stored dataset version")
    show = actions.add_parser("show", help="one dataset: parameters, images, failures")
    export = actions.add_parser("export", help="write particles.csv/.parquet, summary.json")
    delete = actions.add_parser("delete", help="delete a dataset (every version, or one)")
    for action in (listing, show, export, delete):
        action.add_argument("--store", help=_STORE_HELP)
    for action in (show, export, delete):
        action.add_argument("name", help="dataset name")
        action.add_argument("--version", type=int,
                            help="version (default: " + ("every version)" if action is delete
                                                         else "the newest)"))
    export.add_argument("--out", required=True, help="output folder")
    listing.set_defaults(func=_cmd_list)
    show.set_defaults(func=_cmd_show)
    export.set_defaults(func=_cmd_export)
    delete.set_defaults(func=_cmd_delete)


def _store(args):
    from tempipe.store import Store
    return Store(args.store)


def default_dataset_name(args: argparse.Namespace, paths: list) -> str:
    """``--dataset``, else the demo's name, else the (first) folder's name."""
    if args.dataset:
        return args.dataset
    if args.demo:
        return args.demo
    first = Path(args.paths[0]) if args.paths else Path(paths[0])
    folder = first if first.is_dir() else first.parent
    return folder.resolve().name or "dataset"


def analyze_into_store(args: argparse.Namespace, paths: list, out: Path | None) -> int:
    """``tempipe analyze`` with the store: analyse, store per image, export to ``out``."""
    from tempipe.batch import store_batch
    from tempipe.cli import _print_summary

    store = _store(args)
    name = default_dataset_name(args, paths)
    with tqdm(total=len(paths), unit="image", desc="analysing", disable=args.quiet) as bar:
        def progress(done, total, image):
            bar.set_postfix_str(image)
            bar.update(done - bar.n)

        try:
            run = store_batch(paths, store, name, pixel_size_nm=args.pixel_size_nm,
                              scale_bar_nm=args.scale_bar_nm, progress=progress,
                              n_jobs=args.jobs, scheduler=args.scheduler)
        except KeyboardInterrupt:
            print(f"\ninterrupted: the images analysed so far are stored in {store.path}; "
                  "run the same command again to resume.", file=sys.stderr)
            return 130
    ref = run.dataset
    print(f"dataset {ref.name!r} v{ref.version} in {store.path}: {run.n_analysed} image(s) "
          f"analysed, {run.n_skipped} already stored, {run.n_failed} failed")
    stored_failures = set()
    if out is not None:
        summary = store.export(ref.name, out, version=ref.version)
        _print_summary(summary, out)
        stored_failures = {f["image"] for f in summary["failures"]}
    for row in run.failures.itertuples():
        if row.image not in stored_failures:
            print(f"FAILED {row.image}: {row.error}", file=sys.stderr)
    return 0 if len(run.failures) < len(paths) else 1


def _cmd_list(args: argparse.Namespace) -> int:
    store = _store(args)
    table = store.list_datasets()
    if table.empty:
        print(f"no datasets in {store.path}")
        return 0
    table["created"] = table["created"].dt.strftime("%Y-%m-%d %H:%M")
    columns = ["name", "version", "status", "images", "failed", "particles", "created",
               "model_version"]
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        print(table[columns].to_string(index=False))
    print(f"({len(table)} dataset version(s) in {store.path})")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from tempipe.summary import size_line, summarize

    data = _store(args).dataset(args.name, args.version)
    ref = data.ref
    print(f"{ref.name} v{ref.version} ({ref.status}), created {ref.created} UTC")
    params = dict(ref.parameters)
    segment = params.pop("segment", None)
    for key, value in params.items():
        print(f"  {key}: {value}")
    if segment:
        print("  segment: " + ", ".join(f"{k}={v}" for k, v in segment.items()))
    print(size_line(summarize(data.particles, data.images, data.failures)["overall"]))
    columns = ["image", "n_particles", "n_segmented", "pixel_size_nm", "scale_source"]
    if len(data.images):
        print(data.images[columns].to_string(index=False))
    for row in data.failures.itertuples():
        print(f"FAILED {row.image}: {row.error}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from tempipe.cli import _print_summary

    out = Path(args.out)
    summary = _store(args).export(args.name, out, version=args.version)
    _print_summary(summary, out)
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    store = _store(args)
    for ref in store.delete(args.name, args.version):
        print(f"deleted {ref.name} v{ref.version} from {store.path}")
    return 0


def check_out(args: argparse.Namespace) -> Path | None:
    """``--out`` as a path; an error when the chosen mode needs it and it is missing."""
    if args.out:
        return Path(args.out)
    if args.demo:
        raise TempipeError("--demo needs --out DIR (the demo images are written there).")
    if args.no_store:
        raise TempipeError("--no-store needs --out DIR for the result files.")
    return None

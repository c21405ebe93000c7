"""The ``tempipe`` command line.

``tempipe analyze PATH... [--out DIR] [--pixel-size-nm X | --scale-bar-nm V]``
    Analyse micrographs (files or folders) on every core (``--jobs N``; ``--scheduler
    ADDRESS`` or ``$TEMPIPE_SCHEDULER``: on a Dask cluster), store each image's results in
    the dataset store (``--dataset NAME``, default the folder's name; ``--store PATH``;
    ``--no-store``; run again to resume an interrupted batch) and write
    ``particles.csv``, ``particles.parquet`` and ``summary.json`` into DIR.
``tempipe analyze --demo hot-injection --out DIR``
    Write the built-in demo batch into ``DIR/images`` and analyse it.
``tempipe simulate --demo larp --out DIR``
    Only write a demo batch (calibrated TIFFs and their truth tables).
``tempipe train [--out models/shape_cnn.pt]``
    Train the shape CNN from scratch on simulated particles; write weights, card, diagnostics.
``tempipe report SOURCE --out DIR`` (or ``--demo NAME``)
    One dataset's report: shape groups, classifier, figures (``report.html``, ``report.zip``);
    SOURCE is an ``analyze`` output folder, its ``particles.parquet`` or micrographs.
``tempipe compare A B --out DIR`` (or ``--demo``)
    Two datasets side by side: the groups of A label B; tests, fractions, one HTML page.
``tempipe datasets list | show NAME | export NAME --out DIR | delete NAME [--version N]``
    The dataset store (:mod:`tempipe.store`): what is stored, one dataset's parameters and
    images, its particle tables and summary, deleting a dataset or one version.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from tempipe.errors import TempipeError
from tempipe.io import SUPPORTED_SUFFIXES

#: Names of the built-in demo batches, the keys of ``tempipe.demo.DEMO_BATCHES`` (a test keeps
#: them equal); spelled here so the parser does not import the simulator.
DEMO_NAMES = ("hot-injection", "larp")


def _expand(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
            if not found:
                raise TempipeError(f"Folder {path} holds no micrographs "
                                   f"({', '.join(sorted(SUPPORTED_SUFFIXES))}).")
            files.extend(found)
        else:
            files.append(path)  # a missing file becomes a listed failure, not a crash
    return files


def _write_outputs(result, out: Path) -> dict:
    from tempipe.summary import summarize

    out.mkdir(parents=True, exist_ok=True)
    result.particles.to_csv(out / "particles.csv", index=False)
    result.particles.to_parquet(out / "particles.parquet", index=False)
    summary = summarize(result.particles, result.images, result.failures)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False))
    return summary


def _print_summary(summary: dict, out: Path) -> None:
    from tempipe.summary import size_line

    overall = summary["overall"]
    print(size_line(overall))
    if "note" in overall:
        print("note:", overall["note"])
    for failure in summary["failures"]:
        print(f"FAILED {failure['image']}: {failure['error']}", file=sys.stderr)
    print(f"wrote {out / 'particles.csv'}, {out / 'particles.parquet'}, {out / 'summary.json'}")


def _cmd_analyze(args: argparse.Namespace) -> int:
    from tempipe._cli_datasets import analyze_into_store, check_out
    from tempipe.pipeline import analyze_batch

    out = check_out(args)
    if args.demo:
        from tempipe.simulate import write_demo_batch

        paths = write_demo_batch(args.demo, out / "images", n_images=args.n_images)
    elif args.paths:
        paths = _expand(args.paths)
    else:
        raise TempipeError("Give micrograph files or folders to analyse, or --demo NAME.")
    if not args.no_store:
        return analyze_into_store(args, paths, out)
    with tqdm(total=len(paths), unit="image", desc="analysing", disable=args.quiet) as bar:
        def progress(done, total, name):
            bar.set_postfix_str(name)
            bar.update(1)

        result = analyze_batch(paths, pixel_size_nm=args.pixel_size_nm,
                               scale_bar_nm=args.scale_bar_nm, progress=progress,
                               n_jobs=args.jobs, scheduler=args.scheduler)
    summary = _write_outputs(result, out)
    _print_summary(summary, out)
    return 0 if len(result.failures) < len(paths) else 1


def _cmd_simulate(args: argparse.Namespace) -> int:
    from tempipe.simulate import write_demo_batch

    paths = write_demo_batch(args.demo, Path(args.out), n_images=args.n_images)
    print(f"wrote {len(paths)} micrograph(s) with truth tables into {args.out}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from tempipe.fit import TrainConfig, train_shape_model
    from tempipe.model_diagnostics import write_diagnostics
    from tempipe.shape_model import DEFAULT_WEIGHTS, ShapeNetConfig

    config = TrainConfig(n_samples=args.n_samples, seed=args.seed, n_jobs=args.jobs,
                         max_epochs=args.epochs or TrainConfig.max_epochs,
                         architecture=ShapeNetConfig(**({} if args.context_px is None else
                                                        {"context_px": args.context_px})))
    bars: dict[str, tqdm] = {}

    def progress(stage, done, total, info):
        if stage not in bars:
            bars[stage] = tqdm(total=total, unit="mosaic" if stage == "data" else "epoch",
                               desc="rendering training set" if stage == "data" else "training",
                               disable=args.quiet)
        bars[stage].update(1)
        if info:
            bars[stage].set_postfix_str(f"val loss {info['val_loss']:.3f}, "
                                        f"d RMSE {info['val_rmse']['d']:.3f}")

    model, (test_crops, test_params) = train_shape_model(config, progress=progress)
    for bar in bars.values():
        bar.close()
    path = model.save(Path(args.out or DEFAULT_WEIGHTS))
    write_diagnostics(model.card["history"], test_params, model.predict(test_crops), path.parent,
                      stem=path.stem)
    test = model.card["test"]
    print(f"wrote {path} and {path.with_suffix('.json')} ({model.card['training_time_s']:.0f} s, "
          f"{model.card['epochs_run']} epochs)")
    print(f"test: round(d) accuracy {test['round_d_accuracy']:.3f}, RMSE log p "
          f"{test['rmse_log_p']:.3f}, RMSE L_ratio {test['rmse_l_ratio']:.3f}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from tempipe.compare import compare_datasets, read_particle_table, write_comparison
    from tempipe.pipeline import analyze_batch
    from tempipe.shape_model import DEFAULT_WEIGHTS

    out = Path(args.out)
    if args.demo:
        from tempipe.simulate import DEMO_BATCHES, write_demo_batch

        names = tuple(DEMO_BATCHES)
        sources = [write_demo_batch(n, out / "images" / n, n_images=args.n_images)
                   for n in names]
    elif len(args.datasets) == 2:
        names = tuple(Path(d).resolve().name.removesuffix(".parquet") for d in args.datasets)
        names = names if names[0] != names[1] else ("A", "B")
        sources = args.datasets
    else:
        raise TempipeError("Give two datasets to compare (folders of micrographs, or the "
                           "particles.parquet of `tempipe analyze`), or --demo.")
    tables, files = [], {}
    for name, source in zip(names, sources):
        table = None if args.demo else read_particle_table(source)
        if table is None:
            paths = source if args.demo else _expand([source])
            result = analyze_batch(paths, pixel_size_nm=args.pixel_size_nm, n_jobs=args.jobs)
            for row in result.failures.itertuples():
                print(f"FAILED {row.image}: {row.error}", file=sys.stderr)
            table, files[name] = result.particles, [Path(p) for p in paths]
        n_images = table["image"].nunique() if len(table) else 0
        print(f"{name}: {len(table)} particles from {n_images} image(s)")
        tables.append(table)
    comparison = compare_datasets(*tables, names=names, rng=args.seed)
    card_path = DEFAULT_WEIGHTS.with_suffix(".json")
    card = json.loads(card_path.read_text()) if card_path.is_file() and "p" in tables[0] else None
    written = write_comparison(comparison, out, files=files or None, model_card=card)
    groups = comparison.groups
    print(f"{names[0]}: {groups.k} shape groups ({groups.algorithm} on {groups.feature_set}); "
          f"classifier test accuracy {comparison.classifier.test_accuracy:.1%}")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tempipe`` command."""
    from tempipe._cli_datasets import add_analyze_options
    from tempipe._cli_datasets import add_parser as add_datasets_parser
    from tempipe._cli_report import add_parser as add_report_parser

    parser = argparse.ArgumentParser(prog="tempipe", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    analyze = sub.add_parser("analyze", help="analyse micrographs into a particle table")
    analyze.add_argument("paths", nargs="*", help="micrograph files or folders")
    analyze.add_argument("--out", help="output folder (needed with --demo or --no-store)")
    scale = analyze.add_mutually_exclusive_group()
    scale.add_argument("--pixel-size-nm", type=float, help="pixel size in nm (overrides the file)")
    scale.add_argument("--scale-bar-nm", type=float,
                       help="length in nm of the scale bar drawn on the images")
    analyze.add_argument("--demo", choices=DEMO_NAMES, help="analyse a built-in demo batch")
    analyze.add_argument("--n-images", type=int, default=3, help="images in a demo batch")
    analyze.add_argument("--jobs", type=int, default=None,
                         help="worker processes (default: every core)")
    analyze.add_argument("--quiet", action="store_true", help="no progress bar")
    add_analyze_options(analyze)
    analyze.set_defaults(func=_cmd_analyze)
    simulate = sub.add_parser("simulate", help="write a simulated demo batch with its truth")
    simulate.add_argument("--demo", choices=DEMO_NAMES, required=True)
    simulate.add_argument("--out", required=True)
    simulate.add_argument("--n-images", type=int, default=3)
    simulate.set_defaults(func=_cmd_simulate)
    train = sub.add_parser("train", help="train the shape CNN on simulated particles")
    train.add_argument("--out", help="weights file (.pt; default models/shape_cnn.pt, the "
                       "shipped model)")
    train.add_argument("--n-samples", type=int, default=65_000)
    train.add_argument("--epochs", type=int, help="maximum epochs (early stopping; default "
                       "TrainConfig's)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--context-px", type=int, help="background ring (image pixels) kept "
                       "around each mask in the crops (default ShapeNetConfig's)")
    train.add_argument("--jobs", type=int, default=2, help="processes rendering the training set")
    train.add_argument("--quiet", action="store_true")
    train.set_defaults(func=_cmd_train)
    compare = sub.add_parser("compare", help="compare two datasets: groups of A applied to B")
    compare.add_argument("datasets", nargs="*", help="two folders of micrographs, analyze "
                         "output folders or particles.parquet files (A, then B)")
    compare.add_argument("--out", required=True, help="output folder")
    compare.add_argument("--demo", action="store_true",
                         help="compare the two built-in demo batches (hot-injection, larp)")
    compare.add_argument("--n-images", type=int, default=3, help="images per demo batch")
    compare.add_argument("--pixel-size-nm", type=float, help="pixel size in nm (overrides "
                         "the files) for micrographs analysed here")
    compare.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    compare.add_argument("--seed", type=int, default=0, help="seed of clustering and classifier")
    compare.set_defaults(func=_cmd_compare)
    add_report_parser(sub)
    add_datasets_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tempipe`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TempipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

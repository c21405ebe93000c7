"""Shape-CNN benchmark: accuracy through the real segmentation + crop path, and speed.

Held-out particles (seeds never used in training) are drawn from the training
distributions (d = 1..6, p log-spread over 0.5..20 in four bands, L_ratio 1..3), rendered as
whole 1024² micrographs by tempipe.simulate, segmented by tempipe.segment, matched to the
truth at IoU >= 0.5, cut with crop_particles exactly as the pipeline does, and predicted by
the shipped model. Particles cut by the border are left out (the pipeline drops them).

Prints round(d) accuracy, RMSE(L_ratio) overall, per d and without d = 1, RMSE(log p)
overall and per d, against the raw truth and against the canonical p the network learns
(near-square twins folded, tempipe.training.canonical_parameters), the same figures for crops
cut from the exact truth labels (segmentation's share of the error), mean resim_jaccard,
the mean spreads, the median p per shape group of the demo batches (sharp vs rounded
cuboids), and inference speed in crops per second (2 threads).

Usage: .venv/bin/python bench/bench_shape_cnn.py [--fields 12] [--demo-images 2]
       [--model models/shape_cnn.pt] [--json figures.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch

from tempipe.crops import crop_particles
from tempipe.demo import demo_batch
from tempipe.metrics import match_instances
from tempipe.pipeline import add_shape_parameters
from tempipe.segment import segment
from tempipe.shape_model import ShapeModel
from tempipe.simulate import ShapeFamily, simulate_micrograph
from tempipe.training import canonical_parameters

P_BANDS = ((0.5, 1.0), (1.0, 2.5), (2.5, 6.0), (6.0, 20.0))
FAMILIES = tuple(ShapeFamily(f"p{lo}-{hi}", p=(lo, hi), d=(1, 2, 3, 4, 5, 6), l_ratio=(1.0, 3.0),
                             size_mean_px=40.0, size_rel_sd=0.25, fraction=1.0)
                 for lo, hi in P_BANDS)


def _matched(sim, model):
    """Segment a simulated field; crops of matched, non-border particles (segmented, exact)."""
    pred = segment(sim.image)
    truth = sim.particles.set_index("label")
    pairs = [(t, p) for t, p in match_instances(sim.labels, pred)["pairs"]
             if not truth.loc[t, "touches_border"]]
    if not pairs:
        return None
    t_ids, p_ids = np.array(pairs).T
    table = pd.DataFrame({"label": p_ids})
    crops = crop_particles(sim.image, pred, model.input_size, label_ids=p_ids,
                           context=model.context_px)
    table = add_shape_parameters(table, crops, pred, model)
    exact = model.predict(crop_particles(sim.image, sim.labels, model.input_size,
                                         label_ids=t_ids, context=model.context_px))
    for col in ("p", "d_class", "l_ratio"):
        table[f"exact_{col}"] = exact[col].to_numpy()
    for col in ("p", "d", "l_ratio", "major_axis_length_px", "family"):
        table[f"true_{col}"] = truth.loc[t_ids, col].to_numpy()
    table["canonical_p"] = canonical_parameters(
        pd.DataFrame({"p": table["true_p"], "l_ratio": table["true_l_ratio"]}))["p"].to_numpy()
    return table


def held_out(model: ShapeModel, n_fields: int, seed: int) -> pd.DataFrame:
    rows = []
    for i in range(n_fields):
        sim = simulate_micrograph((1024, 1024), n_particles=120, families=FAMILIES,
                                  rng=seed + i, touching_fraction=0.2)
        table = _matched(sim, model)
        if table is not None:
            rows.append(table)
    return pd.concat(rows, ignore_index=True)


def demo_groups(model: ShapeModel, n_images: int) -> pd.DataFrame:
    """Median true and predicted p, l_ratio per shape group of the demo batches."""
    rows = []
    for name in ("hot-injection", "larp"):
        for sim in demo_batch(name, n_images=n_images, rng=0):
            table = _matched(sim, model)
            if table is not None:
                rows.append(table.assign(batch=name))
    t = pd.concat(rows, ignore_index=True)
    return t.groupby(["batch", "true_family"]).agg(
        n=("p", "size"), true_p=("true_p", "median"), p=("p", "median"),
        true_l_ratio=("true_l_ratio", "median"), l_ratio=("l_ratio", "median")).round(2)


def speed(model: ShapeModel, n: int = 10_000) -> float:
    crops = np.random.default_rng(0).random((n, model.input_size, model.input_size),
                                            dtype=np.float32)
    model.predict(crops[:512])
    start = time.perf_counter()
    model.predict(crops)
    return n / (time.perf_counter() - start)


def _rmse(err) -> float:
    return float(np.sqrt(np.mean(np.asarray(err, float) ** 2)))


def _figures(t: pd.DataFrame, prefix: str) -> dict:
    l_err = t[f"{prefix}l_ratio"] - t["true_l_ratio"]
    log_p = np.log(t[f"{prefix}p"])
    d1 = t["true_d"] == 1
    return {"n": int(len(t)),
            "round_d_accuracy": float(np.mean(t[f"{prefix}d_class"] == t["true_d"])),
            "rmse_l_ratio": _rmse(l_err), "rmse_l_ratio_d_ge_2": _rmse(l_err[~d1]),
            "rmse_l_ratio_d_1": _rmse(l_err[d1]),
            "rmse_log_p": _rmse(log_p - np.log(t["true_p"])),
            "rmse_log_p_canonical": _rmse(log_p - np.log(t["canonical_p"]))}


def _report(fig: dict) -> None:
    print(f"  round(d) accuracy          {fig['round_d_accuracy']:.4f}")
    print(f"  RMSE(L_ratio)              {fig['rmse_l_ratio']:.4f}   (d >= 2: "
          f"{fig['rmse_l_ratio_d_ge_2']:.4f}, d = 1: {fig['rmse_l_ratio_d_1']:.4f})")
    print(f"  RMSE(log p)                {fig['rmse_log_p']:.4f}   (canonical p: "
          f"{fig['rmse_log_p_canonical']:.4f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fields", type=int, default=12)
    parser.add_argument("--seed", type=int, default=900_000)
    parser.add_argument("--demo-images", type=int, default=2)
    parser.add_argument("--model", default=None)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = ShapeModel.load(args.model)
    t = held_out(model, args.fields, args.seed)
    figures = {"fields": args.fields, "seed": args.seed, "segmented": _figures(t, ""),
               "exact_masks": _figures(t, "exact_")}
    print(f"held-out particles through segmentation + crops: {len(t)} in {args.fields} fields")
    _report(figures["segmented"])
    per_d = {}
    for d, group in t.groupby("true_d"):
        per_d[str(int(d))] = {
            "n": int(len(group)), "round_d_accuracy": float(np.mean(group["d_class"] == d)),
            "rmse_log_p": _rmse(np.log(group["p"]) - np.log(group["true_p"])),
            "rmse_l_ratio": _rmse(group["l_ratio"] - group["true_l_ratio"])}
        print(f"    d = {int(d)}: RMSE(log p) {per_d[str(int(d))]['rmse_log_p']:.4f}, RMSE(L_ratio) "
              f"{per_d[str(int(d))]['rmse_l_ratio']:.4f}, round(d) acc "
              f"{per_d[str(int(d))]['round_d_accuracy']:.3f} (n = {len(group)})")
    figures["per_d"] = per_d
    figures["mean_resim_jaccard"] = float(t["resim_jaccard"].mean())
    print(f"  mean resim_jaccard         {figures['mean_resim_jaccard']:.4f}")
    print(f"  mean p_std / d_std / l_std {t['p_std'].mean():.3f} / {t['d_std'].mean():.3f} / "
          f"{t['l_ratio_std'].mean():.3f}")
    l_err = (t["l_ratio"] - t["true_l_ratio"]).abs()
    high = t["l_ratio_std"] > t["l_ratio_std"].median()
    print(f"  |L error| where l_ratio_std above / below its median: {l_err[high].mean():.3f} / "
          f"{l_err[~high].mean():.3f}")
    print("same particles cut from the exact truth labels:")
    _report(figures["exact_masks"])
    if args.demo_images:
        groups = demo_groups(model, args.demo_images)
        print(f"demo batches ({args.demo_images} images each), median per shape group:")
        print(groups.to_string())
        figures["demo_median_p"] = {f"{b}/{f}": float(v) for (b, f), v in groups["p"].items()}
    figures["crops_per_s"] = speed(model)
    print(f"inference: {figures['crops_per_s']:,.0f} crops/s (2 threads)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()

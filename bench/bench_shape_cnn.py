"""Shape-CNN benchmark: accuracy through the real segmentation + crop path, and speed.

Held-out particles (seeds never used in training) are drawn from the training
distributions (d = 1..6, p log-spread over 0.5..20 in four bands, L_ratio 1..3), rendered as
whole 1024² micrographs by tempipe.simulate, segmented by tempipe.segment, matched to the
truth at IoU >= 0.5, cut with crop_particles exactly as the pipeline does, and predicted by
the shipped model. Particles cut by the border are left out (the pipeline drops them).

Prints round(d) accuracy, RMSE(L_ratio), RMSE(log p) overall and per d, mean resim_jaccard,
and inference speed in crops per second (2 threads, batches of 128).

Usage: .venv/bin/python bench/bench_shape_cnn.py [--fields 12] [--model models/shape_cnn.pt]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from tempipe.crops import crop_particles
from tempipe.metrics import match_instances
from tempipe.pipeline import add_shape_parameters
from tempipe.segment import segment
from tempipe.shape_model import ShapeModel
from tempipe.simulate import ShapeFamily, simulate_micrograph

P_BANDS = ((0.5, 1.0), (1.0, 2.5), (2.5, 6.0), (6.0, 20.0))
FAMILIES = tuple(ShapeFamily(f"p{lo}-{hi}", p=(lo, hi), d=(1, 2, 3, 4, 5, 6), l_ratio=(1.0, 3.0),
                             size_mean_px=40.0, size_rel_sd=0.25, fraction=1.0)
                 for lo, hi in P_BANDS)


def held_out(model: ShapeModel, n_fields: int, seed: int) -> pd.DataFrame:
    rows = []
    for i in range(n_fields):
        sim = simulate_micrograph((1024, 1024), n_particles=120, families=FAMILIES,
                                  rng=seed + i, touching_fraction=0.2)
        pred = segment(sim.image)
        m = match_instances(sim.labels, pred)
        truth = sim.particles.set_index("label")
        pairs = [(t, p) for t, p in m["pairs"] if not truth.loc[t, "touches_border"]]
        if not pairs:
            continue
        t_ids, p_ids = np.array(pairs).T
        table = pd.DataFrame({"label": p_ids})
        crops = crop_particles(sim.image, pred, model.input_size, label_ids=p_ids)
        table = add_shape_parameters(table, crops, pred, model)
        for col in ("p", "d", "l_ratio"):
            table[f"true_{col}"] = truth.loc[t_ids, col].to_numpy()
        rows.append(table)
    return pd.concat(rows, ignore_index=True)


def speed(model: ShapeModel, n: int = 10_000) -> float:
    crops = np.random.default_rng(0).random((n, model.input_size, model.input_size),
                                            dtype=np.float32)
    model.predict(crops[:512])
    start = time.perf_counter()
    model.predict(crops)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fields", type=int, default=12)
    parser.add_argument("--seed", type=int, default=900_000)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = ShapeModel.load(args.model)
    t = held_out(model, args.fields, args.seed)
    log_err = np.log(t["p"]) - np.log(t["true_p"])
    print(f"held-out particles through segmentation + crops: {len(t)} in {args.fields} fields")
    print(f"  round(d) accuracy          {np.mean(t['d_class'] == t['true_d']):.4f}")
    print(f"  RMSE(L_ratio)              {np.sqrt(np.mean((t['l_ratio'] - t['true_l_ratio']) ** 2)):.4f}")
    print(f"  RMSE(log p)                {np.sqrt(np.mean(log_err ** 2)):.4f}")
    for d, group in t.groupby("true_d"):
        err = np.log(group["p"]) - np.log(group["true_p"])
        print(f"    d = {int(d)}: RMSE(log p) {np.sqrt(np.mean(err ** 2)):.4f}, "
              f"round(d) acc {np.mean(group['d_class'] == d):.3f} (n = {len(group)})")
    print(f"  mean resim_jaccard         {t['resim_jaccard'].mean():.4f}")
    print(f"  mean p_std / d_std / l_std {t['p_std'].mean():.3f} / {t['d_std'].mean():.3f} / "
          f"{t['l_ratio_std'].mean():.3f}")
    print(f"inference: {speed(model):,.0f} crops/s (2 threads, batch 128)")


if __name__ == "__main__":
    main()

"""Training-set rendering: time, and whether the shipped model sees it as it saw its own.

Prints the wall time of ``make_training_set`` (default: the 65,000-crop default set on both
cores) and, on a smaller set, the shipped model's errors on crops it was not trained on
(RMSE of L_ratio and log p, round(d) accuracy over the canonical labels). Compare the error
figures between renderer versions: a renderer change that the shipped model does not notice
leaves them within their sampling noise (given as a bootstrap standard error).

Usage: python bench/bench_training_set.py [--n 65000] [--jobs 2] [--check 11520] [--seed 7]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from tempipe.shape_model import ShapeModel
from tempipe.training import canonical_parameters, make_training_set


def model_errors(n: int, seed: int, jobs: int) -> dict[str, tuple[float, float]]:
    """The shipped model's errors on ``n`` fresh training-set crops, with bootstrap s.e."""
    model = ShapeModel.load()
    crops, params = make_training_set(n, seed, size=model.input_size,
                                      context=model.context_px, n_jobs=jobs)
    truth = canonical_parameters(params)
    pred = model.predict(crops)
    sq_l = (pred["l_ratio"].to_numpy() - truth["l_ratio"].to_numpy()) ** 2
    sq_p = (np.log(pred["p"].to_numpy()) - np.log(truth["p"].to_numpy())) ** 2
    hit_d = (np.round(pred["d"].to_numpy()) == truth["d"].to_numpy()).astype(float)
    rng = np.random.default_rng(0)
    boot = rng.integers(0, n, size=(200, n))
    out = {}
    for name, values, root in (("rmse_l_ratio", sq_l, True), ("rmse_log_p", sq_p, True),
                               ("round_d_accuracy", hit_d, False)):
        stat = (lambda v: np.sqrt(v.mean())) if root else (lambda v: v.mean())
        out[name] = (float(stat(values)), float(np.std([stat(values[b]) for b in boot])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=65_000, help="crops to time")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--check", type=int, default=11_520,
                        help="crops for the shipped model's errors (0 = skip)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load before: {os.getloadavg()[0]:.2f}")
    if args.n:
        start = time.perf_counter()
        crops, _ = make_training_set(args.n, args.seed, context=8, n_jobs=args.jobs)
        print(f"make_training_set({args.n}, context=8, n_jobs={args.jobs}): "
              f"{time.perf_counter() - start:.1f} s ({crops.nbytes / 2**20:.0f} MiB), "
              f"load after {os.getloadavg()[0]:.2f}")
    if args.check:
        for name, (value, se) in model_errors(args.check, args.seed + 1, args.jobs).items():
            print(f"shipped model on {args.check} fresh crops: {name} {value:.4f} ± {se:.4f}")


if __name__ == "__main__":
    main()

"""How well does a particle's silhouette alone determine L_ratio? (a floor for any estimator)

Eq. 1 is translation-blind in a micrograph: the polar origin is not visible. For d >= 2 the
origin is the shape's centre of symmetry, so the silhouette pins L_ratio down; for d = 1 it
is not, and different (p, L_ratio) draw nearly the same outline (a (p 2, L 2.9) egg and a
(p 7.1, L 1.0) rounded oval). This script measures that ambiguity without any network:

- draws ``--n`` shapes of one ``d`` from the benchmark's prior (p log-uniform 0.5..20,
  L_ratio uniform 1..3), renders each at the same area (radius ``--radius-px`` of the
  equal-area disc, 3x3 supersampled), centroid on the grid centre, axis along x;
- renders a grid of candidate (p, L_ratio) of the same d the same way (and mirrored);
- counts a candidate as indistinguishable when its IoU with the true silhouette is at least
  a threshold (0.97 at 20 px is about a third of a pixel of outline);
- reports the RMSE of the best any estimator can do under that ambiguity: the mean L_ratio
  of the indistinguishable candidates (the posterior mean under a flat prior) minus truth.

Run: ``python bench/bench_l_ratio_floor.py [--d 1 2] [--n 200] [--radius-px 20]``.
"""

from __future__ import annotations

import argparse

import numpy as np

from tempipe._render import radius_unchecked
from tempipe.resim import _unit_shape_moments

THRESHOLDS = (0.95, 0.97, 0.98)


def silhouettes(p, l_ratio, d: int, radius_px: float, mirror: bool = False) -> np.ndarray:
    """(n, G*G) float32 masks of equal area, centroid on the grid centre, phi = 0."""
    p, l_ratio = np.asarray(p, float), np.asarray(l_ratio, float)
    size = int(4 * radius_px + 16)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2.0
    offsets = (np.arange(3) + 0.5) / 3 - 0.5
    area, cx, cy = _unit_shape_moments(p, d, l_ratio)
    scale = np.sqrt(np.pi * radius_px ** 2 / area)
    out = np.zeros((len(p), size * size), np.float32)
    for i in range(len(p)):
        cover = np.zeros((size, size), np.float32)
        for oy in offsets:
            for ox in offsets:
                x = (xx + ox) / scale[i] * (-1 if mirror else 1) + cx[i]
                y = (yy + oy) / scale[i] + cy[i]
                cover += np.hypot(x, y) <= radius_unchecked(np.arctan2(y, x), p[i], d,
                                                             l_ratio[i])
        out[i] = (cover >= 4.5).ravel()
    return out


def floor(d: int, n: int, radius_px: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    true_p = np.exp(rng.uniform(np.log(0.5), np.log(20.0), n))
    true_l = rng.uniform(1.0, 3.0, n)
    grid_p, grid_l = (a.ravel() for a in np.meshgrid(
        np.exp(np.linspace(np.log(0.5), np.log(20.0), 50)), np.linspace(1.0, 3.0, 41)))
    truth = silhouettes(true_p, true_l, d, radius_px)
    cand = np.concatenate([silhouettes(grid_p, grid_l, d, radius_px),
                           silhouettes(grid_p, grid_l, d, radius_px, mirror=True)])
    cand_l = np.concatenate([grid_l, grid_l])
    inter = truth @ cand.T
    iou = inter / (truth.sum(1)[:, None] + cand.sum(1)[None] - inter)
    out = {"best_grid_iou_median": float(np.median(iou.max(1)))}
    for thr in THRESHOLDS:
        ok = iou >= np.minimum(thr, iou.max(1))[:, None]
        mean_l = (ok * cand_l).sum(1) / ok.sum(1)
        out[thr] = float(np.sqrt(np.mean((mean_l - true_l) ** 2)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--d", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--radius-px", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for d in args.d:
        fig = floor(d, args.n, args.radius_px, args.seed)
        rmse = ", ".join(f"IoU >= {t}: {fig[t]:.3f}" for t in THRESHOLDS)
        print(f"d = {d}, radius {args.radius_px:g} px, {args.n} shapes: best-possible "
              f"RMSE(L_ratio) {rmse} (median best grid IoU {fig['best_grid_iou_median']:.4f})")


if __name__ == "__main__":
    main()

"""Benchmark size accuracy through the whole path when a scale bar is the only calibration.

Simulates fields of nanocrystals with a drawn scale bar (random pixel size 0.15-1.5 nm,
corner, colour, label box, text position, dark or bright particles), saves each as a PNG
(no calibration in the file) and runs :func:`tempipe.pipeline.analyze_micrograph` on the
loaded file in two ways:

- ``user``: the user gives the bar's length in nm (``scale_bar_nm``); the pixel size comes
  from the bar's length in pixels found by ``find_scale_bar``;
- ``ocr``: nothing given; the pixel size comes from the label Tesseract reads (fields whose
  label is not read get no size and count as "no scale").

For each field it compares the median equivalent diameter (nm) of the particles the
pipeline keeps with the truth's median over the particles it kept that match a true one
(IoU >= 0.5), and the population medians (kept vs. true particles not cut by the border).
Prints the share of fields within 2 % and the median |error|. The CNN is skipped (sizes do
not depend on it).

Run: ``python bench/bench_size_scalebar.py [--fields 40] [--side 1024] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from tempipe.io import load_micrograph, save_micrograph
from tempipe.metrics import match_instances
from tempipe.pipeline import analyze_micrograph
from tempipe.simulate import ScaleBarStyle, simulate_micrograph
from tempipe._draw_scalebar import SCALE_BAR_CORNERS, SCALE_BAR_TEXT_POSITIONS


def simulated_field(side: int, rng: np.random.Generator):
    """One field with a random scale bar, and the style it was drawn in."""
    style = ScaleBarStyle(corner=str(rng.choice(SCALE_BAR_CORNERS)),
                          color=str(rng.choice(["white", "black"])),
                          box=bool(rng.random() < 0.5),
                          text_position=str(rng.choice(SCALE_BAR_TEXT_POSITIONS)))
    pixel_size_nm = float(np.exp(rng.uniform(np.log(0.15), np.log(1.5))))
    n = int(150 * (side / 1024) ** 2)
    return simulate_micrograph((side, side), n_particles=n, pixel_size_nm=pixel_size_nm,
                               scale_bar=style, polarity=str(rng.choice(["dark", "bright"])),
                               rng=int(rng.integers(1 << 30))), style


def field_errors(sim, result) -> dict:
    """Relative errors of the median ED: matched particles and whole populations."""
    kept = result.particles
    out = {"pixel_size_error": np.nan, "matched_error": np.nan, "population_error": np.nan}
    if result.pixel_size_nm is None or kept.empty:
        return out
    out["pixel_size_error"] = result.pixel_size_nm / sim.pixel_size_nm - 1
    labels = np.where(np.isin(result.labels, kept["label"].to_numpy()), result.labels, 0)
    pairs = match_instances(sim.labels, labels)["pairs"]
    truth = sim.particles.set_index("label")["equivalent_diameter_nm"]
    measured = kept.set_index("label")["equivalent_diameter_nm"]
    if len(pairs):
        out["matched_error"] = (np.median(measured.loc[pairs[:, 1]].to_numpy())
                                / np.median(truth.loc[pairs[:, 0]].to_numpy()) - 1)
    whole = sim.particles.loc[~sim.particles["touches_border"], "equivalent_diameter_nm"]
    out["population_error"] = np.median(measured.to_numpy()) / np.median(whole.to_numpy()) - 1
    return out


def _report(name: str, errors: list[dict]) -> None:
    for key in ("pixel_size_error", "matched_error", "population_error"):
        values = np.array([e[key] for e in errors], dtype=float)
        scaled = values[np.isfinite(values)]
        if scaled.size == 0:
            print(f"  {name:5s} {key:17s}: no field got a scale")
            continue
        within = np.mean(np.abs(scaled) <= 0.02)
        print(f"  {name:5s} {key:17s}: {scaled.size}/{values.size} fields scaled; "
              f"within 2 %: {within:.1%}; median |error| {np.median(np.abs(scaled)):.2%}; "
              f"worst {np.max(np.abs(scaled)):.2%}")


def run(n_fields: int, side: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    errors = {"user": [], "ocr": []}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n_fields):
            sim, _ = simulated_field(side, rng)
            path = save_micrograph(Path(tmp) / f"field_{i:03d}.png", sim.image)
            micrograph = load_micrograph(path)
            assert micrograph.pixel_size_nm is None, "PNG must carry no calibration"
            for mode, bar_nm in (("user", sim.scale_bar.value_nm), ("ocr", None)):
                result = analyze_micrograph(micrograph, scale_bar_nm=bar_nm, shape_model=None)
                errors[mode].append(field_errors(sim, result))
    elapsed = time.perf_counter() - start
    print(f"{n_fields} simulated {side}² fields with a scale bar, saved as PNG without "
          f"calibration ({elapsed:.1f} s):")
    for mode in ("user", "ocr"):
        _report(mode, errors[mode])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fields", type=int, default=40)
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run(args.fields, args.side, args.seed)


if __name__ == "__main__":
    main()

"""Built-in demo batches imitating the paper's CsPbBr3 case study (Tables 1 and 2).

Two syntheses, each a few calibrated fields of ~300 particles with a drawn scale bar and
exact truth, so the demo tells the paper's story and doubles as an end-to-end check:
tempipe should recover these groups and their statistics. Sizes, sigma/mean and shares are
the paper's; the shapes follow its descriptions and make every group differ in shape from
the groups of similar size (eq. 1 parameters p, d, L):

- ``"hot-injection"`` (0.35 nm/px, 1024 x 1024): small rounded cuboids (mean major axis
  9.7 nm, sigma/mean 0.20, 50 %; p 2.5-3.5), large irregular particles (24.2 nm, 0.19,
  10 %; concave, notched: d = 4, p 1.2-1.45), larger sharp cuboids (13.9 nm, 0.14, 20 %;
  p 8-16) and platelets (12.8 nm, 0.27, 20 %; aspect ratio L 1.65-1.95).
- ``"larp"`` (0.30 nm/px, 1536 x 1536): six groups of 8.9, 32.2, 15.4, 6.7, 13.1 and
  21.9 nm (sigma/mean 0.24, 0.15, 0.15, 0.25, 0.28, 0.30; equal shares except the 32 nm
  quasi-cuboids, 4 %): sharp small cuboids, large slightly elongated quasi-cuboids, rounded
  cuboids, spheroids (p ~ 2), platelets (L 1.8-2.4) and concave irregular particles.

The pixel sizes keep the smallest group >= 20 px across on average (the shape CNN needs
the corners resolved). Size is the moment-ellipse major axis (scikit-image
``major_axis_length``), the paper's "average major axis length". Shares are exact per image
(largest-remainder allocation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import tifffile

from tempipe.errors import ParameterError
from tempipe.simulate import ScaleBarStyle, ShapeFamily, SimulatedMicrograph, simulate_micrograph


@dataclass(frozen=True)
class DemoBatch:
    """Recipe of one demo batch: shape families in nm and field settings."""

    name: str
    description: str
    families: tuple[ShapeFamily, ...]
    pixel_size_nm: float
    n_particles: int = 300
    touching_fraction: float = 0.3
    shape: tuple[int, int] = (1024, 1024)


_F = ShapeFamily
HOT_INJECTION = DemoBatch(
    name="hot-injection",
    description="CsPbBr3 by hot injection: uniform cuboids, some platelets, few large "
                "irregular particles (paper Table 1, total column).",
    families=(
        _F("small-cuboid", p=(2.5, 3.5), d=(2,), l_ratio=(1.0, 1.15), size_mean_nm=9.7,
           size_rel_sd=0.20, fraction=0.5),
        _F("large-irregular", p=(1.2, 1.45), d=(4,), l_ratio=(1.15, 1.45), size_mean_nm=24.2,
           size_rel_sd=0.19, fraction=0.1),
        _F("large-cuboid", p=(8.0, 16.0), d=(2,), l_ratio=(1.0, 1.1), size_mean_nm=13.9,
           size_rel_sd=0.14, fraction=0.2),
        _F("platelet", p=(4.0, 8.0), d=(2,), l_ratio=(1.65, 1.95), size_mean_nm=12.8,
           size_rel_sd=0.27, fraction=0.2)),
    pixel_size_nm=0.35, touching_fraction=0.3)

LARP = DemoBatch(
    name="larp",
    description="CsPbBr3 by ligand-assisted reprecipitation: six polydisperse groups, more "
                "irregular shapes (paper, LARP shape groups 1-6).",
    families=(
        _F("small-cuboid", p=(8.0, 16.0), d=(2,), l_ratio=(1.0, 1.1), size_mean_nm=8.9,
           size_rel_sd=0.24, fraction=0.192),
        _F("large-quasi-cuboid", p=(5.0, 10.0), d=(2,), l_ratio=(1.15, 1.4),
           size_mean_nm=32.2, size_rel_sd=0.15, fraction=0.04),
        _F("cuboid", p=(2.5, 3.5), d=(2,), l_ratio=(1.0, 1.15), size_mean_nm=15.4,
           size_rel_sd=0.15, fraction=0.192),
        _F("small-spheroid", p=(1.9, 2.3), d=(2,), l_ratio=(1.0, 1.1), size_mean_nm=6.7,
           size_rel_sd=0.25, fraction=0.192),
        _F("platelet", p=(4.0, 8.0), d=(2,), l_ratio=(1.8, 2.4), size_mean_nm=13.1,
           size_rel_sd=0.28, fraction=0.192),
        _F("irregular", p=(1.2, 1.45), d=(4,), l_ratio=(1.15, 1.45), size_mean_nm=21.9,
           size_rel_sd=0.30, fraction=0.192)),
    pixel_size_nm=0.30, touching_fraction=0.25, shape=(1536, 1536))

#: The demo batches by name.
DEMO_BATCHES = MappingProxyType({b.name: b for b in (HOT_INJECTION, LARP)})

_BAR_COLORS = (("white", True), ("black", False), ("black", True))


def _spawn(rng, n: int) -> list[np.random.Generator]:
    """``n`` independent generators; image i depends only on (rng, i), not on n."""
    if isinstance(rng, np.random.Generator):
        return rng.spawn(n)
    try:
        seeds = np.random.SeedSequence(rng).spawn(n)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"rng={rng!r} is not a seed or a numpy.random.Generator.") from exc
    return [np.random.default_rng(s) for s in seeds]


def _scale_bar_style(rng: np.random.Generator) -> ScaleBarStyle:
    color, box = _BAR_COLORS[int(rng.integers(len(_BAR_COLORS)))]
    corner = ("bottom-right", "bottom-left", "top-right", "top-left")[int(rng.integers(4))]
    position = ("above", "below", "beside")[int(rng.integers(3))]
    return ScaleBarStyle(corner=corner, color=color, box=box, text_position=position)


def demo_batch(name: str, n_images: int = 3, rng=0) -> list[SimulatedMicrograph]:
    """Simulate a demo batch.

    Parameters
    ----------
    name : str
        A key of ``DEMO_BATCHES`` ("hot-injection" or "larp").
    n_images : int
        Number of fields (each ~300 particles, calibrated, with a scale bar; the field
        shape is the batch's ``shape``).
    rng : int, Generator or None
        Seed; image ``i`` is the same whatever ``n_images`` is.

    Returns
    -------
    list of SimulatedMicrograph
        Named ``"<name>-01"``, ``"<name>-02"``, ...; the ``family`` column of each truth
        table is the shape group.

    Raises
    ------
    ParameterError
        Unknown name or n_images < 1.
    """
    spec = _spec(name)
    if isinstance(n_images, bool) or int(n_images) != n_images or n_images < 1:
        raise ParameterError(f"n_images must be an integer >= 1, got {n_images!r}.")
    out = []
    for i, gen in enumerate(_spawn(rng, int(n_images))):
        sim = simulate_micrograph(
            spec.shape, n_particles=spec.n_particles, families=spec.families,
            pixel_size_nm=spec.pixel_size_nm, scale_bar=_scale_bar_style(gen),
            touching_fraction=spec.touching_fraction, dose=float(gen.uniform(150, 300)),
            contrast=float(gen.uniform(0.4, 0.55)), blur_px=float(gen.uniform(0.8, 1.2)),
            rng=gen)
        sim.name = f"{spec.name}-{i + 1:02d}"
        out.append(sim)
    return out


def write_demo_batch(name: str, out_dir, n_images: int = 3, rng=0) -> list[Path]:
    """Write a demo batch as calibrated TIFFs with their truth tables beside them.

    Each field is ``<out_dir>/<name>-NN.tif`` (float32, ImageJ-style, resolution in pixels
    per nm, unit "nm") and ``<name>-NN.csv`` (the truth table plus an ``image`` column
    holding the TIFF's file name).

    Returns
    -------
    list of Path
        The TIFF paths, in order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for sim in demo_batch(name, n_images=n_images, rng=rng):
        path = out_dir / f"{sim.name}.tif"
        px = float(sim.pixel_size_nm)
        tifffile.imwrite(path, sim.image.astype(np.float32), imagej=True,
                         resolution=(1 / px, 1 / px), metadata={"unit": "nm"})
        table = sim.particles.copy()
        table.insert(0, "image", path.name)
        table.to_csv(path.with_suffix(".csv"), index=False)
        paths.append(path)
    return paths


def _spec(name) -> DemoBatch:
    if name not in DEMO_BATCHES:
        raise ParameterError(f"unknown demo batch {name!r}; choose one of "
                             f"{sorted(DEMO_BATCHES)}.")
    return DEMO_BATCHES[name]

"""Simulated particles and micrographs with exact truth.

The shape model is eq. 1 of Williamson et al. 2022 (:func:`superformula_radius`). It is
rendered as single-particle images (:func:`render_particle`, the CNN training set) and as
whole bright-field-TEM-like fields (:func:`simulate_micrograph`) whose instance labels and
parameter table are the truth that segmentation, features and the shape CNN are tested on.
Demo batches imitating the paper's CsPbBr3 case study live in :mod:`tempipe.demo` and are
re-exported here (``DEMO_BATCHES``, ``demo_batch``, ``write_demo_batch``).

Conventions: pixel ``(i, j)`` has its centre at row ``i``, column ``j``; ``theta`` and
``phi`` are in radians, counter-clockwise on screen from the +column axis; particle size is
the scikit-image ``major_axis_length`` (moment ellipse), the paper's "size".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import truncnorm
from skimage.measure import regionprops_table

from tempipe._draw_scalebar import ScaleBarTruth, draw_scale_bar
from tempipe._placement import Sprite, cluster_sizes, place_particles
from tempipe._render import (SUPERSAMPLE, as_generator, check_image_shape, check_imaging,
                             coverage_patch, form_image, paste_slices, particle_coverage,
                             render_particle, superformula_radius, unit_geometry)
from tempipe.errors import ParameterError

__all__ = ["superformula_radius", "particle_coverage", "render_particle", "ShapeFamily",
           "DEFAULT_FAMILIES", "ScaleBarStyle", "ScaleBarTruth", "draw_scale_bar",
           "SimulatedMicrograph", "simulate_micrograph", "DEMO_BATCHES", "demo_batch",
           "write_demo_batch"]

#: Size distributions are normal, truncated at this many standard deviations.
SIZE_TRUNCATION_SD = 2.0
#: No particle is drawn with a major axis below this (px): smaller ones are not resolvable.
MIN_MAJOR_AXIS_PX = 6.0
#: Default image formation (see simulate_micrograph): electrons per pixel at unit
#: intensity, particle darkening, Gaussian blur sigma, texture and illumination amplitudes.
DEFAULT_DOSE = 200.0
DEFAULT_CONTRAST = 0.45
DEFAULT_BLUR_PX = 1.0
DEFAULT_TEXTURE = 0.04
DEFAULT_ILLUMINATION = 0.15
#: Relative sd of the per-particle contrast around ``contrast``.
CONTRAST_REL_SD = 0.12
#: Background pixels kept between an isolated particle and any other one.
ISOLATION_GAP_PX = 3


@dataclass(frozen=True)
class ShapeFamily:
    """A population of particles: ranges of the eq. 1 parameters and a size distribution.

    Parameters
    ----------
    name : str
        Family (shape group) name, copied to the ``family`` column of the truth table.
    p, l_ratio : (float, float)
        Ranges ``(lo, hi)`` sampled uniformly (``lo == hi`` for a fixed value).
    d : tuple of float
        Choices of ``d``, sampled uniformly.
    size_mean_px, size_mean_nm : float
        Mean major-axis length (moment ellipse, as scikit-image measures it), in pixels
        or in nm (nm needs a ``pixel_size_nm``). Give exactly one.
    size_rel_sd : float
        Relative standard deviation sigma / mean of the size (normal, truncated at
        ``SIZE_TRUNCATION_SD`` sigma, width corrected so the truncated sd is this one).
    fraction : float
        Share of the particles (normalised over the families of one simulation).
    """

    name: str
    p: tuple[float, float] = (2.0, 2.0)
    d: tuple[float, ...] = (2,)
    l_ratio: tuple[float, float] = (1.0, 1.0)
    size_mean_px: float | None = None
    size_mean_nm: float | None = None
    size_rel_sd: float = 0.15
    fraction: float = 1.0

    def __post_init__(self):
        for key in ("p", "l_ratio"):
            lo, hi = getattr(self, key)
            if not (0 < lo <= hi < np.inf):
                raise ParameterError(f"ShapeFamily {self.name!r}: {key}={(lo, hi)!r} must be "
                                     "a range (lo, hi) with 0 < lo <= hi.")
        if len(self.d) == 0 or min(self.d) <= 0:
            raise ParameterError(f"ShapeFamily {self.name!r}: d={self.d!r} must be a "
                                 "non-empty tuple of positive numbers.")
        if (self.size_mean_px is None) == (self.size_mean_nm is None):
            raise ParameterError(f"ShapeFamily {self.name!r}: give exactly one of "
                                 "size_mean_px and size_mean_nm.")
        size = self.size_mean_px if self.size_mean_nm is None else self.size_mean_nm
        if not (np.isfinite(size) and size > 0):
            raise ParameterError(f"ShapeFamily {self.name!r}: the mean size must be > 0, "
                                 f"got {size!r}.")
        if not (0 <= self.size_rel_sd < 0.5):
            raise ParameterError(f"ShapeFamily {self.name!r}: size_rel_sd="
                                 f"{self.size_rel_sd!r} must be in [0, 0.5).")
        if not (np.isfinite(self.fraction) and self.fraction > 0):
            raise ParameterError(f"ShapeFamily {self.name!r}: fraction={self.fraction!r} "
                                 "must be > 0.")


#: Default mix: particles 20-60 px across (major axis), mostly convex, a few concave.
DEFAULT_FAMILIES = (
    ShapeFamily("rounded-square", p=(2.5, 8.0), d=(2,), l_ratio=(1.0, 1.2),
                size_mean_px=36.0, size_rel_sd=0.2, fraction=0.35),
    ShapeFamily("disc", p=(2.0, 2.0), d=(2,), l_ratio=(1.0, 1.0),
                size_mean_px=34.0, size_rel_sd=0.2, fraction=0.2),
    ShapeFamily("rod", p=(2.0, 6.0), d=(2,), l_ratio=(1.5, 2.5),
                size_mean_px=42.0, size_rel_sd=0.15, fraction=0.2),
    ShapeFamily("triangle", p=(1.3, 2.0), d=(3,), l_ratio=(1.6, 2.0),
                size_mean_px=36.0, size_rel_sd=0.15, fraction=0.15),
    ShapeFamily("concave", p=(0.75, 0.95), d=(4, 5, 6), l_ratio=(1.0, 1.1),
                size_mean_px=44.0, size_rel_sd=0.12, fraction=0.1),
)


@dataclass(frozen=True)
class ScaleBarStyle:
    """How :func:`simulate_micrograph` draws its scale bar (see :func:`draw_scale_bar`)."""

    length_nm: float | None = None
    corner: str = "bottom-right"
    color: str = "white"
    box: bool = True
    text_position: str = "above"
    font_size: int | None = None


@dataclass
class SimulatedMicrograph:
    """A simulated field and its exact truth.

    Attributes
    ----------
    image : (M, N) float32 ndarray
        The micrograph (dark-polarity background near 1), scale bar drawn if requested.
    labels : (M, N) int32 ndarray
        Instance labels, 0 = background; a pixel belongs to a particle iff the particle
        covers >= half of it.
    particles : DataFrame
        One row per label (see :func:`simulate_micrograph`).
    pixel_size_nm : float or None
    scale_bar : ScaleBarTruth or None
    name : str
    """

    image: np.ndarray
    labels: np.ndarray
    particles: pd.DataFrame
    pixel_size_nm: float | None = None
    scale_bar: ScaleBarTruth | None = None
    name: str = "simulated"


def _family_counts(fractions: np.ndarray, n: int) -> np.ndarray:
    """Largest-remainder allocation of ``n`` particles to the family fractions."""
    share = fractions / fractions.sum() * n
    counts = np.floor(share).astype(int)
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def _sample_parameters(families, n: int, pixel_size_nm, rng) -> pd.DataFrame:
    """Draw family, eq. 1 parameters, size and contrast factor for ``n`` particles."""
    counts = _family_counts(np.array([f.fraction for f in families], dtype=float), n)
    parts = []
    for fam, k in zip(families, counts):
        mean_px = fam.size_mean_px if fam.size_mean_nm is None else fam.size_mean_nm / pixel_size_nm
        a = SIZE_TRUNCATION_SD
        scale = mean_px * fam.size_rel_sd / truncnorm.std(-a, a)
        major = (truncnorm.rvs(-a, a, loc=mean_px, scale=scale, size=k, random_state=rng)
                 if scale > 0 else np.full(k, mean_px))
        parts.append(pd.DataFrame({
            "family": fam.name, "p": rng.uniform(*fam.p, size=k),
            "d": rng.choice(np.asarray(fam.d, dtype=float), size=k),
            "l_ratio": rng.uniform(*fam.l_ratio, size=k),
            "phi": rng.uniform(0, 2 * np.pi, size=k),
            "major_px": np.maximum(major, MIN_MAJOR_AXIS_PX)}))
    table = pd.concat(parts, ignore_index=True)
    table = table.iloc[rng.permutation(n)].reset_index(drop=True)
    geometry = unit_geometry(table["p"].to_numpy(), table["d"].to_numpy(),
                             table["l_ratio"].to_numpy())
    table["radius_px"] = table["major_px"] / geometry["major"]
    table["r_max"] = geometry["r_max"]
    table["contrast_factor"] = np.clip(rng.normal(1.0, CONTRAST_REL_SD, size=n), 0.6, 1.4)
    return table


def _sprites(table: pd.DataFrame, rng) -> list[Sprite]:
    """Render every particle once at a random sub-pixel centre."""
    sprites = []
    for row in table.itertuples(index=False):
        frac = rng.random(2)
        patch, origin = coverage_patch((row.p, row.d, row.l_ratio, row.phi), row.radius_px,
                                       frac, SUPERSAMPLE, ISOLATION_GAP_PX + 1, row.r_max)
        sprite = Sprite(patch, (frac[0] - origin[0], frac[1] - origin[1]))
        sprites.append(sprite.finish(ISOLATION_GAP_PX))
    return sprites


def simulate_micrograph(shape=(1024, 1024), *, n_particles=150, families=None,
                        pixel_size_nm=None, scale_bar=False, touching_fraction=0.3,
                        polarity="dark", dose=DEFAULT_DOSE, contrast=DEFAULT_CONTRAST,
                        blur_px=DEFAULT_BLUR_PX, texture=DEFAULT_TEXTURE,
                        illumination=DEFAULT_ILLUMINATION, rng=0) -> SimulatedMicrograph:
    """Simulate a bright-field-TEM-like field of nanocrystals with exact truth.

    Particles follow eq. 1 with parameters drawn per family; they never overlap, a
    ``touching_fraction`` of them sit in touching pairs, chains and clusters of 2-4
    (neighbours 8-adjacent, a quarter of them one pixel apart), the others keep 3 px around
    them; particles may be cut by the border. Image formation: per-particle contrast and
    texture, amorphous-carbon texture, uneven illumination, Gaussian blur, Poisson noise.

    Parameters
    ----------
    shape : (int, int)
        Field shape (M, N), each side >= 32.
    n_particles : int
        Number of particles (all are placed, or ParameterError).
    families : sequence of ShapeFamily, optional
        Default ``DEFAULT_FAMILIES`` (20-60 px across).
    pixel_size_nm : float, optional
        Calibration; needed for nm-sized families, the scale bar and ``*_nm`` columns.
    scale_bar : bool or ScaleBarStyle
        Draw a scale bar (True = ``ScaleBarStyle()``); no particle lies under its label box.
    touching_fraction : float
        Share of particles in touching clusters, in [0, 1].
    polarity : {"dark", "bright"}
        Dark particles on bright background (TEM) or bright on dark (HAADF/SEM).
    dose, contrast, blur_px, texture, illumination : float
        Image formation knobs (raise dose/contrast for easier fields, the others for
        harder ones); see the module constants for the defaults.
    rng : int, Generator or None
        Seed; the same seed gives the same field.

    Returns
    -------
    SimulatedMicrograph
        ``particles`` has one row per label: ``label, family, p, d, l_ratio, phi,
        radius_px, center_row, center_col`` (polar origin), ``contrast``, and measured on
        the label image with regionprops: ``centroid_row, centroid_col, area_px,
        equivalent_diameter_px, major_axis_length_px, minor_axis_length_px``,
        ``touches_border``, ``cluster_id`` (0 = isolated), and ``area_nm2,
        equivalent_diameter_nm, major_axis_length_nm, minor_axis_length_nm`` (NaN
        without ``pixel_size_nm``).

    Raises
    ------
    ParameterError
        For a bad argument, or when the particles do not fit in the field.
    """
    shape = check_image_shape(shape, minimum=32)
    families = _check_simulation_args(n_particles, families, pixel_size_nm, scale_bar,
                                      touching_fraction, polarity)
    check_imaging(dose, contrast, blur_px, texture, illumination)
    rng = as_generator(rng)
    table = _sample_parameters(families, int(n_particles), pixel_size_nm, rng)
    style = ScaleBarStyle() if scale_bar is True else (scale_bar or None)
    bar = _draw_bar(np.zeros(shape, np.float32), pixel_size_nm, style, rng)[1] if style else None
    forbidden = None
    if bar is not None:
        forbidden = np.zeros(shape, dtype=bool)
        forbidden[bar.label_bbox[0]:bar.label_bbox[2], bar.label_bbox[1]:bar.label_bbox[3]] = 1
    sprites = _sprites(table, rng)
    labels, centers, cluster_id = place_particles(
        sprites, shape, clusters=_clusters(len(table), touching_fraction, rng),
        forbidden=forbidden, rng=rng)
    missing = int(np.isnan(centers[:, 0]).sum())
    if missing:
        raise ParameterError(
            f"only {len(table) - missing} of {len(table)} particles fit in a {shape} field "
            "without overlapping (random placement, 3 px apart unless touching); lower "
            "n_particles, use smaller families or a larger shape.")
    table["contrast"] = contrast * table["contrast_factor"]
    mass = _mass_map(sprites, centers, table["contrast"].to_numpy(), shape)
    image = form_image(mass, rng, dose=dose, blur_px=blur_px, texture=texture,
                       illumination=illumination, polarity=polarity)
    if bar is not None:
        image, bar = _draw_bar(image, pixel_size_nm, style, bar.text)
    particles = _truth_table(labels, table, centers, cluster_id, pixel_size_nm)
    return SimulatedMicrograph(image, labels, particles, pixel_size_nm, bar)


def _check_simulation_args(n_particles, families, pixel_size_nm, scale_bar,
                           touching_fraction, polarity) -> tuple[ShapeFamily, ...]:
    if isinstance(n_particles, bool) or int(n_particles) != n_particles or n_particles < 0:
        raise ParameterError(f"n_particles must be an integer >= 0, got {n_particles!r}.")
    families = DEFAULT_FAMILIES if families is None else tuple(families)
    if not families or not all(isinstance(f, ShapeFamily) for f in families):
        raise ParameterError("families must be a non-empty sequence of ShapeFamily.")
    if pixel_size_nm is not None and not (np.isfinite(pixel_size_nm) and pixel_size_nm > 0):
        raise ParameterError(f"pixel_size_nm must be > 0 (or None), got {pixel_size_nm!r}.")
    needs_scale = [f.name for f in families if f.size_mean_nm is not None]
    if pixel_size_nm is None and (needs_scale or scale_bar):
        what = f"families {needs_scale} sized in nm" if needs_scale else "a scale bar"
        raise ParameterError(f"{what} need pixel_size_nm; pass pixel_size_nm=...")
    if not (isinstance(scale_bar, (bool, ScaleBarStyle))):
        raise ParameterError(f"scale_bar must be True, False or a ScaleBarStyle, got "
                             f"{scale_bar!r}.")
    if not (0 <= touching_fraction <= 1):
        raise ParameterError(f"touching_fraction must be in [0, 1], got {touching_fraction!r}.")
    if polarity not in ("dark", "bright"):
        raise ParameterError(f"polarity={polarity!r}; use 'dark' or 'bright'.")
    return families


def _clusters(n: int, touching_fraction: float, rng) -> list[list[int]]:
    """Random particle indices grouped into touching clusters of 2-4."""
    sizes = cluster_sizes(int(round(touching_fraction * n)), rng)
    order = rng.permutation(n)
    bounds = np.cumsum([0, *sizes])
    return [order[a:b].tolist() for a, b in zip(bounds[:-1], bounds[1:])]


def _draw_bar(image, pixel_size_nm, style: ScaleBarStyle, text_or_rng):
    """draw_scale_bar with a style; the text is given, or picked by an rng."""
    text = text_or_rng if isinstance(text_or_rng, str) else None
    rng = None if text is not None else text_or_rng
    return draw_scale_bar(image, pixel_size_nm, length_nm=style.length_nm, corner=style.corner,
                          color=style.color, box=style.box, text_position=style.text_position,
                          font_size=style.font_size, text=text, rng=rng)


def _window(sprite: Sprite, center, shape):
    origin = (int(round(center[0] - sprite.center_in_patch[0])),
              int(round(center[1] - sprite.center_in_patch[1])))
    return paste_slices(origin, sprite.patch.shape, shape)


def _mass_map(sprites, centers, contrast, shape) -> np.ndarray:
    """Sum of coverage x contrast of all particles, (M, N) float64."""
    mass = np.zeros(shape)
    for sprite, center, c in zip(sprites, centers, contrast):
        img, pat = _window(sprite, center, shape)
        mass[img] += sprite.patch[pat] * c
    return mass


def _truth_table(labels, table, centers, cluster_id, pixel_size_nm) -> pd.DataFrame:
    """Parameter table joined with regionprops measured on the exact label image."""
    props = pd.DataFrame(regionprops_table(labels, properties=(
        "label", "centroid", "area", "equivalent_diameter_area", "major_axis_length",
        "minor_axis_length", "bbox")))
    out = pd.DataFrame({"label": np.arange(1, len(table) + 1, dtype=np.int32)})
    for key in ("family", "p", "d", "l_ratio", "phi", "radius_px"):
        out[key] = table[key].to_numpy()
    out["center_row"], out["center_col"] = centers[:, 0], centers[:, 1]
    out["contrast"] = table["contrast"].to_numpy()
    props = props.set_index("label").reindex(out["label"])
    out["centroid_row"] = props["centroid-0"].to_numpy()
    out["centroid_col"] = props["centroid-1"].to_numpy()
    out["area_px"] = props["area"].to_numpy()
    out["equivalent_diameter_px"] = props["equivalent_diameter_area"].to_numpy()
    out["major_axis_length_px"] = props["major_axis_length"].to_numpy()
    out["minor_axis_length_px"] = props["minor_axis_length"].to_numpy()
    rows, cols = labels.shape
    out["touches_border"] = ((props["bbox-0"] == 0) | (props["bbox-1"] == 0)
                             | (props["bbox-2"] == rows) | (props["bbox-3"] == cols)).to_numpy()
    out["cluster_id"] = cluster_id
    scale = np.nan if pixel_size_nm is None else float(pixel_size_nm)
    out["area_nm2"] = out["area_px"] * scale ** 2
    for key in ("equivalent_diameter", "major_axis_length", "minor_axis_length"):
        out[f"{key}_nm"] = out[f"{key}_px"] * scale
    return out


def __getattr__(name):
    """Demo batches are defined in tempipe.demo (imported lazily: it imports this module)."""
    if name in ("DEMO_BATCHES", "demo_batch", "write_demo_batch"):
        from tempipe import demo
        return getattr(demo, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

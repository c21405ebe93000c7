"""The shape CNN's training set: simulated particles cut by the real crop path.

:func:`make_training_set` draws (p, d, l_ratio, phi) from :data:`TRAINING_DISTRIBUTIONS`,
renders the particles with :mod:`tempipe.simulate`'s renderer on mosaics (many particles
packed apart on one image, so image formation and cropping run vectorised), with the
nuisances of real micrographs — random contrast and polarity, dose (shot noise), blur,
carbon and particle texture, uneven illumination, pixel size (particle radius), and
slightly rough, slightly shifted mask edges — and cuts every particle with
:func:`tempipe.crops.crop_particles`, exactly as real particles are cut. Three shortcuts
bring the default 65,000 crops from ~60 s to ~45 s on two cores; the model trained before
them read the new crops about as well as the old (RMSE(L) 0.198 -> 0.203, s.e. 0.002; log p
and round(d) unchanged; ``bench/RESULTS.md``):
shot noise and textures from cheap normal-like draws (``form_image(fast_noise=True)``),
boundary pixels supersampled 3 x 3 instead of 4 x 4, and particles packed by their own
bounding boxes (:func:`mosaic_layout`).

Labels: eq. 1 describes some silhouettes twice. With ``l_ratio = 1`` the curve of ``p`` and
the curve of ``p / (p - 1)`` turned by ``pi / (2 d)`` agree within 2 % of the radius for
every ``1 < p < 2`` (the l_p and l_q unit balls of 2-D are each other's 45-degree turn, exactly
so for p = 1 and 2): a sharp square (p = 12) is also a diamond with p = 1.09. A network asked
for the raw ``p`` of such a shape can only average the two branches (it read sharp cuboids as
p ~ 4). :func:`canonical_parameters` picks one description: near-square shapes
(``l_ratio < FOLD_L_RATIO``) with ``1 < p < 2`` are labelled with ``p / (p - 1)`` (capped at the
top of the sampled range), so the network learns the sharp-corner reading; ``d`` and
``l_ratio`` are unchanged. Above ``FOLD_L_RATIO`` the two branches differ by more than ~3 %
of the radius, which the crops resolve.

Masks: in most mosaics each particle's mask is the one :func:`tempipe.segment.segment`
(default parameters, see :data:`_MOSAIC_SEGMENT`) finds for it, matched to the exact label
at IoU >= 0.5, so the network learns from the masks it will see at run time (its rounded
corners, lost spikes, edge shifts) while the targets stay the exact parameters; particles
the segmentation misses, and the remaining mosaics, keep their exact (roughened) masks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from joblib.externals.loky import get_reusable_executor

from tempipe._render import (as_generator, coverage_patch, form_image,
                             paste_slices, radius_unchecked, refined_max,
                             smooth_noise)
from tempipe.crops import CROP_MARGIN, crop_particles
from tempipe.errors import ParameterError
from tempipe.metrics import match_instances
from tempipe.segment import SegmentParams, segment


@dataclass(frozen=True)
class TrainingDistributions:
    """Where training particles come from (all uniform unless said otherwise)."""

    d_values: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    log_p: tuple[float, float] = (float(np.log(0.5)), float(np.log(20.0)))  # p log-uniform
    l_ratio: tuple[float, float] = (1.0, 3.0)
    radius_px: tuple[float, float] = (8.0, 32.0)  # maximum polar radius: 16-64 px across
    contrast: tuple[float, float] = (0.15, 0.7)
    dose: tuple[float, float] = (40.0, 600.0)  # log-uniform, electrons per pixel
    blur_px: tuple[float, float] = (0.4, 1.6)
    texture: tuple[float, float] = (0.0, 0.08)
    edge_roughness: tuple[float, float] = (0.0, 0.3)  # noise added to edge coverage
    edge_threshold: tuple[float, float] = (0.35, 0.65)  # coverage kept as particle
    bright_fraction: float = 0.3  # share of bright-on-dark (HAADF/SEM-like) mosaics
    segmented_fraction: float = 0.8  # share of mosaics whose masks come from tempipe.segment
    # A share of nanocrystal-like cuboids (d = 2, near-square, log-uniform p from round to
    # sharp), where real particles crowd and where rounded and sharp ones must be told apart.
    cuboid_fraction: float = 0.1
    cuboid_log_p: tuple[float, float] = (float(np.log(2.0)), float(np.log(20.0)))
    cuboid_l_ratio: tuple[float, float] = (1.0, 1.3)


TRAINING_DISTRIBUTIONS = TrainingDistributions()
#: Particles per mosaic.
MOSAIC_PARTICLES = 144
#: Mosaic width (px); particles are packed in rows, tallest first (:func:`mosaic_layout`).
MOSAIC_WIDTH_PX = 800
#: Empty pixels between neighbouring particles' bounding boxes (before a +-2 px jitter): a
#: neighbour enters the crops' 8-px context ring of 3.4 % of the particles (none with 12 px),
#: as neighbours do in real micrographs, for 0.85 of the pixels of a 12-px gap.
MOSAIC_GAP_PX = 8
#: Sub-samples per side of a boundary pixel: coverage in steps of 1/9 (the simulator's 4
#: gives 1/16), below the blur and shot noise of every mosaic, at 0.63 of the coverage cost.
MOSAIC_SUPERSAMPLE = 3
#: Below this l_ratio a shape with 1 < p < 2 is labelled by its twin p / (p - 1) (module doc).
FOLD_L_RATIO = 1.1


def sample_parameters(n: int, rng, dist: TrainingDistributions = TRAINING_DISTRIBUTIONS
                      ) -> pd.DataFrame:
    """Draw ``n`` particle parameter sets: ``p, d, l_ratio, phi, radius_px``."""
    rng = as_generator(rng)
    table = pd.DataFrame({
        "p": np.exp(rng.uniform(*dist.log_p, size=n)),
        "d": rng.choice(np.asarray(dist.d_values), size=n).astype(float),
        "l_ratio": rng.uniform(*dist.l_ratio, size=n),
        "phi": rng.uniform(0.0, 2 * np.pi, size=n),
        "radius_px": rng.uniform(*dist.radius_px, size=n)})
    cuboid = rng.uniform(size=n) < dist.cuboid_fraction
    k = int(cuboid.sum())
    table.loc[cuboid, "p"] = np.exp(rng.uniform(*dist.cuboid_log_p, size=k))
    table.loc[cuboid, "d"] = 2.0
    table.loc[cuboid, "l_ratio"] = rng.uniform(*dist.cuboid_l_ratio, size=k)
    return table


def canonical_parameters(params: pd.DataFrame,
                         dist: TrainingDistributions = TRAINING_DISTRIBUTIONS) -> pd.DataFrame:
    """The parameters the network learns: each silhouette described one way (module doc).

    Returns a copy of ``params`` whose ``p`` is ``min(p / (p - 1), p_max)`` where
    ``1 < p < 2`` and ``l_ratio < FOLD_L_RATIO``; ``p_max`` is the top of ``dist.log_p``.
    """
    out = params.copy()
    p, l_ratio = out["p"].to_numpy(float), out["l_ratio"].to_numpy(float)
    fold = (p > 1.0) & (p < 2.0) & (l_ratio < FOLD_L_RATIO)
    twin = np.minimum(p[fold] / (p[fold] - 1.0), np.exp(dist.log_p[1]))
    p = p.copy()
    p[fold] = twin
    out["p"] = p
    return out


def particle_extents(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each particle's eq.-1 maximum radius and bounding box about its polar origin.

    The curve is evaluated on a 512-angle grid plus the angles of its tips, where
    ``(d / 2)(theta + phi)`` is a multiple of pi / 2 (the concave shapes' spikes), and the
    maximum is refined on 33 angles around the best one (within 0.002 % of
    :func:`tempipe._render.max_radius`, at a third of its cost; only the particle's size
    depends on it, which is drawn at random anyway).

    Returns
    -------
    r_max : (n,) ndarray
        Maximum of eq. 1 over theta.
    extents : (n, 4) ndarray
        Row min, row max, col min, col max offsets (px, rows grow downwards) of the particle
        drawn at ``radius_px``, grown by 1 px.
    """
    n = len(table)
    p, d, l_ratio, phi = (table[k].to_numpy()[:, None] for k in ("p", "d", "l_ratio", "phi"))
    step = 2 * np.pi / 512
    grid = np.broadcast_to(np.arange(512) * step, (n, 512))
    tips = np.arange(int(d.max()) * 2)[None, :] * np.pi / d - phi
    theta = np.concatenate([grid, tips], axis=1)
    radius = radius_unchecked(theta, p, d, l_ratio, phi)
    best = np.take_along_axis(theta, radius.argmax(1)[:, None], 1)
    r_max = refined_max(radius.max(1), best, step, p, d, l_ratio, phi, points=33)
    radius *= (table["radius_px"].to_numpy() / r_max)[:, None]
    rows, cols = -radius * np.sin(theta), radius * np.cos(theta)
    extents = np.stack([rows.min(1) - 1, rows.max(1) + 1, cols.min(1) - 1, cols.max(1) + 1], 1)
    return r_max, extents


def mosaic_layout(extents: np.ndarray, rng) -> tuple[np.ndarray, tuple[int, int]]:
    """Particle centres (row, col) on a mosaic and the mosaic's shape.

    ``extents`` are the particles' bounding boxes about their centres
    (:func:`particle_extents`). Each box, grown by ``MOSAIC_GAP_PX / 2`` on every side, is
    packed in rows of :data:`MOSAIC_WIDTH_PX`, tallest first, so small and elongated
    particles do not sit in large empty cells (0.49 of the pixels of a grid of equal 72-px
    cells; image formation and segmentation cost per pixel). The 800-px width keeps
    :func:`tempipe.segment.segment` on the coarse grid (factor 2) of 1024² micrographs.
    Centres are jittered by up to 2 px.
    """
    extents = np.asarray(extents, float)
    height = extents[:, 1] - extents[:, 0] + MOSAIC_GAP_PX
    width = extents[:, 3] - extents[:, 2] + MOSAIC_GAP_PX
    centres = np.zeros((len(extents), 2))
    edge = MOSAIC_GAP_PX / 2  # plus its own half gap, less the jitter: boxes >= 6 px inside
    row_top, col, row_height = edge, edge, 0.0
    for i in np.argsort(-height, kind="stable"):
        if col + width[i] > MOSAIC_WIDTH_PX - edge and col > edge:
            row_top, col, row_height = row_top + row_height, edge, 0.0
        row_height = max(row_height, height[i])
        centres[i] = (row_top + MOSAIC_GAP_PX / 2 - extents[i, 0],
                      col + MOSAIC_GAP_PX / 2 - extents[i, 2])
        col += width[i]
    centres += rng.uniform(-2, 2, size=centres.shape)
    rows = int(np.ceil(row_top + row_height + edge))
    return centres, (rows, MOSAIC_WIDTH_PX)


def _mosaic(table: pd.DataFrame, rng, dist: TrainingDistributions, size: int,
            context: int = 0) -> np.ndarray:
    """Render one mosaic of ``len(table)`` particles and return their crops."""
    r_max, extents = particle_extents(table)
    centres, shape = mosaic_layout(extents, rng)
    mass = np.zeros(shape, np.float32)
    labels = np.zeros(shape, np.int32)
    roughness = rng.uniform(*dist.edge_roughness)
    threshold = rng.uniform(*dist.edge_threshold)
    contrast = rng.uniform(*dist.contrast)
    rough = smooth_noise(shape, rng, sigma_px=0.8, white="uniform") * roughness
    for i, row in enumerate(table.itertuples(index=False)):
        patch, origin = coverage_patch((row.p, row.d, row.l_ratio, row.phi), row.radius_px,
                                       centres[i], MOSAIC_SUPERSAMPLE, r_max=float(r_max[i]))
        sl_img, sl_patch = paste_slices(origin, patch.shape, shape)
        cover = patch[sl_patch]
        edge = (cover > 0) & (cover < 1)
        keep = np.where(edge, cover + rough[sl_img], cover) >= threshold
        if not keep.any():  # a sub-pixel sliver: keep its most covered pixel
            keep = cover >= cover.max()
        mass[sl_img] += cover * contrast * rng.uniform(0.85, 1.15)
        labels[sl_img][keep] = i + 1
    polarity = "bright" if rng.uniform() < dist.bright_fraction else "dark"
    image = form_image(mass, rng, dose=float(np.exp(rng.uniform(*np.log(dist.dose)))),
                       blur_px=rng.uniform(*dist.blur_px), texture=rng.uniform(*dist.texture),
                       illumination=rng.uniform(0.0, 0.2), polarity=polarity,
                       fast_noise=True)
    if rng.uniform() < dist.segmented_fraction:
        labels = segmented_masks(image, labels, polarity)
    return crop_particles(image, labels, size, margin=CROP_MARGIN,
                          label_ids=np.arange(1, len(table) + 1), polarity=polarity,
                          context=context)


#: Segmentation of mosaics: the defaults, less two steps that never changed a mosaic's
#: masks (on 140 mosaics tried): the search for drawn annotations (scale bars, labels),
#: which mosaics do not carry, and the polarity vote (the mosaic's polarity is given; the
#: vote found it every time). About 5 ms of ~85 saved per mosaic.
_MOSAIC_SEGMENT = SegmentParams(ignore_annotations=False)


def segmented_masks(image: np.ndarray, labels: np.ndarray, polarity: str = "auto"
                    ) -> np.ndarray:
    """Exact label ids carried over to the masks :func:`tempipe.segment.segment` finds.

    Each true particle matched at IoU >= 0.5 takes its segmented mask; unmatched ones keep
    their exact mask. ``polarity`` is the image's (``"dark"``, ``"bright"``) or ``"auto"``;
    the segmentation runs with :data:`_MOSAIC_SEGMENT`.
    """
    pred = segment(image, dataclasses.replace(_MOSAIC_SEGMENT, polarity=polarity))
    pairs = match_instances(labels, pred)["pairs"]
    lut = np.zeros(int(pred.max()) + 1, np.int32)
    lut[pairs[:, 1]] = pairs[:, 0]
    mapped = lut[pred]
    missing = np.isin(labels, np.setdiff1d(np.unique(labels[labels > 0]), pairs[:, 0]))
    fill = missing & (mapped == 0)
    mapped[fill] = labels[fill]
    return mapped


def _mosaic_job(args) -> np.ndarray:
    table, seed, dist, size, context = args
    return _mosaic(table, np.random.default_rng(seed), dist, size, context)


def make_training_set(n: int = 65_000, rng=0, *, size: int = 48, context: int = 0,
                      dist: TrainingDistributions = TRAINING_DISTRIBUTIONS, n_jobs: int = 1,
                      progress=None) -> tuple[np.ndarray, pd.DataFrame]:
    """Simulated crops and their parameters.

    Parameters
    ----------
    n : int
        Number of particles.
    rng : int or Generator
        Seed; the set is deterministic for a given seed, ``n``, ``size`` and ``n_jobs``.
    size : int
        Crop side (the network's input size).
    context : int
        Background ring kept around each mask (``crop_particles``'s ``context``).
    dist : TrainingDistributions
    n_jobs : int
        Worker processes.
    progress : callable ``(done, total)``, optional
        Called after each mosaic.

    Returns
    -------
    crops : (n, size, size) float32 ndarray
    params : DataFrame
        ``p, d, l_ratio, phi, radius_px`` per crop.
    """
    if int(n) != n or n < 1:
        raise ParameterError(f"n must be a positive integer number of particles, got {n!r}.")
    rng = as_generator(rng)
    params = sample_parameters(int(n), rng, dist)
    per = MOSAIC_PARTICLES
    seeds = rng.integers(0, 2**63 - 1, size=-(-n // per))
    jobs = [(params.iloc[k * per:(k + 1) * per], int(s), dist, size, context)
            for k, s in enumerate(seeds)]
    crops = []
    if n_jobs > 1:
        pool = get_reusable_executor(max_workers=n_jobs)
        for done, part in enumerate(pool.map(_mosaic_job, jobs), start=1):
            crops.append(part)
            if progress:
                progress(done, len(jobs))
    else:
        for done, job in enumerate(jobs, start=1):
            crops.append(_mosaic_job(job))
            if progress:
                progress(done, len(jobs))
    return np.concatenate(crops), params


def distributions_card(dist: TrainingDistributions = TRAINING_DISTRIBUTIONS) -> dict:
    """The training distributions as a JSON-ready dict for the model card."""
    card = asdict(dist)
    card["p"] = [float(np.exp(dist.log_p[0])), float(np.exp(dist.log_p[1]))]
    card["p_sampling"] = "log-uniform"
    card["labels"] = (f"canonical: p -> p / (p - 1) where 1 < p < 2 and l_ratio < {FOLD_L_RATIO} "
                      "(the same silhouette turned by pi / (2 d))")
    card["dose_sampling"] = "log-uniform"
    return card


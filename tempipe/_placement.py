"""Placement of rendered particles in a field: no overlaps, touching pairs and clusters.

Private helper of :mod:`tempipe.simulate`. Every particle arrives as a coverage patch
rendered once at a sub-pixel centre; placing it means translating the patch by whole
pixels, which leaves its coverage exact. A particle's mask is ``patch >= 0.5`` (the label
rule), so masks placed here never overlap.

Isolated particles keep ``gap_px`` background pixels (8-connected distance) from every
other particle. Cluster members are slid along a random direction from a neighbour's
centre to the first position where they no longer overlap anything, so they end 8-adjacent
to that neighbour (or, for ``ONE_PIXEL_GAP_SHARE`` of them, exactly one background pixel
away); they keep ``gap_px`` from non-members.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from tempipe._render import paste_slices

#: Cluster sizes and their probabilities (pairs, chains/clusters of 3 and 4).
CLUSTER_SIZES = (2, 3, 4)
CLUSTER_SIZE_PROBS = (0.5, 0.3, 0.2)
#: A particle cut by the border keeps at least this share of its pixels in the field.
MIN_VISIBLE_SHARE = 0.3
#: Share of cluster neighbours left one background pixel apart instead of 8-adjacent.
ONE_PIXEL_GAP_SHARE = 0.25
_RANDOM_TRIES = 400
_DIRECTION_TRIES = 24


@dataclass
class Sprite:
    """One rendered particle: coverage patch, its masks, and where its centre sits in it."""

    patch: np.ndarray          # (H, W) float32 coverage
    center_in_patch: tuple     # (row, col) float position of the polar origin in the patch
    mask: np.ndarray = None    # (H, W) bool, patch >= 0.5
    halo: np.ndarray = None    # (H, W) bool, mask dilated by gap_px

    def finish(self, gap_px: int) -> "Sprite":
        self.mask = self.patch >= 0.5
        self.halo = ndi.binary_dilation(self.mask, np.ones((3, 3), bool), iterations=gap_px)
        return self


class Field:
    """The label image being filled, with the tests that decide whether a sprite fits."""

    def __init__(self, shape, forbidden: np.ndarray | None):
        self.labels = np.zeros(shape, dtype=np.int32)
        self.forbidden = forbidden
        self.origins: dict[int, tuple[int, int]] = {}

    def window(self, sprite: Sprite, center_rc):
        """Origin and slices of ``sprite`` with its polar origin near ``center_rc``."""
        origin = (int(round(center_rc[0] - sprite.center_in_patch[0])),
                  int(round(center_rc[1] - sprite.center_in_patch[1])))
        return origin, paste_slices(origin, sprite.patch.shape, self.labels.shape)

    def overlaps(self, sprite: Sprite, slices) -> bool:
        return slices is None or bool(self.labels[slices[0]][sprite.mask[slices[1]]].any())

    def fits(self, sprite: Sprite, slices, allowed=()) -> bool:
        """No overlap, visible enough, off the forbidden zone, gap kept from non-allowed."""
        if slices is None:
            return False
        img, pat = slices
        visible = int(sprite.mask[pat].sum())
        if visible < max(4, MIN_VISIBLE_SHARE * sprite.mask.sum()):
            return False
        if self.labels[img][sprite.mask[pat]].any():
            return False
        halo = sprite.halo[pat]
        if self.forbidden is not None and self.forbidden[img][halo].any():
            return False
        near = self.labels[img][halo]
        near = near[near > 0]
        return near.size == 0 or bool(np.isin(near, allowed).all())

    def put(self, label: int, sprite: Sprite, origin, slices) -> None:
        self.labels[slices[0]][sprite.mask[slices[1]]] = label
        self.origins[label] = origin

    def gap_to(self, label: int, sprite: Sprite, slices) -> int:
        """0 if the placed sprite is 8-adjacent to ``label``, 1 if one pixel away, else 2."""
        img, pat = slices
        grown = sprite.mask[pat]
        for gap in (0, 1):
            grown = ndi.binary_dilation(grown, np.ones((3, 3), bool))
            if (self.labels[img][grown] == label).any():
                return gap
        return 2


def cluster_sizes(n_clustered: int, rng: np.random.Generator) -> list[int]:
    """Split ``n_clustered`` particles into clusters of 2-4 (no singleton left over)."""
    sizes, rest = [], n_clustered
    while rest >= 2:
        size = min(int(rng.choice(CLUSTER_SIZES, p=CLUSTER_SIZE_PROBS)), rest)
        if rest - size == 1:
            size = size - 1 if size > 2 else size + 1
        sizes.append(size)
        rest -= size
    return sizes


def _place_random(field: Field, label: int, sprite: Sprite, rng, allowed=()) -> bool:
    rows, cols = field.labels.shape
    for _ in range(_RANDOM_TRIES):
        center = (rng.uniform(0, rows - 1), rng.uniform(0, cols - 1))
        origin, slices = field.window(sprite, center)
        if field.fits(sprite, slices, allowed):
            field.put(label, sprite, origin, slices)
            return True
    return False


def _attach(field: Field, label: int, sprite: Sprite, target: int, target_center,
            members, rng) -> bool:
    """Slide ``sprite`` out from ``target_center`` until it just clears all particles."""
    reach = 2 * max(sprite.patch.shape) + 2
    for _ in range(_DIRECTION_TRIES):
        angle = rng.uniform(0, 2 * np.pi)
        step = np.array([np.sin(angle), np.cos(angle)])
        k = next((k for k in range(reach) if not field.overlaps(
            sprite, field.window(sprite, target_center + k * step)[1])), reach)
        wanted_gap = int(rng.random() < ONE_PIXEL_GAP_SHARE)
        for extra in ((0, 1, 2) if wanted_gap else (0,)):
            origin, slices = field.window(sprite, target_center + (k + extra) * step)
            if (field.fits(sprite, slices, members)
                    and field.gap_to(target, sprite, slices) == wanted_gap):
                field.put(label, sprite, origin, slices)
                return True
    return False


def place_particles(sprites: list[Sprite], shape, *, clusters: list[list[int]],
                    forbidden: np.ndarray | None, rng: np.random.Generator):
    """Place every sprite; return labels, polar-origin centres and cluster ids.

    Parameters
    ----------
    sprites : list of Sprite
        ``sprites[i]`` becomes label ``i + 1``.
    shape : (int, int)
        Field shape (M, N).
    clusters : list of list of int
        Sprite indices forming each cluster (placed first, in order); the others are
        placed isolated, largest first.
    forbidden : (M, N) bool ndarray or None
        Zone no particle (nor its gap) may cover, e.g. the scale-bar label box.
    rng : Generator

    Returns
    -------
    labels : (M, N) int32 ndarray
    centers : (K, 2) float ndarray
        Polar origin (row, col) of each sprite; NaN where it could not be placed.
    cluster_id : (K,) int ndarray
        1.. for members of a touching cluster (of 2+ placed members), 0 otherwise.
    """
    field = Field(shape, forbidden)
    cluster_id = np.zeros(len(sprites), dtype=int)
    for cid, members in enumerate(clusters, start=1):
        placed = _place_cluster(field, sprites, members, rng)
        if len(placed) >= 2:
            cluster_id[placed] = cid
    in_cluster = set(np.flatnonzero(cluster_id))
    free = [i for i in range(len(sprites)) if i not in in_cluster]
    free.sort(key=lambda i: -int(sprites[i].mask.sum()))
    for i in free:
        if i + 1 not in field.origins and not _place_random(field, i + 1, sprites[i], rng):
            break  # the field is full: the caller reports it
    centers = np.full((len(sprites), 2), np.nan)
    for label, origin in field.origins.items():
        sprite = sprites[label - 1]
        centers[label - 1] = (origin[0] + sprite.center_in_patch[0],
                              origin[1] + sprite.center_in_patch[1])
    cluster_id[np.isnan(centers[:, 0])] = 0
    return field.labels, centers, cluster_id


def _place_cluster(field: Field, sprites, members, rng) -> list[int]:
    """Anchor the first member at random, attach each next one; return placed indices."""
    labels = [i + 1 for i in members]
    if not _place_random(field, labels[0], sprites[members[0]], rng):
        return []
    placed = [members[0]]
    chain = rng.random() < 0.5
    for i in members[1:]:
        target = placed[-1] if chain else placed[int(rng.integers(len(placed)))]
        t_sprite, t_origin = sprites[target], field.origins[target + 1]
        t_center = np.array([t_origin[0] + t_sprite.center_in_patch[0],
                             t_origin[1] + t_sprite.center_in_patch[1]])
        if _attach(field, i + 1, sprites[i], target + 1, t_center, labels, rng):
            placed.append(i)
    return placed

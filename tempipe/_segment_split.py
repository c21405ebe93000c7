"""Splitting touching particles: distance-transform watershed merged by dynamics, and
the paper's erode-then-rebuild step.

Every local maximum of the distance transform seeds a basin; adjacent basins are then
merged unless *both* maxima rise at least ``h`` above the pass (saddle) between them.
This gives the markers of h-maxima of the distance transform (a neck narrower than the
particles by ``h`` splits them) at a fraction of the cost of a morphological
reconstruction. A rod, a triangle or a star has one maximum with ridges running down
from it, so it stays whole; two touching discs have two maxima and a low pass between
them, so they split.

For speed the maxima and passes are found on a grid ``factor`` times coarser than the
image (the caller keeps several grid cells per particle radius); only the connected
components that hold several particles are then cut by a full-resolution watershed in
their bounding box, so the cut follows the true neck.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import segmentation

from tempipe._segment_steps import FULL, block_sum, max3x3

#: erode_rebuild compares shifted label images up to this many shifts (erosions under
#: ~2.2 px), beyond which distance transforms per particle are faster.
_MAX_OFFSETS = 13


def split_touching(mask: np.ndarray, h_px: float, factor: int = 1,
                   coarse: tuple[np.ndarray, np.ndarray] | None = None,
                   cut: np.ndarray | None = None, erode_px: float = 0.0,
                   components: tuple[np.ndarray, int] | None = None) -> np.ndarray:
    """Label a particle mask, splitting touching particles at distance-transform necks.

    Parameters
    ----------
    mask : (M, N) ndarray of bool
        Particle mask.
    h_px : float
        Split strength (full-resolution px): two maxima of the distance transform stay
        separate particles when each exceeds the pass between them by at least ``h_px``.
        ``np.inf`` never splits.
    factor : int
        Grid factor for finding maxima and passes (1 = full resolution).
    coarse : ((m, n) bool, (m, n) float) ndarray pair, optional
        ``coarse_distance(mask, factor, cut)`` if already made.
    cut : (M, N) ndarray of bool, optional
        Intensity valleys inside the mask (see :func:`valleys`): the distance transform
        treats them as background, so particles pressed side by side, whose union has
        no neck, still get one maximum each; their pixels are then flooded normally.
    erode_px : float
        Depth of the erode-then-rebuild step applied to the split particles
        (:func:`erode_rebuild`); 0 skips it.
    components : ((M, N) int ndarray, int), optional
        The 8-connected components of ``mask`` and their number, if already labelled.

    Returns
    -------
    (M, N) ndarray of int32
        0 = background, 1..N particles (not necessarily consecutive).
    """
    components, n = components or ndi.label(mask, structure=FULL)
    if n == 0 or not np.isfinite(h_px):
        return components.astype(np.int32)
    if coarse is None:
        coarse = coarse_distance(mask, factor, cut)
    seeds = _dominant_maxima(*coarse, h_px / factor)
    inner = mask if cut is None else mask & ~cut
    return _cut_components(components, n, inner, seeds, factor, erode_px)


def valleys(image: np.ndarray, mask: np.ndarray, depth: float, reach_px: int,
            noise_factor: float = 0.0) -> np.ndarray:
    """Pixels of ``mask`` lying in a narrow intensity valley between two brighter sides.

    For each of 4 directions, the lower of the two pixels ``reach_px`` away on either
    side, minus the pixel itself; a pixel whose best direction exceeds the threshold is
    in a valley (the faint gap between two particles pressed together). Particle edges
    are not valleys: one side of them is background.

    Parameters
    ----------
    image : (M, N) ndarray of float
        Particles bright.
    mask : (M, N) ndarray of bool
        Where to look.
    depth : float
        Minimum valley depth, in intensity units.
    reach_px : int
        Half-width of the valleys looked for.
    noise_factor : float
        The threshold is at least this many times the robust spread of intensity
        differences ``reach_px`` apart inside ``mask`` (the noise of the valley test).

    Returns
    -------
    (M, N) ndarray of bool
    """
    d = reach_px
    pad = np.pad(image, d, mode="edge")
    rows, cols = image.shape
    best = np.full(image.shape, -np.inf, dtype=np.float32)
    for dr, dc in ((0, d), (d, 0), (d, d), (d, -d)):
        ahead = pad[d + dr:d + dr + rows, d + dc:d + dc + cols]
        behind = pad[d - dr:d - dr + rows, d - dc:d - dc + cols]
        np.maximum(best, np.minimum(ahead, behind), out=best)
    if noise_factor > 0:
        depth = max(depth, noise_factor * _difference_noise(image, mask, d))
    return _open_ended(mask & (best - image > depth), mask)


def _open_ended(cut: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Keep the valley lines that reach the background: a gap between two particles
    opens onto the background where their outlines part; texture inside one does not."""
    rows, cols = np.nonzero(cut)
    if rows.size == 0:
        return cut
    padded = np.pad(mask, 1, constant_values=True)    # the image border is not background
    open_px = np.zeros(rows.size, bool)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            open_px |= ~padded[rows + 1 + dr, cols + 1 + dc]
    lines, n = ndi.label(cut, structure=FULL)
    keep = np.zeros(n + 1, bool)
    keep[lines[rows[open_px], cols[open_px]]] = True
    return keep[lines]


def _difference_noise(image, mask, d) -> float:
    """Robust sd (1.4826 MAD) of image[r, c + d] - image[r, c] over pairs inside mask."""
    sub, inside = image[::2], mask[::2]
    both = inside[:, d:] & inside[:, :-d]
    diff = (sub[:, d:] - sub[:, :-d])[both]
    if diff.size < 16:
        return 0.0
    return 1.4826 * float(np.median(np.abs(diff - np.median(diff))))


def coarse_distance(mask: np.ndarray, factor: int,
                    cut: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Block-reduce a mask by ``factor`` (majority; any ``cut`` pixel empties a block)
    and take its distance transform."""
    if factor > 1:
        reduced = block_sum(mask, factor) >= 0.5 * factor * factor
        if cut is not None:
            reduced &= block_sum(cut, factor) == 0
        mask = reduced
    elif cut is not None:
        mask = mask & ~cut
    return mask, ndi.distance_transform_edt(mask).astype(np.float32)


def _dominant_maxima(mask, distance, h) -> np.ndarray:
    """Seed image: the top plateau of each h-significant maximum, labelled by particle."""
    peaks = mask & (distance >= max3x3(distance))
    markers, n = ndi.label(peaks, structure=FULL)
    if n <= 1:
        return markers
    basins = segmentation.watershed(-distance, markers, mask=mask)
    peak = np.zeros(n + 1, dtype=np.float32)
    np.maximum.at(peak, markers[peaks], distance[peaks])
    roots, top = _merge_by_dynamics(basins, distance, peak, h)
    owner = roots[markers]
    return np.where((markers > 0) & (peak[markers] >= top[owner]), owner, 0)


def _saddles(basins: np.ndarray, distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Adjacent basin pairs (K, 2) and the highest pass between each, (K,)."""
    head, tail = slice(1, None), slice(None, -1)
    keys, heights = [], []
    n1 = int(basins.max()) + 1
    for sa, sb in (((slice(None), head), (slice(None), tail)),
                   ((head, slice(None)), (tail, slice(None)))):
        a, b = basins[sa], basins[sb]
        sel = (a != b) & (a > 0) & (b > 0)
        lo = np.minimum(a[sel], b[sel]).astype(np.int64)
        hi = np.maximum(a[sel], b[sel]).astype(np.int64)
        keys.append(lo * n1 + hi)
        heights.append(np.minimum(distance[sa][sel], distance[sb][sel]))
    keys, heights = np.concatenate(keys), np.concatenate(heights)
    order = np.lexsort((-heights, keys))          # per pair, highest pass first
    keys, heights = keys[order], heights[order]
    first = np.r_[True, keys[1:] != keys[:-1]] if keys.size else np.zeros(0, bool)
    keys, heights = keys[first], heights[first]
    return np.stack([keys // n1, keys % n1], axis=1), heights


def _merge_by_dynamics(basins, distance, peak, h) -> tuple[np.ndarray, np.ndarray]:
    """Union-find over basin adjacencies, highest pass first.

    A region whose peak rises less than ``h`` above the pass to a neighbouring region is
    absorbed by it (its maximum is not an h-maximum). Returns the root of each basin and
    the peak height of each root.
    """
    pairs, heights = _saddles(basins, distance)
    parent = list(range(peak.size))
    top = peak.astype(np.float64)

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for k in np.argsort(-heights, kind="stable"):
        ra, rb = find(pairs[k, 0]), find(pairs[k, 1])
        if ra != rb and min(top[ra], top[rb]) - heights[k] < h:
            if top[ra] < top[rb]:
                ra, rb = rb, ra
            parent[rb] = ra
    roots = np.array([find(i) for i in range(peak.size)])
    roots[0] = 0
    return roots, top


def _cut_components(components, n, inner, seeds, factor, erode_px) -> np.ndarray:
    """Full-resolution watershed in each component that holds several seeds."""
    rows, cols = np.nonzero(seeds)
    owners = seeds[rows, cols]
    # the full-resolution component under the centre of each seed cell
    r_mid = np.minimum(rows * factor + factor // 2, components.shape[0] - 1)
    c_mid = np.minimum(cols * factor + factor // 2, components.shape[1] - 1)
    comp = components[r_mid, c_mid]
    pairs = np.unique(np.stack([comp, owners], axis=1)[comp > 0], axis=0)
    counts = np.bincount(pairs[:, 0], minlength=n + 1)
    out = components.astype(np.int32)
    next_label = n + 1
    slices = ndi.find_objects(components)
    lut = np.zeros(int(owners.max(initial=0)) + 1, np.int32)
    for k in np.flatnonzero(counts >= 2):
        sl = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in slices[k - 1])
        region = components[sl] == k
        markers = _upsampled_seeds(seeds, pairs[pairs[:, 0] == k, 1], sl, factor, lut)
        markers = markers[:region.shape[0], :region.shape[1]] * region
        distance = ndi.distance_transform_edt(region & inner[sl])
        pieces = segmentation.watershed(-distance, markers, connectivity=2, mask=region)
        pieces = erode_rebuild(pieces, erode_px)
        out[sl][region] = np.where(pieces[region] > 0, pieces[region] + next_label - 1, 0)
        next_label += int(pieces.max())
    return out


def _upsampled_seeds(seeds, owners, sl, factor, lut) -> np.ndarray:
    """Seeds of ``owners`` (numbered 1..K) on the full-resolution grid of crop ``sl``.

    ``lut``: zeros, one entry per seed id (reused: it is left as zeros on return).
    """
    (r0, r1), (c0, c1) = ((s.start // factor, -(-s.stop // factor)) for s in sl)
    sub = seeds[r0:r1, c0:c1]
    lut[owners] = np.arange(1, owners.size + 1)
    up = lut[sub]
    lut[owners] = 0
    if factor > 1:
        up = np.repeat(np.repeat(up, factor, axis=0), factor, axis=1)
    return up[sl[0].start - r0 * factor:, sl[1].start - c0 * factor:]


def erode_rebuild(labels: np.ndarray, depth_px: float) -> np.ndarray:
    """The paper's erode-then-rebuild step, per particle.

    Each particle is eroded by ``depth_px`` within its own region (so the erosion also
    works from the watershed line between touching particles), which drops thin bridges
    and slivers of overlap, then rebuilt by dilating the eroded core by the same depth
    inside its own region: a morphological opening per particle. A particle thinner than
    ``2 * depth_px`` is kept whole. The segmentation applies it to split particles only,
    so isolated particles keep their sharp corners.

    Parameters
    ----------
    labels : (M, N) ndarray of int
        Particles (a crop around a group of touching particles, or a whole image).
    depth_px : float
        Erosion (= rebuild) depth in pixels; 0 returns ``labels`` unchanged.

    Returns
    -------
    (M, N) ndarray of int32
        Labels with each particle opened (removed pixels become background).

    Examples
    --------
    >>> lab = np.zeros((9, 12), int); lab[2:7, 1:6] = 1; lab[4, 6:11] = 1
    >>> out = erode_rebuild(lab, 1.0)
    >>> int(out[4, 7:].max()), int(out[3:6, 2:5].min())   # spur gone, body kept
    (0, 1)
    """
    out = labels.astype(np.int32, copy=True)
    if depth_px <= 0 or not out.any():
        return out
    reach = int(np.floor(depth_px))
    offsets = [(dr, dc) for dr in range(-reach, reach + 1) for dc in range(-reach, reach + 1)
               if not np.sqrt(float(dr * dr + dc * dc)) > depth_px]
    if len(offsets) > _MAX_OFFSETS:
        return _erode_rebuild_each(out, depth_px)
    # A pixel is in its particle's core when every pixel within depth_px of it (inside the
    # array) has its label: the same test as distance_transform_edt(region) > depth_px,
    # for all particles at once. It is rebuilt when a core pixel of its own particle lies
    # within depth_px. Particles without a core are kept whole.
    rows, cols = out.shape
    padded = np.pad(out, reach, constant_values=-1)          # -1: outside the array
    core = out > 0
    for dr, dc in offsets:
        near = padded[reach + dr:reach + dr + rows, reach + dc:reach + dc + cols]
        core &= (near == out) | (near == -1)
    has_core = np.bincount(out[core], minlength=int(out.max()) + 1) > 0
    padded = np.pad(np.where(core, out, 0), reach)
    kept = ~has_core[out]
    for dr, dc in offsets:
        kept |= padded[reach + dr:reach + dr + rows, reach + dc:reach + dc + cols] == out
    out[~kept] = 0
    return out


def _erode_rebuild_each(out: np.ndarray, depth_px: float) -> np.ndarray:
    """:func:`erode_rebuild` particle by particle with distance transforms (deep erosions)."""
    margin = int(np.ceil(depth_px)) + 1
    for lab, sl in enumerate(ndi.find_objects(out), start=1):
        if sl is None:
            continue
        sl = tuple(slice(max(s.start - margin, 0), s.stop + margin) for s in sl)
        region = out[sl] == lab
        core = ndi.distance_transform_edt(region) > depth_px
        if core.any():
            out[sl][region & (ndi.distance_transform_edt(~core) > depth_px)] = 0
    return out

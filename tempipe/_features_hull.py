"""Convex hull features of :mod:`tempipe.features`: convex area and perimeter, Feret
diameters and angles, for all particles at once (definitions in that module's docstring).

Particles are given as their horizontal pixel runs (``features._row_runs``, labels 1..n).
"""

from __future__ import annotations

import numpy as np

_CHORD_BUDGET = 1 << 20  # vertex pairs per vectorised hull chunk (~16 MB of float64)


def fold_deg(angle):
    """Fold angles (degrees) of undirected lines into (-90, 90]."""
    return 90.0 - np.mod(90.0 - np.asarray(angle, float), 180.0)


def hull_features(runs, n):
    """Convex area and perimeter, Feret diameters and angles from one hull per particle.

    H, the hull of each particle's pixel centres, comes from :func:`_hull_polygons` (all
    particles at once). The rest is computed on (m, K) vertex arrays holding particles of
    similar K (so memory stays bounded), padded by repeating the last vertex.
    """
    verts, first, sizes = _hull_polygons(runs, n)
    order, out, start = np.argsort(sizes, kind="stable"), np.empty((6, n)), 0
    while start < n:  # chunks of about _CHORD_BUDGET vertex pairs
        stop = min(n, start + max(1, _CHORD_BUDGET // sizes[order[start]] ** 2))
        while stop - start > 1 and (stop - start) * sizes[order[stop - 1]] ** 2 > _CHORD_BUDGET:
            stop = start + (stop - start) // 2
        chunk = order[start:stop]
        k = sizes[chunk].max()
        pick = first[chunk, None] + np.minimum(np.arange(k)[None, :], sizes[chunk, None] - 1)
        out[:, chunk] = _polygon_measures(verts[pick].astype(float))
        start = stop
    names = ("convex_area_px", "convex_perimeter_px", "max_feret_diameter_px",
             "max_feret_angle_deg", "min_feret_diameter_px", "min_feret_angle_deg")
    return dict(zip(names, out))


def _hull_polygons(runs, n):
    """Convex hull H of every particle's pixel centres, for all particles at once.

    Its vertices are leftmost or rightmost centres of their rows. Going down the rows, the
    leftmost centres are reduced to their convex envelope by dropping, in passes, every
    centre that lies on or right of the segment between its neighbours (such a centre lies
    in H, so dropping it never changes H); likewise the rightmost. H is the left chain
    downwards then the right chain upwards (a particle on one line gives a degenerate
    polygon, measured correctly all the same).

    Returns
    -------
    verts : (V, 2) int ndarray
        Vertices (row, col), each particle's in order around its hull.
    first, sizes : (n,) int ndarrays
        Where each particle's vertices start in ``verts``, and how many there are.
    """
    label, row = runs["label"], runs["row"]
    new_row = np.r_[True, (label[1:] != label[:-1]) | (row[1:] != row[:-1])]
    starts = np.flatnonzero(new_row)
    ends = np.r_[starts[1:], label.size] - 1
    group, rows = label[starts], row[starts]
    left = _envelope(group, rows, runs["c0"][starts], -1)  # runs are in raster order
    right = _envelope(group, rows, runs["c1"][ends], 1)
    verts = np.concatenate([np.stack([rows[left], runs["c0"][starts][left]], axis=1),
                            np.stack([rows[right], runs["c1"][ends][right]], axis=1)])
    owner = np.concatenate([group[left], group[right]])
    side = np.r_[np.zeros(left.size, np.int64), np.ones(right.size, np.int64)]
    order = np.lexsort((np.where(side == 0, verts[:, 0], -verts[:, 0]), side, owner))
    verts, owner = verts[order], owner[order]
    sizes = np.bincount(owner, minlength=n + 1)[1:]
    return verts, np.cumsum(sizes) - sizes, sizes


def _envelope(group, y, x, side):
    """Indices of the points kept on the convex envelope of each group's chain.

    Points are sorted by group, then by strictly increasing ``y``; ``side`` -1 keeps the
    envelope on the small-``x`` side, +1 on the large-``x`` side. A group's first and last
    points are always kept.
    """
    alive = np.arange(y.size)
    while alive.size > 2:
        g, yy, xx = group[alive], y[alive], x[alive]
        inner = (g[1:-1] == g[:-2]) & (g[1:-1] == g[2:])
        # x of the middle point against the chord between its neighbours, at its y
        lhs = (xx[1:-1] - xx[:-2]) * (yy[2:] - yy[:-2])
        rhs = (xx[2:] - xx[:-2]) * (yy[1:-1] - yy[:-2])
        drop = inner & ((lhs >= rhs) if side < 0 else (lhs <= rhs))
        if not drop.any():
            break
        alive = alive[np.r_[True, ~drop, True]]
    return alive


def _polygon_measures(v):
    """Hull measures of (m, K, 2) lattice polygons H (vertices in order, padded by repeats).

    The hull of the pixel *squares* is H plus a unit square (Minkowski sum): its perimeter is
    that of H + 4, its chords are those of H lengthened corner to corner, its width in a
    direction is that of H plus |cos| + |sin|, and its edges have the directions of H's edges
    and of the two axes (the minimum width is found across one of them).
    """
    m = len(v)
    edge = np.roll(v, -1, axis=1) - v  # zero on the padding
    # Pick's theorem: lattice points in H = area + boundary points / 2 + 1
    twice_area = np.abs((v[..., 0] * edge[..., 1] - v[..., 1] * edge[..., 0]).sum(axis=1))
    boundary = np.gcd(edge[..., 0].astype(np.int64), edge[..., 1].astype(np.int64)).sum(axis=1)
    chord = v[:, :, None, :] - v[:, None, :, :]
    chord += np.where(chord >= 0, 1.0, -1.0)  # corner to opposite corner
    chord = chord.reshape(m, -1, 2)
    best = chord[np.arange(m), np.argmax(np.einsum("nij,nij->ni", chord, chord), axis=1)]
    length = np.hypot(edge[..., 0], edge[..., 1])
    normal = np.stack([-edge[..., 1], edge[..., 0]], axis=2) / np.maximum(length, 1e-12)[..., None]
    normal = np.concatenate([normal, np.broadcast_to(np.eye(2), (m, 2, 2))], axis=1)
    reach = np.abs(normal).sum(axis=2)  # width of the unit square across each normal
    widths = np.ptp(np.einsum("nkc,njc->nkj", v, normal), axis=1) + reach
    widths[reach == 0] = np.inf  # padding edges have no direction
    e = np.argmin(widths, axis=1)
    thin = normal[np.arange(m), e]
    return ((twice_area + boundary) / 2.0 + 1.0, length.sum(axis=1) + 4.0,
            np.hypot(best[:, 0], best[:, 1]),
            fold_deg(np.degrees(np.arctan2(-best[:, 0], best[:, 1]))),
            widths[np.arange(m), e], fold_deg(np.degrees(np.arctan2(-thin[:, 0], thin[:, 1]))))

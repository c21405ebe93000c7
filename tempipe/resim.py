"""Re-simulation: render each particle's predicted shape and compare it with its mask.

The paper checks its CNN on experimental particles by re-simulating the predicted
(p, d, l_ratio) and computing the Jaccard index with the particle (~0.8 there). Here the
predicted shape is drawn in the particle's crop window (:func:`tempipe.crops.crop_masks`)
with the particle's area, its centroid on the particle's centroid, at the rotation (over
a grid covering the shape's symmetry period) that fits best; ``resim_jaccard`` is the
intersection over union of the two masks on that grid.

Speed: pixels that lie inside (or outside) the shape at every rotation are counted once
(:func:`_radius_bounds`); the others are tested for all rotations in a few array passes,
without trigonometry. A grid point at polar position ``(rho, psi)`` from the shape's
origin, ``psi`` measured from the shape's own axis (``theta + phi``), lies inside
``rho <= scale * R(psi)`` exactly when

    (L |C| / scale)**p + (|S| / scale)**p <= 1,   C + iS = rho * exp(i d psi / 2),

and ``C + iS`` follows from the rotated coordinates ``x + iy = rho * exp(i psi)`` by
complex multiplication (``d`` even) or one stable complex square root (``d`` odd).
"""

from __future__ import annotations

import numpy as np

from tempipe.errors import ParameterError

#: Rotations tried per symmetry period (2 pi / d).
N_ROTATIONS = 24
_THETA = np.linspace(0.0, 2 * np.pi, 720, endpoint=False)
#: Tests (pixels x rotations) per array pass: keeps the work in cache.
_CHUNK_ELEMENTS = 1 << 15
#: Relative margin of the radius bounds (far above rounding, far below a pixel).
_SAFETY = 1e-7


def _unit_shape_moments(p, d: int, l_ratio) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area and centroid (x right, y up) of the eq. 1 curves with scale 1 and phi = 0.

    ``p`` and ``l_ratio`` are (n,) arrays sharing one integer ``d``; the integrals are sums
    over the 720 angles of ``_THETA``.
    """
    arg = 0.5 * d * _THETA
    a = l_ratio[:, None] * np.abs(np.cos(arg))[None]
    b = np.broadcast_to(np.abs(np.sin(arg))[None], a.shape)
    m = np.maximum(a, b)
    with np.errstate(divide="ignore"):
        total = (np.exp(p[:, None] * np.log(a / m)) + np.exp(p[:, None] * np.log(b / m)))
    r = 1.0 / (m * np.exp(np.log(total) / p[:, None]))
    step = 2 * np.pi / _THETA.size
    r2 = r * r
    area = 0.5 * r2.sum(axis=1) * step
    r3 = r2 * r
    cx = (r3 @ np.cos(_THETA)) * step / 3 / area
    cy = (r3 @ np.sin(_THETA)) * step / 3 / area
    return area, cx, cy


def _half_angle_multiple(x: np.ndarray, y: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """``C + iS = rho * exp(i d psi / 2)`` for points ``x + iy = rho * exp(i psi)``."""
    if d == 2:
        return x, y
    rho = np.sqrt(x * x + y * y)
    if d % 2:  # h = sqrt(x + iy) (modulus sqrt(rho)), the cancellation-free way
        big = np.sqrt(0.5 * (rho + np.abs(x)))
        small = 0.5 * y / np.where(big > 0, big, 1.0)      # y = 0 where big = 0
        hx = np.where(x >= 0, big, np.abs(small))
        hy = np.where(x >= 0, small, np.copysign(big, y))
        n = d
    else:
        hx, hy, n = x, y, d // 2
    cx, cy = hx, hy
    for _ in range(n - 1):
        cx, cy = cx * hx - cy * hy, cx * hy + cy * hx
    if n > 1 or d % 2:  # modulus rho ** (d / 2) (odd d) or rho ** n (even d) back to rho
        power = 0.5 * d - 1 if d % 2 else n - 1
        norm = np.exp(-power * np.log(np.where(rho > 0, rho, 1.0)))
        cx, cy = cx * norm, cy * norm
    return cx, cy


def _power(values: np.ndarray, factor: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``exp(p * log(|values| * factor))``, computed in place in ``values``."""
    np.abs(values, out=values)
    values *= factor
    np.log(values, out=values)
    values *= p
    return np.exp(values, out=values)


def _radius_bounds(p: np.ndarray, l_ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest radius of the eq. 1 curves of scale 1, whatever d and phi.

    ``1 / R`` is the p-norm of ``(L |cos|, |sin|)``, whose 2-norm lies between 1 and L;
    in two dimensions the p-norm lies between 1 and ``2 ** (1/p - 1/2)`` times the 2-norm,
    and it is at least the max-norm, which is at least ``L / sqrt(1 + L**2)``.
    """
    q = 2.0 ** (1.0 / p - 0.5)
    largest = np.minimum(1.0 / (np.minimum(q, 1.0) * np.minimum(l_ratio, 1.0)),
                         np.sqrt(1.0 + l_ratio ** 2) / l_ratio)
    return 1.0 / (np.maximum(q, 1.0) * np.maximum(l_ratio, 1.0)), largest


def _jaccards(inside_mask: np.ndarray, p: np.ndarray, d: int, l_ratio: np.ndarray
              ) -> np.ndarray:
    """Best-rotation Jaccard of (n, S, S) non-empty masks with their shapes of one ``d``.

    Pixels nearer the particle's centroid than the smallest radius of its shape (less the
    shift of the shape's origin with the rotation) are inside at every rotation, those
    beyond the largest radius (plus that shift) outside; only the ring between is tested
    rotation by rotation (:data:`_CHUNK_ELEMENTS` tests per array pass).
    """
    size = inside_mask.shape[1]
    area_px = inside_mask.sum(axis=(1, 2)).astype(float)
    grid = np.arange(size, dtype=float)
    c_row = (inside_mask.sum(axis=2) @ grid) / area_px
    c_col = (inside_mask.sum(axis=1) @ grid) / area_px
    area_unit, cx, cy = _unit_shape_moments(p, d, l_ratio)
    scale = np.sqrt(area_px / area_unit)
    phis = np.arange(N_ROTATIONS) * (2 * np.pi / d / N_ROTATIONS)
    cos, sin = np.cos(phis), np.sin(phis)
    # A phase phi rotates the shape by -phi: its centroid rotates with it.
    off_x = scale[:, None] * (cx[:, None] * cos + cy[:, None] * sin)
    off_y = scale[:, None] * (cy[:, None] * cos - cx[:, None] * sin)
    origin_col, origin_row = c_col[:, None] - off_x, c_row[:, None] + off_y      # (n, R)
    r_min, r_max = _radius_bounds(p, l_ratio)
    shift = scale * np.hypot(cx, cy)
    rho = np.hypot(grid[None, :, None] - c_row[:, None, None],
                   grid[None, None, :] - c_col[:, None, None])
    sure = rho < ((scale * r_min - shift) * (1 - _SAFETY))[:, None, None]
    ring = ~sure & (rho < ((scale * r_max + shift) * (1 + _SAFETY))[:, None, None])
    shape_px = np.repeat(sure.sum(axis=(1, 2))[:, None], N_ROTATIONS, axis=1)
    inter = np.repeat((sure & inside_mask).sum(axis=(1, 2))[:, None], N_ROTATIONS, axis=1)
    k, rows, cols = np.nonzero(ring)                                   # grouped by particle
    hit = inside_mask[k, rows, cols]
    step = max(1, _CHUNK_ELEMENTS // N_ROTATIONS)
    for a in range(0, k.size, step):
        kk, sl = k[a:a + step], slice(a, a + step)
        x = cols[sl, None] - origin_col[kk]                            # right
        y = origin_row[kk] - rows[sl, None]                            # up
        u = x * cos                                                    # rotated by phi:
        u -= y * sin                                                   # u = x cos - y sin
        x *= sin
        y *= cos
        x += y                                                         # v = x sin + y cos
        big_c, big_s = _half_angle_multiple(u, x, d)
        inv, pp = 1.0 / scale[kk, None], p[kk, None]
        with np.errstate(divide="ignore", over="ignore"):
            inside = _power(big_c, l_ratio[kk, None] * inv, pp)        # (L |C| / s) ** p
            inside += _power(big_s, inv, pp)                           # + (|S| / s) ** p
        inside = inside <= 1.0
        starts = np.flatnonzero(np.r_[True, kk[1:] != kk[:-1]])
        shape_px[kk[starts]] += np.add.reduceat(inside, starts, axis=0, dtype=np.int64)
        inter[kk[starts]] += np.add.reduceat(inside & hit[sl, None], starts, axis=0,
                                             dtype=np.int64)
    union = shape_px + area_px[:, None] - inter
    return (inter / np.maximum(union, 1)).max(axis=1)


def resim_jaccard(masks: np.ndarray, p, d, l_ratio) -> np.ndarray:
    """Best-rotation Jaccard index between each mask and its re-simulated shape.

    Parameters
    ----------
    masks : (N, S, S) ndarray
        Particle masks in their crop windows (:func:`tempipe.crops.crop_masks`), > 0.5 inside.
    p, d, l_ratio : (N,) array_like
        Predicted parameters; ``d`` is rounded to the nearest integer >= 1 (the shape's
        symmetry), as a re-simulated particle must be a closed curve.

    Returns
    -------
    (N,) float ndarray
        Jaccard index in [0, 1] (NaN for an empty mask).

    Examples
    --------
    >>> from tempipe.crops import crop_masks
    >>> yy, xx = np.mgrid[:60, :60]
    >>> lab = ((yy - 30) ** 2 + (xx - 30) ** 2 <= 15 ** 2).astype(int)
    >>> float(resim_jaccard(crop_masks(lab, 32), [2.0], [2.0], [1.0])[0]) > 0.95
    True
    """
    masks = np.asarray(masks)
    p, d, l_ratio = (np.asarray(v, dtype=float).ravel() for v in (p, d, l_ratio))
    if masks.ndim != 3 or not (len(masks) == p.size == d.size == l_ratio.size):
        raise ParameterError(f"resim_jaccard needs (N, S, S) masks and N parameters each; got "
                             f"masks {masks.shape}, p {p.size}, d {d.size}, l_ratio {l_ratio.size}.")
    if not (np.all(p > 0) and np.all(l_ratio > 0) and np.all(np.isfinite(d))):
        raise ParameterError("resim_jaccard needs p > 0, l_ratio > 0 and finite d.")
    d_int = np.maximum(np.rint(d), 1.0).astype(np.int64)
    inside = masks > 0.5
    out = np.full(len(masks), np.nan)
    filled = inside.any(axis=(1, 2)) if masks.size else np.zeros(len(masks), bool)
    for value in np.unique(d_int[filled]):
        for k in np.array_split(np.flatnonzero(filled & (d_int == value)),
                                max(1, int(np.sum(filled & (d_int == value))) // 256)):
            out[k] = _jaccards(inside[k], p[k], int(value), l_ratio[k])
    return out

"""Rendering of the shape model (eq. 1 of Williamson et al. 2022) into pixels.

Private helpers of :mod:`tempipe.simulate`: the polar curve, the geometry of the shape it
encloses, anti-aliased coverage of one particle, and TEM-like image formation. The public
names are re-exported by :mod:`tempipe.simulate`; import them from there.

Geometry conventions (used everywhere in :mod:`tempipe.simulate`): pixel ``(i, j)`` has
its centre at row ``i``, column ``j`` (the scikit-image convention, so a region's
``centroid`` is directly comparable); the polar angle ``theta`` is measured from the
+column axis, counter-clockwise as the image is displayed (rows grow downwards).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from tempipe.errors import ParameterError

#: Points on the theta grid used to find the maximum radius and the shape's moments.
THETA_GRID_POINTS = 2048
_REFINE_POINTS = 65
#: Sub-samples per pixel side on particle boundaries.
SUPERSAMPLE = 4


def as_generator(rng) -> np.random.Generator:
    """Return ``rng`` as a Generator (a seed, None or a Generator is accepted)."""
    if isinstance(rng, np.random.Generator):
        return rng
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"rng={rng!r} is not a seed or a numpy.random.Generator; pass an int seed, "
            "None, or numpy.random.default_rng(...).") from exc


def check_shape_params(p, d, l_ratio) -> None:
    """Raise ParameterError unless p, d and l_ratio are finite and positive."""
    for name, value in (("p", p), ("d", d), ("l_ratio", l_ratio)):
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"{name}={value!r} is not numeric; pass a positive number.") \
                from exc
        if not np.all(np.isfinite(arr) & (arr > 0)):
            raise ParameterError(
                f"{name} must be finite and > 0 (eq. 1 of the shape model), got {value!r}.")


def radius_unchecked(theta, p, d, l_ratio, phi=0.0, dtype=float) -> np.ndarray:
    """Eq. 1 without input validation (hot loop of the renderer); see superformula_radius.

    ``dtype=np.float32`` computes in single precision (the renderer's inside test: 1.7x
    faster; on 144 particles one sub-sample of 328,339 pixels changed, by 1/16).

    Evaluated as ``1 / (m * (1 + (n/m)**p)**(1/p))`` with ``m = max(a, b)`` and
    ``n = min(a, b)``, which is algebraically identical to eq. 1 (one of ``a/m``, ``b/m`` is 1)
    but cannot underflow for large ``p`` and takes one power fewer.
    """
    arg = (np.asarray(d, dtype=dtype) / 2) * (np.asarray(theta, dtype=dtype)
                                              + np.asarray(phi, dtype=dtype))
    a = np.asarray(l_ratio, dtype=dtype) * np.abs(np.cos(arg))
    b = np.abs(np.sin(arg))
    m = np.maximum(a, b)
    p = np.asarray(p, dtype=dtype)
    return 1 / (m * (1 + (np.minimum(a, b) / m) ** p) ** (1 / p))


def superformula_radius(theta, p, d, l_ratio, phi=0.0) -> np.ndarray:
    """Polar radius of the shape model, eq. 1 of the paper.

    ``R = [(L |cos(d/2 (theta + phi))|)^p + |sin(d/2 (theta + phi))|^p]^(-1/p)``.

    Parameters
    ----------
    theta : array_like
        Polar angle(s) in radians.
    p : float or array_like
        Curvature exponent (p-norm), > 0. ``p = 2`` with ``l_ratio = 1`` is a circle,
        large ``p`` gives sharp corners, ``p < 1`` concave sides.
    d : float or array_like
        Number of major axes, > 0. ``d = 2`` is the superellipse (squares, rectangles,
        rhombi), ``d = 3`` triangles (with ``l_ratio > 1``), larger ``d`` stars and gears.
    l_ratio : float or array_like
        Axis ratio L, > 0. ``R = 1 / L`` where the cosine term is 1 (``theta + phi = 0``).
    phi : float or array_like, optional
        Rotational phase shift in radians.

    Returns
    -------
    ndarray
        ``R``, broadcast over all arguments (float64).

    Raises
    ------
    ParameterError
        If p, d or l_ratio is not finite and positive.

    Examples
    --------
    >>> superformula_radius([0.0, 0.7], p=2, d=2, l_ratio=1.0)
    array([1., 1.])
    """
    check_shape_params(p, d, l_ratio)
    return radius_unchecked(theta, p, d, l_ratio, phi)


def max_radius(p, d, l_ratio) -> np.ndarray:
    """Maximum over theta of eq. 1 for each parameter set, shape ``np.broadcast(p, d, l)``.

    A grid of THETA_GRID_POINTS angles, then a finer local grid around the best point
    (relative error < 1e-8 even for the cusps of p < 1 shapes).
    """
    p, d, l_ratio = (np.asarray(v, dtype=float)[..., None] for v in np.broadcast_arrays(
        p, d, l_ratio))
    step = 2 * np.pi / THETA_GRID_POINTS
    grid = np.arange(THETA_GRID_POINTS) * step
    coarse = radius_unchecked(grid, p, d, l_ratio)
    best = grid[np.argmax(coarse, axis=-1)][..., None]
    return refined_max(coarse.max(axis=-1), best, step, p, d, l_ratio)


def refined_max(coarse_max, best_theta, step, p, d, l_ratio, phi=0.0,
                points: int = _REFINE_POINTS) -> np.ndarray:
    """The larger of ``coarse_max`` and eq. 1's maximum on ``points`` angles spanning
    ``best_theta +- step`` (the grid neighbours of the best coarse angle; shapes as
    ``p`` etc. with a trailing axis of length 1)."""
    fine = best_theta + np.linspace(-step, step, points)
    return np.maximum(coarse_max, radius_unchecked(fine, p, d, l_ratio, phi).max(axis=-1))


def unit_geometry(p, d, l_ratio) -> dict[str, np.ndarray]:
    """Area and moment-ellipse axes of the shape scaled to maximum radius 1.

    Exact polar integrals on a fine theta grid (``A = 1/2 int r^2``, first moments
    ``int r^3/3 (cos, sin)``, second moments ``int r^4/4 (cos^2, cos sin, sin^2)``).
    The axis lengths follow scikit-image's ``major_axis_length`` definition (4 sqrt of
    the eigenvalues of the covariance), so ``radius_px = major_px / major`` renders a
    particle of the wanted regionprops major axis.

    Returns
    -------
    dict
        ``area``, ``major``, ``minor``, ``r_max`` arrays of shape ``np.broadcast(p, d, l)``.
    """
    r_max = max_radius(p, d, l_ratio)
    p, d, l_ratio = (np.asarray(v, dtype=float)[..., None] for v in np.broadcast_arrays(
        p, d, l_ratio))
    theta = np.arange(THETA_GRID_POINTS) * (2 * np.pi / THETA_GRID_POINTS)
    r = radius_unchecked(theta, p, d, l_ratio) / r_max[..., None]
    dtheta = 2 * np.pi / THETA_GRID_POINTS
    cos, sin = np.cos(theta), np.sin(theta)
    area = 0.5 * (r ** 2).sum(-1) * dtheta
    mean_c = (r ** 3 * cos).sum(-1) * dtheta / 3 / area
    mean_s = (r ** 3 * sin).sum(-1) * dtheta / 3 / area
    r4 = r ** 4 * dtheta / 4
    cc = (r4 * cos ** 2).sum(-1) / area - mean_c ** 2
    ss = (r4 * sin ** 2).sum(-1) / area - mean_s ** 2
    cs = (r4 * cos * sin).sum(-1) / area - mean_c * mean_s
    half_gap = np.sqrt(((cc - ss) / 2) ** 2 + cs ** 2)
    lam_major, lam_minor = (cc + ss) / 2 + half_gap, (cc + ss) / 2 - half_gap
    return {"area": area, "major": 4 * np.sqrt(lam_major),
            "minor": 4 * np.sqrt(np.maximum(lam_minor, 0.0)), "r_max": r_max}


def _inside(d_row, d_col, shape: tuple, scale: float) -> np.ndarray:
    """True where offsets (d_row, d_col) from the centre lie inside the scaled curve."""
    p, d, l_ratio, phi = shape
    d_row, d_col = np.asarray(d_row, np.float32), np.asarray(d_col, np.float32)
    theta = np.arctan2(-d_row, d_col)
    return np.hypot(d_row, d_col) <= np.float32(scale) * radius_unchecked(
        theta, p, d, l_ratio, phi, dtype=np.float32)


def _mixed_3x3(inside: np.ndarray) -> np.ndarray:
    """Pixels whose 3 x 3 neighbourhood holds both inside and outside pixels: the 3 x 3
    dilation less the erosion, by box sums (2x faster than the two binary morphology calls).

    The outermost rows and columns are never marked: ``inside`` must have its two outermost
    rows and columns outside (``coverage_patch`` pads the particle by 2 px), where the
    morphology calls would not mark them either.
    """
    values = inside.view(np.uint8)
    rows = values[:-2] + values[1:-1] + values[2:]
    box = rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]
    mixed = np.zeros(inside.shape, bool)
    mixed[1:-1, 1:-1] = (box > 0) & (box < 9)
    return mixed


def coverage_patch(shape: tuple, radius_px: float, center_rc, supersample: int = 4,
                   margin_px: int = 0, r_max: float | None = None):
    """Anti-aliased area coverage of one particle on its own bounding patch.

    Parameters
    ----------
    shape : tuple
        ``(p, d, l_ratio, phi)`` of eq. 1 (assumed valid).
    radius_px : float
        Maximum polar radius of the particle in pixels.
    center_rc : (float, float)
        Polar origin (row, col) in image coordinates.
    supersample : int
        Sub-samples per pixel side on boundary pixels; 1 = pixel-centre test only.
    margin_px : int
        Extra empty pixels around the particle (room for dilations).
    r_max : float, optional
        Precomputed ``max_radius(p, d, l_ratio)``.

    Returns
    -------
    patch : (H, W) float32 ndarray
        Coverage in [0, 1].
    origin_rc : (int, int)
        Image position of ``patch[0, 0]``; translating the centre by whole pixels
        translates ``origin_rc`` by the same amount and leaves ``patch`` unchanged.

    Notes
    -----
    Interior pixels are decided by their centre; only pixels whose 3 x 3 neighbourhood
    contains both inside and outside centres are supersampled. Features thinner than a
    pixel lying entirely between pixel centres are missed (their coverage is < 0.5).
    """
    if r_max is None:
        r_max = float(max_radius(*shape[:3]))
    scale = radius_px / r_max
    c_row, c_col = float(center_rc[0]), float(center_rc[1])
    pad = margin_px + 2
    r0, c0 = int(np.floor(c_row - radius_px)) - pad, int(np.floor(c_col - radius_px)) - pad
    r1, c1 = int(np.ceil(c_row + radius_px)) + pad + 1, int(np.ceil(c_col + radius_px)) + pad + 1
    rows = np.arange(r0, r1, dtype=float)[:, None] - c_row
    cols = np.arange(c0, c1, dtype=float)[None, :] - c_col
    inside = _inside(rows, cols, shape, scale)
    patch = inside.astype(np.float32)
    if supersample > 1:
        edge = _mixed_3x3(inside)
        er, ec = np.nonzero(edge)
        sub = (np.arange(supersample) + 0.5) / supersample - 0.5
        sub_r = rows[er, 0][:, None, None] + sub[None, :, None]
        sub_c = cols[0, ec][:, None, None] + sub[None, None, :]
        patch[er, ec] = _inside(sub_r, sub_c, shape, scale).mean(axis=(1, 2))
    return patch, (r0, c0)


def paste_slices(origin_rc, patch_shape, image_shape):
    """Slices (image, patch) of the overlap of a patch placed at origin_rc, or None."""
    sl_img, sl_patch = [], []
    for o, n, m in zip(origin_rc, patch_shape, image_shape):
        lo, hi = max(o, 0), min(o + n, m)
        if hi <= lo:
            return None
        sl_img.append(slice(lo, hi))
        sl_patch.append(slice(lo - o, hi - o))
    return tuple(sl_img), tuple(sl_patch)


def particle_coverage(p, d, l_ratio, phi, radius_px, shape, center_rc,
                      supersample: int = 4) -> np.ndarray:
    """Anti-aliased area coverage (0..1) of one particle on an image grid.

    Parameters
    ----------
    p, d, l_ratio, phi : float
        Shape parameters of eq. 1 (phi in radians).
    radius_px : float
        Maximum polar radius of the particle in pixels (eq. 1 is normalised by its
        maximum over theta, so the particle spans ``2 * radius_px`` at most).
    shape : (int, int)
        Output shape (M, N).
    center_rc : (float, float)
        Polar origin (row, col); pixel centres are at integer coordinates.
    supersample : int, optional
        Sub-samples per pixel side (``supersample**2`` per boundary pixel).

    Returns
    -------
    (M, N) float32 ndarray
        Fraction of each pixel covered by the particle.

    Raises
    ------
    ParameterError
        For non-positive p, d, l_ratio, radius_px or supersample, or a bad shape.

    Examples
    --------
    >>> cov = particle_coverage(2, 2, 1.0, 0.0, 10.0, (32, 32), (16, 16))
    >>> round(float(cov.sum()) / (np.pi * 100), 2)
    1.0
    """
    check_shape_params(p, d, l_ratio)
    if not (np.isfinite(radius_px) and radius_px > 0):
        raise ParameterError(f"radius_px must be finite and > 0, got {radius_px!r}.")
    if int(supersample) != supersample or supersample < 1:
        raise ParameterError(f"supersample must be an integer >= 1, got {supersample!r}.")
    shape = check_image_shape(shape, minimum=1)
    out = np.zeros(shape, dtype=np.float32)
    patch, origin = coverage_patch((p, d, l_ratio, phi), radius_px, center_rc, int(supersample))
    slices = paste_slices(origin, patch.shape, shape)
    if slices is not None:
        out[slices[0]] = patch[slices[1]]
    return out


def check_image_shape(shape, minimum: int) -> tuple[int, int]:
    """Validate a 2-D image shape; return it as a tuple of ints."""
    try:
        rows, cols = (int(v) for v in shape)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"shape must be (rows, cols), got {shape!r}.") from exc
    if rows < minimum or cols < minimum:
        raise ParameterError(
            f"shape={shape!r} is too small: each side must be >= {minimum} px.")
    return rows, cols


def smooth_noise(shape, rng: np.random.Generator, sigma_px: float,
                 white: str = "normal") -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation, (M, N) float32.

    ``white="uniform"`` filters uniform instead of normal white noise (5x cheaper draws; the
    filter sums ``4 pi sigma_px**2`` or more of them, so the field is close to normal with
    the same correlation: the training set's texture).
    """
    if white not in ("normal", "uniform"):
        raise ParameterError(f"white must be 'normal' or 'uniform', got {white!r}.")
    if white == "uniform":
        noise = rng.random(shape, dtype=np.float32)
        noise -= np.float32(0.5)
        gain = np.sqrt(12.0)
    else:
        noise = rng.standard_normal(shape, dtype=np.float32)
        gain = 1.0
    # The sd of white noise after a 2-D Gaussian filter of width s is 1 / (2 sqrt(pi) s).
    return ndi.gaussian_filter(noise, sigma_px) * np.float32(gain * 2 * np.sqrt(np.pi) * sigma_px)


def illumination_field(shape, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Smooth uneven illumination: a linear ramp in a random direction plus a vignette.

    The ramp spans ``amplitude`` peak to peak; the vignette darkens by up to
    ``amplitude / 2`` away from a random bright point. (M, N) float32 around 1. Both terms
    are sums of a row term and a column term, added once at the end.
    """
    if amplitude == 0:
        return np.ones(shape, dtype=np.float32)
    rows = np.linspace(-0.5, 0.5, shape[0])
    cols = np.linspace(-0.5, 0.5, shape[1])
    angle = rng.uniform(0, 2 * np.pi)
    hot_r, hot_c = rng.uniform(-0.3, 0.3, size=2)
    by_row = (amplitude * (np.sin(angle) * rows / np.sqrt(2))
              - 0.5 * amplitude * ((rows - hot_r) ** 2 / 1.28))
    by_col = (1.0 + amplitude * (np.cos(angle) * cols / np.sqrt(2))
              - 0.5 * amplitude * ((cols - hot_c) ** 2 / 1.28))
    out = np.empty(shape, np.float32)
    np.add(by_row[:, None], by_col[None, :], out=out, casting="same_kind")
    return out


#: Background level of bright-particle (HAADF/SEM-like) images, before illumination.
BRIGHT_BACKGROUND = 0.2


def form_image(mass: np.ndarray, rng: np.random.Generator, *, dose: float | None,
               blur_px: float, texture: float, illumination: float,
               polarity: str = "dark", fast_noise: bool = False) -> np.ndarray:
    """TEM-like image from a particle 'mass' map (sum of coverage x contrast).

    Steps: internal particle texture, amorphous-carbon texture (Gaussian-filtered noise),
    dark-on-bright (``"dark"``: ``(1 - mass)``) or bright-on-dark (``"bright"``:
    ``BRIGHT_BACKGROUND + mass``) contrast, uneven illumination, Gaussian optical blur,
    Poisson shot noise at ``dose`` electrons per pixel per unit intensity (None = none).

    Parameters
    ----------
    mass : (M, N) ndarray
        Particle signal in [0, 1): 0 on the background.
    fast_noise : bool
        Draw the shot noise from its normal approximation (mean and variance
        ``signal * dose``, clipped at 0) in single precision, 4x faster than Poisson draws
        (5 vs 22 ms on 0.46 Mpx), and the textures from uniform white noise
        (:func:`smooth_noise`): for the training set, whose dose gives >= 8 counts per
        background pixel and >= ~5 on the darkest particles; there the two noises share
        mean and variance and differ by a skew of ``1 / sqrt(counts)``.

    Returns
    -------
    (M, N) float32 ndarray
        Intensity; the dark-polarity background is near 1.
    """
    shape = mass.shape
    mass = mass.astype(np.float32)
    white = "uniform" if fast_noise else "normal"
    carbon = smooth_noise(shape, rng, sigma_px=1.5, white=white)
    grain = smooth_noise(shape, rng, sigma_px=1.0, white=white)
    mass = np.clip(mass * (1.0 + texture * grain), 0.0, 0.95)
    if polarity == "dark":
        signal = (1.0 - mass) * (1.0 + texture * carbon)
    else:
        signal = BRIGHT_BACKGROUND * (1.0 + 2 * texture * carbon) + mass
    signal *= illumination_field(shape, rng, illumination)
    if blur_px > 0:
        signal = ndi.gaussian_filter(signal, blur_px)
    signal = np.clip(signal, 0.0, None)
    if dose is not None and fast_noise:
        counts = signal * np.float32(dose)
        counts += np.sqrt(counts) * rng.standard_normal(shape, dtype=np.float32)
        signal = np.clip(counts, 0.0, None, out=counts) / np.float32(dose)
    elif dose is not None:
        signal = rng.poisson(signal * dose) / dose
    return signal.astype(np.float32)


def render_particle(p, d, l_ratio, phi, radius_px, size, *, contrast=0.5, noise=0.05,
                    blur_px=1.0, texture=0.02, rng=None):
    """One TEM-like particle image (dark particle, bright background) and its mask.

    Parameters
    ----------
    p, d, l_ratio, phi : float
        Shape parameters of eq. 1 (phi in radians).
    radius_px : float
        Maximum polar radius in pixels; ``2 * radius_px <= size``.
    size : int
        Side of the square output, >= 8.
    contrast : float
        Particle darkening in (0, 0.95]: the particle is ``1 - contrast`` on a background 1.
    noise : float
        Relative shot noise on the background (Poisson at dose ``1 / noise**2``); 0 = none.
    blur_px : float
        Gaussian blur sigma in pixels.
    texture : float
        Relative amplitude of carbon-film and particle texture.
    rng : int, Generator or None
        None draws fresh randomness; pass a seed or Generator to reproduce.

    Returns
    -------
    image : (size, size) float32 ndarray
    mask : (size, size) bool ndarray
        Pixels covered at least half by the particle; its polar origin is the image centre.

    Raises
    ------
    ParameterError
        Bad shape parameters, or a particle that does not fit in ``size``.

    Examples
    --------
    >>> image, mask = render_particle(4, 2, 1.2, 0.3, 20, 48, rng=0)
    >>> image.shape, bool(mask[24, 24])
    ((48, 48), True)
    """
    check_shape_params(p, d, l_ratio)
    if int(size) != size or size < 8:
        raise ParameterError(f"size must be an integer >= 8, got {size!r}.")
    if not (np.isfinite(radius_px) and 0 < radius_px <= size / 2):
        raise ParameterError(f"radius_px={radius_px!r} must be > 0 and fit in the image "
                             f"(<= size / 2 = {size / 2}); increase size or reduce radius_px.")
    if not (np.isfinite(noise) and noise >= 0):
        raise ParameterError(f"noise must be >= 0 (0 = no shot noise), got {noise!r}.")
    check_imaging(None, contrast, blur_px, texture, 0.0)
    center = ((size - 1) / 2, (size - 1) / 2)
    cover = particle_coverage(p, d, l_ratio, phi, radius_px, (size, size), center, SUPERSAMPLE)
    image = form_image(cover * contrast, as_generator(rng),
                       dose=noise ** -2 if noise > 0 else None, blur_px=blur_px,
                       texture=texture, illumination=0.0)
    return image, cover >= 0.5


def check_imaging(dose, contrast, blur_px, texture, illumination) -> None:
    """Raise ParameterError naming the first image-formation knob out of its range."""
    checks = [("dose", dose, dose is None or (np.isfinite(dose) and dose > 0),
               "> 0 electrons per pixel (None for no shot noise)"),
              ("contrast", contrast, 0 < contrast <= 0.95, "in (0, 0.95]"),
              ("blur_px", blur_px, 0 <= blur_px < 20, "in [0, 20)"),
              ("texture", texture, 0 <= texture <= 0.5, "in [0, 0.5]"),
              ("illumination", illumination, 0 <= illumination < 1, "in [0, 1)")]
    for name, value, ok, rule in checks:
        if not ok:
            raise ParameterError(f"{name}={value!r} is out of range: it must be {rule}.")

"""Noise-aware tests of :func:`tempipe.segment.segment`: is there anything in the field?

Real micrographs of particles differ from a field of pure noise in that their two
intensity classes (particles, background) stand far apart compared with the pixel noise
left after denoising; the spread *within* the background class is no good yardstick, as
textured supports and close-packed particles make it large. The pixel noise is measured
with Immerkaer's operator (insensitive to smooth structure) and carried through the
denoising filter by its noise gain.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import filters

#: Immerkaer's noise operator (difference of two Laplacians; zero on planes).
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
#: Noise estimates never go below this (normalised intensity units, a fraction of one
#: 8-bit grey level), so noise-free synthetic images do not divide by zero.
NOISE_FLOOR = 1e-3


def pixel_noise(image: np.ndarray) -> float:
    """Robust standard deviation of white pixel noise (Immerkaer 1996).

    Parameters
    ----------
    image : (M, N) ndarray of float

    Returns
    -------
    float
        Noise sd in the units of ``image`` (0 for an image of planes).

    Examples
    --------
    >>> noise = np.random.default_rng(0).normal(0, 0.1, (200, 200))
    >>> round(pixel_noise(noise + np.add.outer(np.arange(200.), np.arange(200.))), 2)
    0.1
    """
    response = ndi.convolve(image.astype(np.float32, copy=False), _IMMERKAER)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.mean(np.abs(response)) / 6)


def gaussian_gain(sigma_px: float) -> float:
    """Factor by which a 2-D Gaussian filter of ``sigma_px`` scales white-noise sd."""
    if sigma_px <= 0:
        return 1.0
    half = int(3 * sigma_px + 1)
    kernel = np.exp(-np.arange(-half, half + 1) ** 2 / (2 * sigma_px ** 2))
    kernel /= kernel.sum()
    return float(np.sum(kernel ** 2))


def signal_to_noise(coarse: np.ndarray, shading: np.ndarray, sigma_px: float) -> float:
    """Separation of the two Otsu classes over the pixel noise left after smoothing.

    Parameters
    ----------
    coarse : (m, n) ndarray of float
        Coarse view of the image, particles bright.
    shading : (m, n) ndarray of float
        Smooth background (illumination) to take out first.
    sigma_px : float
        Denoising scale on the coarse grid.

    Returns
    -------
    float
        Class-median separation in units of the smoothed noise sd: about 1.5 for pure
        noise, tens to thousands for micrographs of particles, 0 for a smooth ramp.
    """
    noise = max(pixel_noise(coarse), NOISE_FLOOR) * gaussian_gain(sigma_px)
    flat = ndi.gaussian_filter(coarse - shading, sigma_px) if sigma_px > 0 else coarse - shading
    if float(np.ptp(flat)) <= 0:
        return 0.0
    threshold = filters.threshold_otsu(flat)
    low, high = flat[flat <= threshold], flat[flat > threshold]
    if low.size == 0 or high.size == 0:
        return 0.0
    return float(np.median(high) - np.median(low)) / noise


def significant_blobs(image: np.ndarray, mask: np.ndarray, peak: float,
                      min_ratio: float) -> np.ndarray:
    """Keep the blobs of ``mask`` that rise to ``peak`` and whose outline is a marked edge.

    The first test is a hysteresis threshold: a blob cut out of the grain of a support
    rarely reaches far above the threshold. The second looks at the outline: a particle's
    follows a steep intensity edge, while a blob cut out of noise or grain has an outline
    where the gradient is no steeper than anywhere else. A blob (8-connected) is kept when
    its brightest pixel reaches ``peak`` and the mean gradient magnitude along its outline
    is at least ``min_ratio`` times the image's median gradient magnitude.

    Parameters
    ----------
    image : (M, N) ndarray of float
        Denoised image the mask was thresholded from, particles bright.
    mask : (M, N) ndarray of bool
    peak : float
        Level the brightest pixel of a blob must reach (-inf: no hysteresis).
    min_ratio : float
        Required outline-to-median gradient ratio (0: no edge test).

    Returns
    -------
    (M, N) ndarray of bool

    Examples
    --------
    >>> from skimage.draw import disk
    >>> im = np.random.default_rng(1).normal(0, 0.2, (100, 100)); im[disk((50, 50), 15)] += 1
    >>> smooth = ndi.gaussian_filter(im, 1.5)
    >>> mask = smooth > 0.1                      # the disc and blobs of noise
    >>> kept = significant_blobs(smooth, mask, -np.inf, 2.0)
    >>> int(ndi.label(mask)[1]), int(ndi.label(kept)[1]), bool(kept[50, 50])
    (9, 1, True)
    """
    if not mask.any() or (min_ratio <= 0 and not np.isfinite(peak)):
        return mask
    blobs, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    keep = np.ones(n + 1, bool)
    if np.isfinite(peak):
        keep &= np.bincount(blobs[mask & (image >= peak)], minlength=n + 1) > 0
    if min_ratio > 0:
        keep &= _outline_steepness(image, mask, blobs, n) >= min_ratio
    keep[0] = False
    return keep[blobs]


def _outline_steepness(image, mask, blobs, n) -> np.ndarray:
    """(n + 1,) mean gradient magnitude on each blob's outline over the image median.

    The gradient is ``np.gradient``'s (central differences, one-sided at the edges), in
    float32, but evaluated only where it is used: on every other row and column (the
    median) and on the outline.
    """
    image = image.astype(np.float32, copy=False)
    rows, cols = np.arange(0, image.shape[0], 2), np.arange(0, image.shape[1], 2)
    reference = max(float(np.median(_gradient_magnitude(image, rows[:, None], cols[None, :]))),
                    1e-12)
    inner = mask.copy()                  # pixels whose 4 neighbours are all in the mask
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    outline = mask & ~inner
    r, c = np.nonzero(outline)
    owner = blobs[r, c]
    total = np.bincount(owner, weights=_gradient_magnitude(image, r, c), minlength=n + 1)
    count = np.bincount(owner, minlength=n + 1)
    return total / np.maximum(count, 1) / reference


def _gradient_magnitude(image, r, c) -> np.ndarray:
    """``np.hypot(*np.gradient(image))`` at the pixels ``(r, c)`` (broadcast index arrays)."""
    def along(index, size):
        ahead, behind = np.minimum(index + 1, size - 1), np.maximum(index - 1, 0)
        step = np.where((index > 0) & (index < size - 1), 2.0, 1.0).astype(image.dtype)
        return ahead, behind, step

    ahead, behind, step = along(r, image.shape[0])
    grad_r = (image[ahead, c] - image[behind, c]) / step
    ahead, behind, step = along(c, image.shape[1])
    grad_c = (image[r, ahead] - image[r, behind]) / step
    return np.hypot(grad_r, grad_c)

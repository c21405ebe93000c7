"""Single-particle crops: the shape CNN's input, for micrographs and for its training set.

The CNN is trained on simulated particles passed through this very module, so the
convention below *is* the model's input definition; change it only together with the model.

For each particle (label id ``k``), with its bounding box of ``h`` rows by ``w`` columns:

1. **Window.** A square centred on the bounding-box centre, of side
   ``s = max(h, w) * (1 + 2 * margin)`` pixels, not rounded: the particle keeps its aspect
   ratio and its longer side always spans ``size / (1 + 2 * margin)`` crop pixels (49.2 of 64
   by default), whatever its size in the micrograph. Parts of the window outside the image
   are background.
2. **Polarity.** ``b`` = median of the background pixels (label 0) inside the window (the
   whole image's background median when the window has none), ``m`` = median of the
   particle's pixels. ``polarity=None`` detects the image's polarity from the sign of
   ``m - b`` over all particles (majority): "dark" particles on a bright background
   (bright-field TEM) or "bright" ones (HAADF, SEM); it can be forced.
3. **Intensity.** Inside particle ``k``: ``(x - b) / (m - b)`` clipped to [0, 2], so the
   particle is ~1 whatever its polarity, contrast or exposure. Every other pixel (background,
   neighbouring particles, outside the image) is exactly 0: a crop is the particle's own mask
   times its normalised intensity. A particle without contrast in the image's polarity
   (``m - b`` of the wrong sign or zero, or no background anywhere) gets its bare mask (1).
4. **Resampling** to ``size`` x ``size``: Gaussian anti-aliasing with sigma =
   ``(s / size - 1) / 2`` when shrinking, then bilinear interpolation at the output pixel
   centres, exactly as ``skimage.transform.resize(window, (size, size), order=1,
   anti_aliasing=True)`` would on the sub-pixel window. Values stay in [0, 2].

Rows follow ``measure_particles``: ascending label ids, or the order of ``label_ids``.
:func:`crop_masks` gives the same windows of the binary masks (values in [0, 1], > 0.5 inside)
for comparing re-simulated shapes (IoU).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import ndimage as ndi

from tempipe.errors import ParameterError

CROP_SIZE = 64
CROP_MARGIN = 0.15
_POLARITIES = (None, "dark", "bright")


def crop_particles(image, labels, size=CROP_SIZE, *, margin=CROP_MARGIN, label_ids=None,
                   polarity=None) -> np.ndarray:
    """Normalised, masked, square crops of the particles (the CNN's input).

    Parameters
    ----------
    image : (M, N) ndarray of real
        The micrograph (finite values).
    labels : (M, N) ndarray of int
        Label image, 0 = background.
    size : int
        Side of each crop in pixels (>= 4).
    margin : float
        Background left on each side of the particle's longer side, as a fraction of it.
    label_ids : sequence of int, optional
        Particles to crop, in this order; default every label id, ascending.
    polarity : {None, "dark", "bright"}
        Particles darker or brighter than the background; None detects it.

    Returns
    -------
    (K, size, size) ndarray of float32
        One crop per particle, ~1 on the particle and exactly 0 elsewhere (module docstring).

    Raises
    ------
    ParameterError
        Arrays of the wrong type or shape, non-finite image values, a bad ``size``,
        ``margin`` or ``polarity``, or a ``label_ids`` entry absent from ``labels``.

    Examples
    --------
    >>> lab = np.zeros((40, 40), int); lab[10:20, 5:25] = 1
    >>> img = np.where(lab > 0, 0.2, 1.0)
    >>> crops = crop_particles(img, lab, 32)
    >>> crops.shape, float(crops.max()), float(crops[0, 0, 0])
    ((1, 32, 32), 1.0, 0.0)
    """
    image = _check_image(image)
    lab, keys, boxes = _prepare(labels, image.shape, size, margin, label_ids)
    if polarity not in _POLARITIES:
        raise ParameterError(f"polarity must be None, 'dark' or 'bright', got {polarity!r}.")
    if not keys.size:
        return np.zeros((0, size, size), np.float32)
    background = functools.cache(lambda: _median(image[lab == 0]))  # only if needed
    parts = [_particle_pixels(image, lab, k, box, margin, background)
             for k, box in zip(keys, boxes)]  # (mask, pixel values, b, m) per particle
    contrast = np.array([m - b for _, _, b, m in parts])
    sign = _polarity_sign(contrast, polarity)
    out = np.empty((keys.size, size, size), np.float32)
    for i, ((mask, pixels, b, _), box) in enumerate(zip(parts, boxes)):
        values = mask.astype(np.float32)
        if sign * contrast[i] > 0:  # false for NaN (no background anywhere)
            values[mask] = np.clip((pixels - b) / contrast[i], 0.0, 2.0)
        out[i] = _resample(values, box, size, margin)
    return out


def crop_masks(labels, size=CROP_SIZE, *, margin=CROP_MARGIN, label_ids=None) -> np.ndarray:
    """The binary masks of the particles in the same windows as :func:`crop_particles`.

    Parameters
    ----------
    labels : (M, N) ndarray of int
        Label image, 0 = background.
    size, margin, label_ids
        As in :func:`crop_particles`.

    Returns
    -------
    (K, size, size) ndarray of float32
        Anti-aliased masks in [0, 1]; ``> 0.5`` is the particle.

    Raises
    ------
    ParameterError
        As in :func:`crop_particles`.
    """
    labels = np.asarray(labels)
    lab, keys, boxes = _prepare(labels, labels.shape, size, margin, label_ids)
    out = np.empty((keys.size, size, size), np.float32)
    for i, (k, box) in enumerate(zip(keys, boxes)):
        out[i] = _resample((lab[box] == k).astype(np.float32), box, size, margin)
    return out


def _check_image(image):
    image = np.asarray(image)
    if image.ndim != 2 or not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
        raise ParameterError(f"image must be a 2-D array of real numbers, got a "
                             f"{image.ndim}-D {image.dtype} array.")
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise ParameterError("image contains NaN or infinite values; replace them "
                             "(e.g. np.nan_to_num) before cropping.")
    return image


def _prepare(labels, shape, size, margin, label_ids):
    """Validate; return the label image to compare with, the particles' keys and bbox slices."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ParameterError(f"labels must be a 2-D integer label image, got a {labels.ndim}-D "
                             f"{labels.dtype} array; label a binary mask first.")
    if labels.shape != shape:
        raise ParameterError(f"labels has shape {labels.shape} but image has shape {shape}.")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 4:
        raise ParameterError(f"size must be an integer >= 4 (crop side in pixels), got {size!r}.")
    if isinstance(margin, bool) or not isinstance(margin, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(margin) and 0 <= margin <= 5):
        raise ParameterError(f"margin must be a number in [0, 5] (fraction of the particle's "
                             f"longer side), got {margin!r}.")
    top = int(labels.max()) if labels.size else 0
    lab = labels
    uniq = None
    if top > labels.size:  # sparse huge ids: work on their ranks, 0 staying background
        uniq, inverse = np.unique(labels, return_inverse=True)
        lab = inverse.reshape(labels.shape)
        if uniq[0] != 0:
            uniq, lab = np.concatenate([[0], uniq]), lab + 1
    boxes = ndi.find_objects(lab)
    if label_ids is None:
        keys = np.array([i + 1 for i, b in enumerate(boxes) if b is not None], np.int64)
    else:
        keys = _keys_for(label_ids, uniq, boxes)
    return lab, keys, [boxes[k - 1] for k in keys]


def _keys_for(label_ids, uniq, boxes):
    """Positions in ``lab`` of the requested label ids, checking that each one exists."""
    ids = np.asarray(label_ids)
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise ParameterError(f"label_ids must be a 1-D sequence of integer ids, "
                             f"got {label_ids!r}.")
    ids = ids.astype(np.int64)
    if uniq is not None:
        pos = np.clip(np.searchsorted(uniq, ids), 0, uniq.size - 1)
        keys = np.where(uniq[pos] == ids, pos, -1)
    else:
        keys = ids
    found = np.array([0 < k <= len(boxes) and boxes[k - 1] is not None for k in keys], bool)
    if not found.all():
        raise ParameterError(f"label_ids {ids[~found].tolist()[:10]} are not particles of "
                             "labels; pass ids present in the label image (0 is background).")
    return keys


def _polarity_sign(contrast, polarity):
    """+1 when particles are brighter than the background, -1 when darker."""
    if polarity is not None:
        return -1.0 if polarity == "dark" else 1.0
    votes = np.sign(contrast[np.isfinite(contrast)]).sum()
    return 1.0 if votes > 0 else -1.0  # ties go to bright-field TEM's dark particles


def _window(box, margin):
    """Centre (row, col) and side (pixels) of the square window of a bounding box."""
    (r, c) = box
    centre = ((r.start + r.stop - 1) / 2.0, (c.start + c.stop - 1) / 2.0)
    side = max(r.stop - r.start, c.stop - c.start) * (1.0 + 2.0 * margin)
    return centre, side


def _median(values):
    return float(np.median(values)) if values.size else math.nan


def _particle_pixels(image, lab, key, box, margin, background):
    """Mask and pixel values of one particle in its bbox, b (window background) and m."""
    (cr, cc), side = _window(box, margin)
    half = side / 2.0
    rows = slice(max(0, math.ceil(cr - half)), math.floor(cr + half) + 1)  # centres inside
    cols = slice(max(0, math.ceil(cc - half)), math.floor(cc + half) + 1)
    around = image[rows, cols][lab[rows, cols] == 0]
    mask = lab[box] == key
    pixels = image[box][mask].astype(np.float64)
    b = _median(around) if around.size else background()
    return mask, pixels, b, float(np.median(pixels))


def _resample(values, box, size, margin):
    """Map the bounding-box values (zero outside) of one particle onto its size x size crop."""
    (cr, cc), side = _window(box, margin)
    scale = side / size  # source pixels per crop pixel
    sigma = max(0.0, (scale - 1.0) / 2.0)
    pad = math.ceil(4.0 * sigma) + 1
    values = np.pad(values, pad)
    if sigma > 0:
        values = ndi.gaussian_filter(values, sigma, mode="constant", cval=0.0)
    origin = (box[0].start - pad, box[1].start - pad)  # image position of values[0, 0]
    offset = (cr - side / 2.0 + scale / 2.0 - origin[0], cc - side / 2.0 + scale / 2.0 - origin[1])
    return ndi.affine_transform(values, (scale, scale), offset=offset, output_shape=(size, size),
                                order=1, mode="constant", cval=0.0)

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
3b. **Context** (``context > 0``, a model option): background pixels (label 0) within
   ``context`` image pixels of the mask keep their normalised intensity too, clipped to
   [0, 2]. Segmentation rounds off thin spikes and sharp tips (blur fades them below its
   threshold); the ring shows the network the faint image that is left of them. Other
   particles stay 0.
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
#: Particles whose longer bbox side falls in the same bin of this many pixels are
#: resampled in one batched matrix product, of at most this many box pixels (memory).
_BUCKET_PX = 16
_STACK_PIXELS = 1 << 22
_POLARITIES = (None, "dark", "bright")


def crop_particles(image, labels, size=CROP_SIZE, *, margin=CROP_MARGIN, label_ids=None,
                   polarity=None, context=0) -> np.ndarray:
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
    context : int
        Width in image pixels of the ring of background kept around the mask (step 3b of
        the module docstring); 0 keeps the mask only. A model's crops use its own
        ``ShapeModel.context_px``.

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
    if isinstance(context, bool) or not isinstance(context, (int, np.integer)) \
            or not 0 <= context <= 64:
        raise ParameterError(f"context must be an integer number of pixels in [0, 64], "
                             f"got {context!r}.")
    if not keys.size:
        return np.zeros((0, size, size), np.float32)
    background = functools.cache(lambda: _median(image[lab == 0]))  # only if needed
    parts = [_particle_pixels(image, lab, k, box, margin, background)
             for k, box in zip(keys, boxes)]  # (mask, pixel values, b, m) per particle
    contrast = np.array([m - b for _, _, b, m in parts])
    sign = _polarity_sign(contrast, polarity)
    values, spans = [], []
    for i, (mask, pixels, b, _) in enumerate(parts):
        window = mask.astype(np.float32)
        span = boxes[i]
        if sign * contrast[i] > 0:  # false for NaN (no background anywhere)
            window[mask] = np.clip((pixels - b) / contrast[i], 0.0, 2.0)
            if context:
                window, span = _with_context(image, lab, keys[i], boxes[i], window, context,
                                             b, contrast[i])
        values.append(window)
        spans.append(span)
    return _resample(values, boxes, size, margin, high=2.0, spans=spans)


def _with_context(image, lab, key, box, window, context, b, contrast):
    """The particle's values with the background ring of ``context`` px (step 3b) around it.

    Returns the values on the bounding box grown by ``context`` (clipped to the image) and
    that grown box.
    """
    rows = slice(max(0, box[0].start - context), min(lab.shape[0], box[0].stop + context))
    cols = slice(max(0, box[1].start - context), min(lab.shape[1], box[1].stop + context))
    grown = np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.float32)
    inner = (slice(box[0].start - rows.start, box[0].stop - rows.start),
             slice(box[1].start - cols.start, box[1].stop - cols.start))
    grown[inner] = window
    own = np.zeros(grown.shape, bool)
    own[inner] = lab[box] == key
    ring = (ndi.distance_transform_edt(~own) <= context) & (lab[rows, cols] == 0)
    grown[ring] = np.clip((image[rows, cols][ring] - b) / contrast, 0.0, 2.0)
    return grown, (rows, cols)


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
    return _resample([lab[box] == k for k, box in zip(keys, boxes)], boxes, size, margin,
                     high=1.0)


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
    """``float(np.median(values))`` (NaN when empty), without np.median's overhead."""
    n = values.size
    if n == 0:
        return math.nan
    k = n // 2
    if n % 2:
        return float(np.partition(values, k)[k])
    part = np.partition(values, (k - 1, k))
    return float((part[k - 1] + part[k]) / 2)


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
    return mask, pixels, b, _median(pixels)


def _resample(values, boxes, size, margin, high, spans=None):
    """Map each particle's bounding-box values (zero outside) onto its size x size crop.

    ``spans`` (default ``boxes``) are the image slices ``values`` cover, when they reach
    beyond the bounding box that places the window.

    Anti-aliasing (Gaussian, truncated at 4 sigma, zero outside the box) and bilinear
    sampling are both separable linear maps, so each crop is ``Wr @ values @ Wc.T`` with
    one (size, h) matrix per axis (:func:`_axis_weights`); particles of similar size are
    stacked and multiplied in one batched product. Same numbers as
    ``ndi.gaussian_filter(..., mode="constant")`` then ``ndi.affine_transform(..., order=1)``
    on the zero-padded box, to float32 rounding (clipped to [0, ``high``], the range of
    the values).
    """
    out = np.zeros((len(boxes), size, size), np.float32)
    if not boxes:
        return out
    spans = boxes if spans is None else spans
    sides = np.array([max(b[0].stop - b[0].start, b[1].stop - b[1].start) for b in boxes]
                     ) * (1.0 + 2.0 * margin)                       # window side (px)
    heights = np.array([b[0].stop - b[0].start for b in spans])
    widths = np.array([b[1].stop - b[1].start for b in spans])
    scale = sides / size                                            # source px per crop px
    sigma = np.maximum(0.0, (scale - 1.0) / 2.0)
    # first sample position, in the coordinates of the values' span (row, col)
    first_r = (np.array([b[0].start + b[0].stop - 1 for b in boxes]) / 2.0 - sides / 2.0
               + scale / 2.0 - np.array([b[0].start for b in spans]))
    first_c = (np.array([b[1].start + b[1].stop - 1 for b in boxes]) / 2.0 - sides / 2.0
               + scale / 2.0 - np.array([b[1].start for b in spans]))
    bucket = np.ceil(np.maximum(heights, widths) / _BUCKET_PX).astype(int)
    for key in np.unique(bucket):
        same = np.flatnonzero(bucket == key)
        per = max(1, _STACK_PIXELS // int(heights[same].max() * widths[same].max()))
        for idx in np.array_split(same, -(-same.size // per)):
            h, w = heights[idx].max(), widths[idx].max()
            stack = np.zeros((idx.size, h, w), np.float32)
            for n, i in enumerate(idx):
                stack[n, :heights[i], :widths[i]] = values[i]
            rows = _axis_weights(first_r[idx], scale[idx], sigma[idx], size, h)
            cols = _axis_weights(first_c[idx], scale[idx], sigma[idx], size, w)
            out[idx] = rows @ stack @ cols.transpose(0, 2, 1)
    return np.clip(out, 0.0, high, out=out)  # rounding of the float32 products


def _axis_weights(first, scale, sigma, size, length):
    """(n, size, length) weights of the samples ``first + scale * o`` (o = 0..size-1) of a
    signal blurred by a Gaussian of ``sigma`` (scipy's kernel: radius int(4 sigma + 0.5))
    and linearly interpolated, on its ``length`` pixels (zero beyond them).

    Sample ``x`` reads pixels ``floor(x) - R .. floor(x) + 1 + R`` only (R the largest
    radius), so the weights are built on that band and scattered into the matrix.
    """
    n = first.size
    x = first[:, None] + scale[:, None] * np.arange(size)[None, :]
    low = np.floor(x)
    frac = (x - low)[:, :, None]
    radius = (4.0 * sigma + 0.5).astype(int)[:, None]
    var = np.where(sigma > 0, sigma * sigma, 1.0)[:, None]        # sigma 0: radius 0
    reach = int(radius.max())
    taps = np.arange(-reach, reach + 2)[None, :]                  # pixel - floor(x)
    kernel = np.where(np.abs(taps) <= radius, np.exp(-0.5 / var * taps ** 2), 0.0)
    kernel /= kernel.sum(axis=1, keepdims=True)                   # K(t), t = -R..R+1

    def k_at(lag):  # K at pixel offsets ``lag`` (0 beyond the band)
        idx = lag + reach
        ok = (idx >= 0) & (idx < taps.size)
        return np.where(ok, kernel[:, np.clip(idx, 0, taps.size - 1)], 0.0)

    # pixel floor(x) + t gets (1 - frac) K(-t) + frac K(1 - t)
    band = ((1.0 - frac) * k_at(-taps[0])[:, None, :]
            + frac * k_at(1 - taps[0])[:, None, :])                # (n, size, taps)
    pixel = low.astype(int)[:, :, None] + taps[None]
    ok = (pixel >= 0) & (pixel < length) & (band != 0)
    out = np.zeros((n, size, length), np.float32)
    sample = np.broadcast_to(np.arange(size)[None, :, None], pixel.shape)
    which = np.broadcast_to(np.arange(n)[:, None, None], pixel.shape)
    out[which[ok], sample[ok], pixel[ok]] = band[ok]
    return out

"""Figure annotations that are not particles: data bars, label boxes and solid scale bars.

Published micrographs carry the microscope's data bar (a uniform band along one edge with
text in it), panel letters in uniform boxes, and solid scale bars. They are uniform to the
grey level, which real micrograph regions almost never are over more than a few pixels,
and they are axis-aligned rectangles. :func:`annotation_mask` finds them, so the
segmentation can keep them out of its intensity statistics (:func:`fill_from_outside`) and
out of its result.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

#: A pixel is uniform when it differs from its right and lower neighbours by at most this
#: share of the image's grey range (8-bit figures: a fraction of one grey level).
FLAT_RANGE = 1e-3
#: Uniform regions smaller than this share of the image are ignored (text specks).
MIN_AREA_FRACTION = 2e-4
#: A region counts as a rectangle when it fills this share of its bounding box (holes,
#: i.e. the text written in it, included).
MIN_FILL = 0.9
#: A bar along an edge spans this share of the image side or more, and is at most
#: ``MAX_BAND`` of the other side thick.
BAND_SPAN = 0.8
MAX_BAND = 0.25
#: Elongation above which an isolated uniform rectangle is a scale bar.
BAR_ASPECT = 4.0
#: Pixels of anti-aliased outline added around each annotation.
MARGIN_PX = 2


def annotation_mask(image: np.ndarray) -> np.ndarray:
    """Pixels of uniform, axis-aligned rectangles drawn on a figure.

    A uniform region (see ``FLAT_RANGE``) is an annotation when it fills its bounding box
    (text inside counted) and is either a band along an image edge (data bar), elongated
    (scale bar), holds text (label box), or touches the image border (corner label);
    saturated particles are not rectangles, and a saturated background is neither a
    rectangle nor a thin band.

    Parameters
    ----------
    image : (M, N) ndarray
        Grey figure.

    Returns
    -------
    (M, N) ndarray of bool
        The bounding boxes of the annotations found, grown by ``MARGIN_PX``.

    Examples
    --------
    >>> im = np.random.default_rng(0).normal(size=(100, 120))
    >>> im[90:, :] = 0.0; im[93:97, 10:40] = 5.0        # a data bar with "text"
    >>> m = annotation_mask(im)
    >>> bool(m[95, 60]), bool(m[40, 60])
    (True, False)
    """
    span = float(np.ptp(image))
    out = np.zeros(image.shape, bool)
    if span <= 0:
        return out
    tol = FLAT_RANGE * span
    flat = np.zeros(image.shape, bool)       # equal to the right and the lower neighbour
    flat[:-1, :-1] = ((np.abs(np.diff(image[:-1], axis=1)) <= tol)
                      & (np.abs(np.diff(image[:, :-1], axis=0)) <= tol))
    min_area = max(MIN_AREA_FRACTION * image.size, 8)
    if flat.sum() < min_area:
        return out
    regions, n = ndi.label(flat)
    if n == 0:
        return out
    areas = np.bincount(regions[flat], minlength=n + 1)
    areas[0] = 0
    slices = ndi.find_objects(regions)
    for k in np.flatnonzero(areas >= min_area):
        sl = slices[k - 1]
        if _is_annotation(regions[sl] == k, sl, image.shape):
            # the box grown by MARGIN_PX (binary dilation), drawn in a window around it
            win = tuple(slice(max(s.start - MARGIN_PX - 1, 0), s.stop + MARGIN_PX + 1)
                        for s in sl)
            box = np.zeros(out[win].shape, bool)
            box[tuple(slice(s.start - w.start, s.stop - w.start) for s, w in zip(sl, win))] = 1
            out[win] |= ndi.binary_dilation(box, iterations=MARGIN_PX)
    return out


def _is_annotation(region: np.ndarray, sl, shape) -> bool:
    """Whether one uniform region (cropped to its bounding box ``sl``) is an annotation."""
    rows, cols = region.shape
    if min(rows, cols) < 2:
        return False
    filled = ndi.binary_fill_holes(region)
    if filled.mean() < MIN_FILL:
        return False
    band = ((cols >= BAND_SPAN * shape[1] and rows <= MAX_BAND * shape[0])
            or (rows >= BAND_SPAN * shape[0] and cols <= MAX_BAND * shape[1]))
    if band:
        return True
    if rows * cols > MAX_BAND * shape[0] * shape[1]:
        return False
    text = (filled & ~region).mean() > 0.01
    border = (sl[0].start <= 2 or sl[1].start <= 2 or sl[0].stop >= shape[0] - 2
              or sl[1].stop >= shape[1] - 2)
    return text or border or max(rows, cols) >= BAR_ASPECT * min(rows, cols)


def fill_from_outside(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Copy of ``image`` whose ``mask`` pixels take the value of the nearest pixel outside.

    Parameters
    ----------
    image : (M, N) ndarray
    mask : (M, N) ndarray of bool
        Pixels to replace; when it covers the whole image, ``image`` is returned as is.

    Returns
    -------
    (M, N) ndarray, same dtype as ``image``
    """
    if not mask.any() or mask.all():
        return image
    out = image.copy()
    blobs, _ = ndi.label(mask, structure=np.ones((3, 3), bool))
    for sl in ndi.find_objects(blobs):
        # The nearest outside pixel lies in the blob's box grown by one pixel whenever that
        # ring holds no masked pixel (clamping any farther pixel to the ring only brings it
        # closer); otherwise search the whole image.
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
        window = mask[box]
        ring = window.copy()
        ring[tuple(slice(s.start - b.start, s.stop - b.start) for s, b in zip(sl, box))] = False
        if ring.any() or window.all():
            box, window = (slice(None), slice(None)), mask
        nearest = ndi.distance_transform_edt(window, return_distances=False,
                                             return_indices=True)
        rows, cols = np.nonzero(window)
        sub = image[box]
        out[box][rows, cols] = sub[nearest[0][rows, cols], nearest[1][rows, cols]]
    return out

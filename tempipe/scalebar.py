"""Find the scale bar drawn on a micrograph and read its label.

A scale bar is a solid, saturated (the image's brightest or darkest level), thin horizontal
rectangle near the top or bottom edge, with a text label above, below or beside it, often
inside an opaque box of the other extreme. :func:`find_scale_bar` finds it from the image's
horizontal runs of saturated pixels: rows whose runs start and end at the same columns
(within a pixel) stack into a slab, and a slab bounded above and below by other levels,
long, thin and clear of the image border is a bar (the edge strips of a label box are not).
Its length is measured to a fraction of a pixel at the half-intensity crossings of its
ends. The label is the nearest line of same-coloured glyphs
(:mod:`tempipe._scalebar_label`); Tesseract reads it (:mod:`tempipe._ocr`) when installed.
:func:`scale_bar_exclusion` gives the region (bar, label and box) whose particles the
pipeline drops.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from tempipe import _ocr
from tempipe._scalebar_label import find_label
from tempipe.errors import ParameterError

#: Fraction of the intensity range counted as "saturated" at either end.
SATURATION_FRACTION = 0.05
#: A bar is at least this many times longer than thick.
MIN_ASPECT = 4.0
#: Thinnest bar, in pixels (one-pixel lines are frame and panel borders).
MIN_THICKNESS_PX = 2
#: Thickest bar, as a fraction of the image height.
MAX_THICKNESS_FRACTION = 0.06
#: Shortest bar as a fraction of the image width (and never under 10 px); longest bar.
MIN_LENGTH_FRACTION, MIN_LENGTH_PX, MAX_LENGTH_FRACTION = 0.03, 10, 0.7
#: A bar lies within this fraction of the image height from the top or bottom edge.
EDGE_BAND_FRACTION = 0.35
#: Rows of one bar start and end at the same columns within this many pixels.
END_TOLERANCE_PX = 1
#: The rows just above and below a bar hold at most this fraction of saturated pixels.
MAX_EDGE_FILL = 0.5


@dataclass(frozen=True)
class ScaleBar:
    """A scale bar found on an image.

    Attributes
    ----------
    length_px : float
        Length of the bar in pixels, between the half-intensity crossings of its ends.
    bbox : tuple of int
        ``(min_row, min_col, max_row, max_col)`` of the bar, max exclusive.
    value_nm : float or None
        The bar's length in nm read from its label; None when not read or not trusted.
    label_bbox : tuple of int or None
        Box covering bar, text and the opaque label box if any; None when neither text nor
        box was found.
    text : str or None
        The label as read by Tesseract (None without Tesseract or text).
    confidence : float or None
        Tesseract's mean word confidence (0-100) for ``text``.
    color : str
        ``"white"`` (the image's brightest level) or ``"black"`` bar.
    """

    length_px: float
    bbox: tuple[int, int, int, int]
    value_nm: float | None = None
    label_bbox: tuple[int, int, int, int] | None = None
    text: str | None = None
    confidence: float | None = None
    color: str = "white"


def _row_runs(mask: np.ndarray, min_len: int) -> np.ndarray:
    """Horizontal runs of True at least ``min_len`` long: (K, 3) int array row, start, stop."""
    rows, cols = mask.shape
    padded = np.zeros((rows, cols + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded.ravel())
    starts, stops = np.flatnonzero(step == 1) + 1, np.flatnonzero(step == -1) + 1
    row = starts // (cols + 2)
    runs = np.stack([row, starts - row * (cols + 2) - 1, stops - row * (cols + 2) - 1], axis=1)
    return runs[runs[:, 2] - runs[:, 1] >= min_len]


def _slabs(runs: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Stack runs of consecutive rows with the same ends (within a pixel) into boxes."""
    open_slabs: list[list[int]] = []  # [first_row, last_row, start, stop, min_start, max_stop]
    done = []
    for row, start, stop in runs.tolist():
        match = next((s for s in open_slabs if s[1] == row - 1
                      and abs(s[2] - start) <= END_TOLERANCE_PX
                      and abs(s[3] - stop) <= END_TOLERANCE_PX), None)
        if match is None:
            open_slabs.append([row, row, start, stop, start, stop])
        else:
            match[1], match[4], match[5] = row, min(match[4], start), max(match[5], stop)
        done += [s for s in open_slabs if s[1] < row - 1]
        open_slabs = [s for s in open_slabs if s[1] >= row - 1]
    return [(s[0], s[4], s[1] + 1, s[5]) for s in done + open_slabs]


def _is_bar(box, mask: np.ndarray) -> bool:
    """Shape, position and closed top and bottom edges of a slab."""
    (r0, c0, r1, c1), (rows, cols) = box, mask.shape
    thick, length = r1 - r0, c1 - c0
    if not (MIN_THICKNESS_PX <= thick <= max(MIN_THICKNESS_PX, MAX_THICKNESS_FRACTION * rows)):
        return False
    if not (max(MIN_LENGTH_PX, MIN_LENGTH_FRACTION * cols) <= length
            <= MAX_LENGTH_FRACTION * cols) or length < MIN_ASPECT * thick:
        return False
    if r0 == 0 or c0 == 0 or r1 == rows or c1 == cols:
        return False
    band = EDGE_BAND_FRACTION * rows
    if not (r0 < band or r1 > rows - band):
        return False
    return bool(mask[r0 - 1, c0:c1].mean() <= MAX_EDGE_FILL
                and mask[r1, c0:c1].mean() <= MAX_EDGE_FILL)


def _bar_candidates(image: np.ndarray) -> list[tuple[tuple[int, int, int, int], str]]:
    """Bar-like slabs of both polarities, edges of label boxes and outlines removed."""
    lo, hi = float(image.min()), float(image.max())
    tol = SATURATION_FRACTION * (hi - lo)
    min_len = max(MIN_LENGTH_PX, int(MIN_LENGTH_FRACTION * image.shape[1]))
    found = []
    for color, mask in (("white", image >= hi - tol), ("black", image <= lo + tol)):
        found += [(box, color) for box in _slabs(_row_runs(mask, min_len)) if _is_bar(box, mask)]
    levels = {"white": hi, "black": lo}
    return [c for c in found if not _is_box_edge(c, found, image, levels)]


def _is_box_edge(cand, found, image: np.ndarray, levels: dict) -> bool:
    """True for the strip of a label box (or outline) along a shorter bar of the other colour.

    The strip is longer than that bar, spans it, and only box and text colours (the two
    extremes, give or take anti-aliasing) lie between the two.
    """
    (r0, c0, r1, c1), color = cand
    span = levels["white"] - levels["black"]
    for (q0, d0, q1, d1), other in found:
        if other == color or not (c0 - 1 <= d0 and d1 <= c1 + 1 and d1 - d0 < c1 - c0):
            continue
        top, bottom = (r1, q0) if q0 >= r1 else (q1, r0)
        if bottom - top > max(0.6 * (c1 - c0), 8 * (r1 - r0)):
            continue
        between = image[top:bottom, c0:c1]
        extreme = np.minimum(np.abs(between - levels[color]), np.abs(between - levels[other]))
        if between.size == 0 or np.mean(extreme <= 0.25 * span) >= 0.8:
            return True
    return False


def _edge_crossing(part: np.ndarray, inside: float) -> float | None:
    """Sub-pixel position (pixel centres at 0, 1, ...) where ``part``, which ends inside the
    bar, crosses half-way from its farthest-from-``inside`` value to ``inside``."""
    start = int(np.argmax(np.abs(part - inside)))
    if abs(part[start] - inside) < 1e-6:
        return None
    frac = (part[start:] - part[start]) / (inside - part[start])
    k = int(np.argmax(frac >= 0.5))
    if k == 0:
        return float(len(part) - 1)
    return start + (k - 1) + (0.5 - frac[k - 1]) / (frac[k] - frac[k - 1])


def _measured_length(image: np.ndarray, box) -> float:
    """Bar length between the half-intensity crossings of its two ends."""
    r0, c0, r1, c1 = box
    reach = min(3, c0, image.shape[1] - c1)
    profile = image[r0:r1, c0 - reach:c1 + reach].mean(axis=0)
    inside = float(np.median(profile[reach:len(profile) - reach]))
    left = _edge_crossing(profile[:reach + 1], inside)
    right = _edge_crossing(profile[len(profile) - reach - 1:][::-1], inside)
    if left is None or right is None:
        return float(c1 - c0)
    return float((len(profile) - 1 - right) - left)


def find_scale_bar(image: np.ndarray, *, read_label: bool = True) -> ScaleBar | None:
    """Find a solid horizontal scale bar, its label, and read the label's value.

    Parameters
    ----------
    image : (M, N) ndarray
        Grey micrograph, any real dtype.
    read_label : bool
        Read the label with Tesseract (when installed); False skips OCR.

    Returns
    -------
    ScaleBar or None
        The bar with a text label (else the longest bar-like rectangle) near the top or
        bottom edge, or None when the image carries none. ``value_nm`` is None unless
        Tesseract read a value it was sure of.

    Raises
    ------
    ParameterError
        If ``image`` is not a 2-D real array.

    Examples
    --------
    >>> img = np.full((200, 300), 0.5); img[180:184, 200:260] = 1.0
    >>> find_scale_bar(img, read_label=False).length_px
    60.0
    """
    image = np.asarray(image)
    if (image.ndim != 2 or not np.issubdtype(image.dtype, np.number)
            or np.issubdtype(image.dtype, np.complexfloating)):
        raise ParameterError(f"find_scale_bar needs a 2-D numeric image, got shape {image.shape} "
                             f"and dtype {image.dtype}.")
    image = image.astype(np.float32)
    if not np.all(np.isfinite(image)):
        image = np.nan_to_num(image, nan=float(np.nanmedian(image)))
    found = []
    for box, color in _bar_candidates(image):
        label = find_label(image, box, color)
        found.append((label.crop is not None, box[3] - box[1], box, color, label))
    if not found:
        return None
    _, _, box, color, label = max(found, key=lambda f: (f[0], f[1]))
    bar = ScaleBar(_measured_length(image, box), tuple(int(v) for v in box),
                   label_bbox=label.label_bbox, color=color)
    if read_label and label.crop is not None:
        reading = _ocr.read_label(label.crop)
        if reading is not None:
            bar = replace(bar, value_nm=reading.value_nm, text=reading.text,
                          confidence=reading.confidence)
    return bar


def scale_bar_exclusion(bar: ScaleBar, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Region holding the bar and its label: particles touching it are dropped.

    Parameters
    ----------
    bar : ScaleBar
    shape : (int, int)
        Image shape.

    Returns
    -------
    tuple of int
        ``(min_row, min_col, max_row, max_col)``, max exclusive, clipped to the image: the
        label box grown by the bar's thickness when the label was found, else the bar with
        room for a label above, below and beside it.
    """
    min_row, min_col, max_row, max_col = bar.bbox
    thick = max_row - min_row
    if bar.label_bbox is not None:
        (min_row, min_col, max_row, max_col), pad_rows = bar.label_bbox, thick
        pad_cols = thick
    else:
        pad_rows = int(round(max(4 * thick, 0.25 * bar.length_px)))
        pad_cols = int(round(0.35 * bar.length_px))
    return (max(0, min_row - pad_rows), max(0, min_col - pad_cols),
            min(shape[0], max_row + pad_rows), min(shape[1], max_col + pad_cols))

"""Find the scale bar drawn on a micrograph and read its label.

A scale bar is a solid, near-saturated, thin horizontal rectangle near the top or bottom
edge, with a text label of the same colour above, below or beside it, often inside an
opaque box of the other colour. :func:`find_scale_bar` finds it from the image's
horizontal runs of pixels near the brightest or darkest level (within 5 % of the range,
then within 12 % and 25 % for blurred or grey bars): rows whose runs start and end at the
same columns (give or take two pixels) stack into a slab, and a slab bounded above and
below by other levels, long, thin, standing alone (not a letter's stroke) and clear of the
image border is a candidate; the edge strips of a label box are not. Its length is
measured to a fraction of a pixel at the half-intensity crossings of its ends. The label
is the nearest line of same-coloured glyphs (:mod:`tempipe._scalebar_label`); Tesseract
reads it (:mod:`tempipe._ocr`) when installed. :func:`scale_bar_exclusion` gives the region
(bar, label and box) whose particles the pipeline drops.

When no such bar is found, thin line bars (1-3 px, end ticks or not, text beside or set
in the line's middle) are looked for (:mod:`tempipe._scalebar_thin_label`); they count
only with a text label where labels go. Not handled: rulers of ticks, arrows, chequered
bars, and bars whose text has another colour (the bar is found, the label is not read).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from tempipe import _ocr
from tempipe._scalebar_label import find_label
from tempipe._scalebar_thin_label import find_thin_bar
from tempipe.errors import ParameterError

#: Fraction of the intensity range counted as "saturated" at either end; bars found only
#: at the wider LOOSE_SATURATION_FRACTIONS (blurred, JPEG-lifted, grey) need a label.
SATURATION_FRACTION, LOOSE_SATURATION_FRACTIONS = 0.05, (0.12, 0.25)
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
END_TOLERANCE_PX = 2
#: The rows just above and below a bar hold at most this fraction of saturated pixels.
MAX_EDGE_FILL = 0.5
#: A bar shorter than this fraction of the width (or found only at the loose saturation)
#: needs a label of at least MIN_LABEL_GLYPHS glyphs ("5nm") that reads as a value; at
#: most MAX_READ_CANDIDATES such candidates are read.
MIN_UNLABELLED_FRACTION, MIN_LABEL_GLYPHS, MAX_READ_CANDIDATES = 0.06, 3, 2
#: ... but one found only at the loose saturation and this long with a label is sure.
MIN_LOOSE_FRACTION = 0.12
#: End ticks reach at most TICK_HEIGHT thicknesses or TICK_LENGTH lengths from a bar.
TICK_HEIGHT, TICK_LENGTH = 4, 0.3
#: Partly saturated (blurred) rows stepped over at a bar's top and bottom edges; they
#: reach within RAGGED_REACH of the bar's length of one of its ends.
RAGGED_ROWS, RAGGED_REACH = 2, 0.06
#: Rows of blur (JPEG, resampling) between a bar and the edge of its box.
BLUR_ROWS = 3


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
        ``"white"`` (near the image's brightest level) or ``"black"`` bar.
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
    """Stack runs of consecutive rows whose ends move by at most ``END_TOLERANCE_PX`` from
    row to row, and by at most twice that in all, into boxes (min_row, min_col, max_row,
    max_col)."""
    open_slabs: list[list[int]] = []  # first_row, last_row, start, stop, min/max start/stop
    done = []
    for row, start, stop in runs.tolist():
        match = next((s for s in open_slabs if s[1] == row - 1
                      and abs(s[2] - start) <= END_TOLERANCE_PX
                      and abs(s[3] - stop) <= END_TOLERANCE_PX), None)
        if match is None:
            open_slabs.append([row, row, start, stop, start, start, stop, stop])
        else:
            match[1:4] = [row, start, stop]
            match[4:8] = [min(match[4], start), max(match[5], start), min(match[6], stop),
                          max(match[7], stop)]
        done += [s for s in open_slabs if s[1] < row - 1]
        open_slabs = [s for s in open_slabs if s[1] >= row - 1]
    return [(s[0], s[4], s[1] + 1, s[7]) for s in done + open_slabs
            if s[5] - s[4] <= 2 * END_TOLERANCE_PX and s[7] - s[6] <= 2 * END_TOLERANCE_PX]


def _is_bar(box, mask: np.ndarray) -> bool:
    """Shape, position, closed top and bottom edges (past at most ``RAGGED_ROWS`` blurred
    rows) and isolation of a slab."""
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
    top, bottom = r0 - 1, r1
    for _ in range(RAGGED_ROWS):  # step over blurred, partly saturated edge rows
        top -= top > 0 and _ragged(mask[top], c0, c1)
        bottom += bottom < rows - 1 and _ragged(mask[bottom], c0, c1)
    if not (mask[top, c0:c1].mean() <= MAX_EDGE_FILL
            and mask[bottom, c0:c1].mean() <= MAX_EDGE_FILL):
        return False
    return _stands_alone(box, mask)


def _ragged(row: np.ndarray, c0: int, c1: int) -> bool:
    """Whether a row along a bar's edge is one of its blurred rows: mostly saturated and
    reaching one of its ends (the rounded ends of a rod fall short of both)."""
    reach = max(END_TOLERANCE_PX + 2, int(RAGGED_REACH * (c1 - c0)))
    return bool(row[c0:c1].mean() > MAX_EDGE_FILL
                and (row[c0:c0 + reach].any() or row[c1 - reach:c1].any()))


def _stands_alone(box, mask: np.ndarray) -> bool:
    """Whether the saturated blob holding the slab is no bigger than a bar with end ticks:
    not the stroke of a letter ("A", "B", "±"), nor a band of a saturated region."""
    (r0, c0, r1, c1), (rows, cols) = box, mask.shape
    thick, length = r1 - r0, c1 - c0
    reach_r, reach_c = int(max(TICK_HEIGHT * thick, TICK_LENGTH * length)), 2 * thick + 2
    win = (max(0, r0 - reach_r - 1), max(0, c0 - reach_c - 1), min(rows, r1 + reach_r + 1),
           min(cols, c1 + reach_c + 1))
    labels, _ = ndimage.label(mask[win[0]:win[2], win[1]:win[3]])
    seed = labels[(r0 + r1) // 2 - win[0], (c0 + c1) // 2 - win[1]]
    blob = ndimage.find_objects((labels == seed).astype(np.int8))[0]
    return bool(blob[0].start > 0 and blob[1].start > 0 and blob[0].stop < win[2] - win[0]
                and blob[1].stop < win[3] - win[1])


def _bar_candidates(image: np.ndarray) -> list[tuple[tuple[int, int, int, int], str, bool]]:
    """Bar-like slabs of both polarities, edges of label boxes and outlines removed:
    (bbox, colour, strict) with ``strict`` False for those found only at the wider
    ``LOOSE_SATURATION_FRACTIONS`` (blurred or grey bars)."""
    lo, hi = float(image.min()), float(image.max())
    min_len = max(MIN_LENGTH_PX, int(MIN_LENGTH_FRACTION * image.shape[1]))
    levels = {"white": hi, "black": lo}
    kept: list[tuple[tuple[int, int, int, int], str, bool]] = []
    for fraction in (SATURATION_FRACTION, *LOOSE_SATURATION_FRACTIONS):
        tol = fraction * (hi - lo)
        found = []
        for color, mask in (("white", image >= hi - tol), ("black", image <= lo + tol)):
            found += [(box, color) for box in _slabs(_row_runs(mask, min_len))
                      if _is_bar(box, mask)]
        strict = fraction == SATURATION_FRACTION
        kept += [(box, color, strict) for box, color in found
                 if not _is_box_edge((box, color), found, image, levels)
                 and (strict or not any(_overlap(box, k[0]) for k in kept))]
    return kept


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


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
        if bottom - top <= BLUR_ROWS or np.mean(extreme <= 0.25 * span) >= 0.8:
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


def _with_reading(image: np.ndarray, box, color: str, label) -> ScaleBar:
    """The ScaleBar of a candidate, its label read when there is one (and Tesseract)."""
    bar = ScaleBar(_measured_length(image, box), tuple(int(v) for v in box),
                   label_bbox=label.label_bbox, color=color)
    reading = (_ocr.read_label(label.crop, *label.alternatives) if label.crop is not None
               else None)
    if reading is None:
        return bar
    return replace(bar, value_nm=reading.value_nm, text=reading.text,
                   confidence=reading.confidence)


def find_scale_bar(image: np.ndarray, *, read_label: bool = True) -> ScaleBar | None:
    """Find a solid horizontal scale bar, its label, and read the label's value.

    Candidates are bar-like slabs (module doc). A strictly saturated bar at least
    ``MIN_UNLABELLED_FRACTION`` of the width long, or a less saturated one at least
    ``MIN_LOOSE_FRACTION`` long with a label of ``MIN_LABEL_GLYPHS`` glyphs, is sure: the
    longest sure bar with a text label wins, else the longest without. A shorter candidate
    (a short bar, or a letter's stroke, a rod's dark core...) counts only when its label
    reads as a value, or, if strictly saturated, as "<number><unit>" at least; when the
    label cannot be read (``read_label=False`` or no Tesseract), the longest strictly
    saturated one with a label counts.

    Parameters
    ----------
    image : (M, N) ndarray
        Grey micrograph, any real dtype.
    read_label : bool
        Read the label with Tesseract (when installed); False skips OCR.

    Returns
    -------
    ScaleBar or None
        The bar, or None when the image carries none. ``value_nm`` is None unless two
        Tesseract readings agreed on a round value.

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
    finite = np.isfinite(image)
    if not finite.all():
        image[~finite] = np.median(image[finite]) if finite.any() else 0.0
    sure, unsure = [], []
    for box, color, strict in _bar_candidates(image):
        label = find_label(image, box, color)
        length, texted = box[3] - box[1], label.crop is not None
        long_enough = length >= (MIN_UNLABELLED_FRACTION if strict
                                 else MIN_LOOSE_FRACTION) * image.shape[1]
        if long_enough and (strict or label.n_glyphs >= MIN_LABEL_GLYPHS):
            sure.append((texted, length, box, color, label))
        elif texted and label.n_glyphs >= MIN_LABEL_GLYPHS:
            unsure.append((length, box, color, label, strict))
    bar = _choose(image, sure, unsure, read_label)
    return bar if bar is not None else find_thin_bar(image, read_label)


def _choose(image: np.ndarray, sure: list, unsure: list, read_label: bool) -> ScaleBar | None:
    """The bar among the candidates, by the rules of :func:`find_scale_bar`."""
    labelled = [c for c in sure if c[0]]
    if labelled:
        _, _, box, color, label = max(labelled, key=lambda c: c[1])
        return _with_reading(image, box, color,
                             label if read_label else replace(label, crop=None))
    unsure.sort(key=lambda c: -c[0])
    if read_label and _ocr.tesseract_available():
        worded = None  # a strict short bar whose label reads as "<number><unit>"
        for _, box, color, label, strict in unsure[:MAX_READ_CANDIDATES]:
            bar = _with_reading(image, box, color, label)
            if bar.value_nm is not None:
                return bar
            if strict and worded is None and _ocr.looks_like_label(bar.text or ""):
                worded = bar
        if worded is not None:
            return worded
    elif any(strict for *_, strict in unsure):  # cannot read: a short labelled bar will do
        _, box, color, label, _ = next(c for c in unsure if c[-1])
        return _with_reading(image, box, color, replace(label, crop=None))
    if sure:
        _, _, box, color, label = max(sure, key=lambda c: c[1])
        return _with_reading(image, box, color, replace(label, crop=None))
    return None


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
    thick = bar.bbox[2] - bar.bbox[0]
    if bar.label_bbox is not None:
        (min_row, min_col, max_row, max_col), pad_rows, pad_cols = bar.label_bbox, thick, thick
    else:
        min_row, min_col, max_row, max_col = bar.bbox
        pad_rows = int(round(max(4 * thick, 0.25 * bar.length_px)))
        pad_cols = int(round(0.35 * bar.length_px))
    return (max(0, min_row - pad_rows), max(0, min_col - pad_cols),
            min(shape[0], max_row + pad_rows), min(shape[1], max_col + pad_cols))


def mask_scale_bar(image: np.ndarray, bar: ScaleBar) -> np.ndarray:
    """A copy of ``image`` with the bar's exclusion region filled with the median of the
    pixels around it, so that segmentation sees no bar, text or box.

    Parameters
    ----------
    image : (M, N) ndarray
    bar : ScaleBar

    Returns
    -------
    (M, N) float32 ndarray

    Examples
    --------
    >>> img = np.full((200, 300), 0.5); img[180:184, 200:260] = 1.0
    >>> bool(mask_scale_bar(img, find_scale_bar(img, read_label=False)).max() == 0.5)
    True
    """
    out = np.array(image, dtype=np.float32)
    r0, c0, r1, c1 = scale_bar_exclusion(bar, out.shape)
    ring = out[max(0, r0 - 2):r1 + 2, max(0, c0 - 2):c1 + 2].copy()
    ring[r0 - max(0, r0 - 2):r1 - max(0, r0 - 2), c0 - max(0, c0 - 2):c1 - max(0, c0 - 2)] = np.nan
    fill = np.nanmedian(ring) if np.isfinite(ring).any() else np.median(out)
    out[r0:r1, c0:c1] = fill
    return out

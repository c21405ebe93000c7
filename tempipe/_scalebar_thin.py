"""Finding thin line scale bars: 1-3 px lines, often with end ticks, as SEM data bars and
many TEM figures draw them.

Private helper of :mod:`tempipe.scalebar` (through :mod:`tempipe._scalebar_thin_label`),
tried only when no solid bar was found. A line
pixel is darker (or brighter) than the pixels two to three rows above it and two to three
rows below it by at least ``LINE_CONTRAST`` of the image's range (a ridge: steps such as
particle edges and the edges of data strips give none). Rows of ridge pixels stack into
horizontal segments; a segment is a candidate bar only when it is

- straight, at most ``MAX_LINE_ROWS`` rows thick, of uniform ink, long (as a solid bar),
  shorter than ``MAX_LENGTH_FRACTION`` of the width and clear of the image border, in the
  top or bottom band of the image;
- alone: no other long line parallel to it nearby (lattice fringes, the far edge of a box
  outline) and its line stops at both ends (no ruler, no longer dashed line);
- bare on at least one side: the rows just above or just below it hold no ink over its
  length but at its ends (a plot axis carries ticks, a particle edge texture);
- ended by nothing longer than end ticks (a box outline or an axis continues into a long
  perpendicular line);

and :mod:`tempipe._scalebar_thin_label` keeps it only with a text label beside it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


#: A line pixel differs from the rows 2-3 px above and below by this fraction of the range.
LINE_CONTRAST = 0.25
#: A line's ridge response is at most this many rows thick.
MAX_LINE_ROWS = 3
#: Shortest line as a fraction of the width (never under MIN_LENGTH_PX); longest line.
MIN_LENGTH_FRACTION, MIN_LENGTH_PX, MAX_LENGTH_FRACTION = 0.04, 20, 0.7
#: Lines lie within this fraction of the height from the top or bottom edge.
EDGE_BAND_FRACTION = 0.35
#: Ink along a line varies by at most this fraction of its contrast (median absolute dev.).
MAX_INK_SPREAD = 0.2
#: Columns of a line that may miss the ridge response (JPEG noise, text touching it).
MAX_GAP_SHARE = 0.1
#: No parallel line longer than PARALLEL_SHARE of the bar within PARALLEL_REACH bar
#: lengths (and at least PARALLEL_MIN_PX rows) above or below it.
PARALLEL_SHARE, PARALLEL_REACH, PARALLEL_MIN_PX = 0.5, 0.4, 12
#: Past each end, over END_REACH bar lengths, at most END_FILL of the line's rows is line.
END_REACH, END_FILL = 0.3, 0.25
#: The bare side: rows 2-4 px off the line hold ink in at most BARE_FILL of its columns
#: (END_COLS columns at each end left out for the end ticks).
BARE_FILL, END_COLS = 0.1, 4
#: Ink joined to a line beside it along more than this share of it: an outline.
OUTLINE_SHARE = 0.3
#: The median of the SIDE_ROWS rows above and of those below a line differ from its ink
#: by LINE_CONTRAST of the range too.
SIDE_ROWS = 8
#: End ticks reach at most TICK_REACH bar lengths (and TICK_MIN_PX) above or below.
TICK_REACH, TICK_MIN_PX = 0.25, 8


def ridge(image: np.ndarray, color: str) -> np.ndarray:
    """Contrast of each pixel as a horizontal line of ``color`` (float, >= 0): by how much it
    is darker ("black") or brighter ("white") than both the brighter of the pixels 2 and 3
    rows above and the brighter of those 2 and 3 rows below."""
    ink = image if color == "black" else -image
    pad = np.pad(ink, ((3, 3), (0, 0)), mode="edge")
    n = ink.shape[0]
    above = np.maximum(pad[1:n + 1], pad[0:n])
    below = np.maximum(pad[5:n + 5], pad[6:n + 6])
    return np.maximum(np.minimum(above, below) - ink, 0.0)


def _segments(mask: np.ndarray, min_len: int) -> list[tuple[int, int, int, int]]:
    """Boxes (min_row, min_col, max_row, max_col) of horizontal line segments: components
    of ``mask`` after bridging one-pixel gaps along rows, whose longest row run is at least
    ``min_len``; the box spans that run's columns and the rows holding most of it."""
    bridged = mask | (np.roll(mask, 1, axis=1) & np.roll(mask, -1, axis=1))
    runs = _long_runs(bridged, min_len)
    labels, _ = ndimage.label(runs, structure=np.ones((3, 3), dtype=bool))
    boxes = []
    for sl in ndimage.find_objects(labels):
        if sl is None:
            continue
        part = runs[sl]
        counts = part.sum(axis=1)
        rows = np.flatnonzero(counts >= 0.5 * counts.max())
        cols = np.flatnonzero(part[rows].any(axis=0))
        boxes.append((sl[0].start + int(rows[0]), sl[1].start + int(cols[0]),
                      sl[0].start + int(rows[-1]) + 1, sl[1].start + int(cols[-1]) + 1))
    return boxes


def _long_runs(mask: np.ndarray, min_len: int) -> np.ndarray:
    """``mask`` with only its horizontal runs at least ``min_len`` long."""
    rows, cols = mask.shape
    padded = np.zeros((rows, cols + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded, axis=1)
    (r_on, c_on), c_off = np.nonzero(step == 1), np.nonzero(step == -1)[1]
    keep = np.flatnonzero(c_off - c_on >= min_len)
    out = np.zeros(mask.shape, dtype=bool)
    for row, start, stop in zip(r_on[keep].tolist(), c_on[keep].tolist(), c_off[keep].tolist()):
        out[row, start:stop] = True
    return out


def thin_candidates(image: np.ndarray) -> list[tuple[tuple[int, int, int, int], str]]:
    """Thin line segments that may be scale bars (module doc, all but the label test):
    (bbox, colour), longest first. ``image`` is float, finite."""
    rows, cols = image.shape
    span = float(image.max() - image.min())
    if span <= 0:
        return []
    band = int(EDGE_BAND_FRACTION * rows)
    min_len = max(MIN_LENGTH_PX, int(MIN_LENGTH_FRACTION * cols))
    found = []
    for color in ("black", "white"):
        contrast = np.zeros(image.shape, dtype=np.float32)
        for lo, hi in ((0, band), (rows - band, rows)):  # only the top and bottom bands
            top = max(0, lo - 3)
            contrast[lo:hi] = ridge(image[top:min(rows, hi + 3)], color)[lo - top:hi - top]
        mask = contrast >= LINE_CONTRAST * span
        for box in _segments(mask, min_len):
            if _is_thin_bar(box, image, contrast, mask, color, span):
                found.append((box, color))
    return sorted(found, key=lambda f: f[0][1] - f[0][3])


def _is_thin_bar(box, image, contrast, mask, color, span) -> bool:
    """Whether a segment passes the shape, ink, isolation and end tests (module doc)."""
    (r0, c0, r1, c1), (rows, cols) = box, image.shape
    length = c1 - c0
    if r1 - r0 > MAX_LINE_ROWS or length > MAX_LENGTH_FRACTION * cols:
        return False
    if r0 < 4 or c0 < 3 or r1 > rows - 4 or c1 > cols - 3:
        return False
    line = mask[r0:r1, c0:c1].any(axis=0)
    if line.mean() < 1 - MAX_GAP_SHARE:
        return False
    ink = (image[r0:r1, c0:c1].min(axis=0) if color == "black"
           else image[r0:r1, c0:c1].max(axis=0))
    depth = float(np.median(contrast[r0:r1, c0:c1].max(axis=0)))
    if np.median(np.abs(ink - np.median(ink))) > MAX_INK_SPREAD * depth:
        return False
    ink = float(np.median(ink))
    for side in (image[max(0, r0 - SIDE_ROWS):r0, c0:c1], image[r1:r1 + SIDE_ROWS, c0:c1]):
        level = float(np.median(side))
        if (level - ink if color == "black" else ink - level) < LINE_CONTRAST * span:
            return False  # background between two brighter (darker) things
    return (_alone(box, mask) and _ends_free(box, mask)
            and _bare_side(box, image, color, ink, depth)
            and _short_ticks(box, image, color, ink, depth)
            and not _outline(box, image, color, ink, depth))


def _outline(box, image, color, ink: float, depth: float) -> bool:
    """Whether the ink joined to the line reaches, past its ticks, along more than
    ``OUTLINE_SHARE`` of its length: the edge of an outlined box or of a ruler's blocks."""
    (r0, c0, r1, c1), (rows, cols) = box, image.shape
    reach = max(TICK_MIN_PX, int(TICK_REACH * (c1 - c0)))
    win = (max(0, r0 - reach), max(0, c0 - 3), min(rows, r1 + reach), min(cols, c1 + 3))
    inked = _inked(image[win[0]:win[2], win[1]:win[3]], color, ink, depth)
    labels, _ = ndimage.label(inked, structure=np.ones((3, 3), dtype=bool))
    seeds = np.unique(labels[r0 - win[0]:r1 - win[0], c0 - win[1]:c1 - win[1]])
    joined = np.isin(labels, seeds[seeds > 0])
    joined[max(0, r0 - 4 - win[0]):r1 + 4 - win[0]] = False  # the line and its blur
    return bool(joined[:, c0 + END_COLS - win[1]:c1 - END_COLS - win[1]].any(axis=0).mean()
                > OUTLINE_SHARE)


def _alone(box, mask) -> bool:
    """No other long parallel line within reach above or below."""
    (r0, c0, r1, c1), rows = box, mask.shape[0]
    length = c1 - c0
    reach = max(PARALLEL_MIN_PX, int(PARALLEL_REACH * length))
    for lo, hi in ((max(0, r0 - reach), max(0, r0 - 1)),
                   (min(rows, r1 + 1), min(rows, r1 + reach))):
        if hi <= lo:
            continue
        if _longest_run(mask[lo:hi, c0:c1]) > PARALLEL_SHARE * length:
            return False
    return True


def _longest_run(block: np.ndarray) -> int:
    """Longest horizontal run of True in any row of ``block``."""
    best = 0
    for row in block:
        padded = np.concatenate([[0], row.astype(np.int8), [0]])
        d = np.diff(padded)
        starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        if starts.size:
            best = max(best, int((stops - starts).max()))
    return best


def _ends_free(box, mask) -> bool:
    """The line does not run on past its ends (a ruler's dashes, a longer dotted line)."""
    (r0, c0, r1, c1), cols = box, mask.shape[1]
    reach = max(4, int(END_REACH * (c1 - c0)))
    strip = mask[max(0, r0 - 1):r1 + 1].any(axis=0)
    for lo, hi in ((max(0, c0 - reach), max(0, c0 - 2)),
                   (min(cols, c1 + 2), min(cols, c1 + reach))):
        if hi > lo and strip[lo:hi].mean() > END_FILL:
            return False
    return True


def _inked(image, color, ink: float, depth: float) -> np.ndarray:
    """Pixels nearer the line's ink than the paper beside it."""
    return image <= ink + 0.5 * depth if color == "black" else image >= ink - 0.5 * depth


def _bare_side(box, image, color, ink: float, depth: float) -> bool:
    """Rows 2-4 px above or those 2-4 px below the line hold no ink but at its ends."""
    (r0, c0, r1, c1), rows = box, image.shape[0]
    inner = slice(c0 + END_COLS, c1 - END_COLS)
    for lo, hi in ((max(0, r0 - 4), r0 - 1), (r1 + 1, min(rows, r1 + 4))):
        near = _inked(image[lo:hi, inner], color, ink, depth).any(axis=0)
        if near.size and near.mean() <= BARE_FILL:
            return True
    return False


def _tick_spans(box, image, color, ink: float, depth: float) -> list[tuple[slice, slice]]:
    """Rows and columns of the strokes through the line's two ends (end ticks, when any):
    the inked pixels of the end columns running on from the line up and down."""
    (r0, c0, r1, c1), rows = box, image.shape[0]
    spans = []
    for cl, ch in ((max(0, c0 - 2), c0 + 3), (c1 - 3, min(image.shape[1], c1 + 2))):
        column = _inked(image[:, cl:ch], color, ink, depth).any(axis=1)
        up = r0 - 1
        while up >= 0 and column[up]:
            up -= 1
        down = r1
        while down < rows and column[down]:
            down += 1
        spans.append((slice(up + 1, down), slice(cl, ch)))
    return spans


def _short_ticks(box, image, color, ink: float, depth: float) -> bool:
    """Strokes at the ends reach at most ``TICK_REACH`` bar lengths up or down."""
    r0, c0, r1, c1 = box
    limit = max(TICK_MIN_PX, int(TICK_REACH * (c1 - c0)))
    return all(r0 - rs.start <= limit and rs.stop - r1 <= limit
               for rs, _ in _tick_spans(box, image, color, ink, depth))


def _line_on(image, box, color, span: float) -> np.ndarray:
    """Columns of the image where the line's rows hold ridge pixels (1-px gaps bridged)."""
    r0, r1 = box[0], box[2]
    lo = max(0, r0 - 3)
    strip = ridge(image[lo:r1 + 3], color)[r0 - lo:r1 - lo] >= LINE_CONTRAST * span
    on = strip.any(axis=0)
    return on | (np.roll(on, 1) & np.roll(on, -1))

"""Labels of thin line scale bars, and the choice of the bar.

Private helper of :mod:`tempipe.scalebar`: :func:`find_thin_bar` is tried when no solid bar
was found. A thin candidate (:func:`tempipe._scalebar_thin.thin_candidates`) is kept only
with a text line where labels go (right above or below it, or beside it; a segment whose
line goes on past its label is joined to the other half of a bar with its text in the
middle, and one whose line resumes past an end after a break is part of a longer line):
a line of three glyphs or more, or of two glyphs run together at least three times as wide
as high, drawn in strokes (particles taken for glyphs are blobs), or, when Tesseract reads
labels, one that reads as a number and a length unit.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import ndimage

from tempipe import _ocr
from tempipe._scalebar_label import find_label, union
from tempipe._scalebar_thin import _inked, _line_on, _longest_run, _tick_spans, thin_candidates

#: Without a reading (no Tesseract, or not asked), a label needs this many glyphs, or two
#: in a line WORDY_RATIO times as wide as high; at most MAX_READ_CANDIDATES are read.
MIN_UNREAD_GLYPHS, MAX_READ_CANDIDATES, WORDY_RATIO = 3, 3, 3.0
#: A line resuming past an end (within a bar length or a tenth of the width) in a run of
#: RESUME_SHARE of its length, at least RESUME_MIN_PX, is part of a longer line.
RESUME_SHARE, RESUME_MIN_PX = 0.15, 8
#: Glyph strokes are at most this fraction of the glyph's height (or MIN_STROKE_PX, for
#: small blurred text); glyphs fill at most this fraction of their box.
MAX_STROKE_RATIO, MAX_GLYPH_FILL, MIN_STROKE_PX = 0.36, 0.66, 3.0
#: Glyphs drawn in strokes a label needs without a reading; its tallest glyph is at least
#: MIN_LINE_FILL of the line's height.
MIN_STROKED_GLYPHS, MIN_LINE_FILL = 2, 0.55


def find_thin_bar(image: np.ndarray, read_label: bool):
    """The longest thin bar (:func:`labelled_thin_bars`) whose label looks like a word
    (:func:`_wordy`) drawn in strokes (:func:`_text_like`) or, read (with Tesseract and
    ``read_label``), reads as a number and a length unit: a
    :class:`tempipe.scalebar.ScaleBar`, or None."""
    from tempipe import scalebar  # imported here: scalebar imports this module

    reading = read_label and _ocr.tesseract_available()
    found = [(*f, _wordy(f[2]) and _text_like(f[2])) for f in labelled_thin_bars(image)]
    for box, color, label, texty in [f for f in found if reading or f[3]][:MAX_READ_CANDIDATES]:
        bar = scalebar._with_reading(image, box, color,
                                     label if reading else replace(label, crop=None))
        if texty or bar.value_nm is not None or _ocr.looks_like_label(bar.text or ""):
            return replace(bar, length_px=scalebar._measured_length(image, box))
    return None


def _wordy(label) -> bool:
    """Whether a label looks like a word unread: ``MIN_UNREAD_GLYPHS`` glyphs, or two (glyphs
    run together) in a line at least ``WORDY_RATIO`` times as wide as high."""
    t0, s0, t1, s1 = label.line_bbox
    return label.n_glyphs >= MIN_UNREAD_GLYPHS or s1 - s0 >= WORDY_RATIO * (t1 - t0)


def _text_like(label) -> bool:
    """Whether the tall glyphs of a label crop (ink distance, 0 = ink) are drawn in strokes:
    ``MIN_STROKED_GLYPHS`` of those at least half as tall as the tallest have a stroke
    (twice the largest distance to their edge) of at most ``MAX_STROKE_RATIO`` of their
    height (or ``MIN_STROKE_PX``) and fill at most ``MAX_GLYPH_FILL`` of their box.
    Particles taken for glyphs are solid blobs. The tallest glyph is at least
    ``MIN_LINE_FILL`` of the text line's height: glyphs of one line share its rows.
    Particles taken for glyphs lie at all heights."""
    ink = label.crop < 0.5
    labels, _ = ndimage.label(ink, structure=np.ones((3, 3), dtype=bool))
    depth = ndimage.distance_transform_edt(ink)
    boxes = [sl for sl in ndimage.find_objects(labels) if sl is not None]
    if not boxes:
        return False
    tallest = max(sl[0].stop - sl[0].start for sl in boxes)
    if tallest < MIN_LINE_FILL * (label.line_bbox[2] - label.line_bbox[0]):
        return False
    stroked = 0
    for k, sl in enumerate(ndimage.find_objects(labels)):
        h = 0 if sl is None else sl[0].stop - sl[0].start
        if h < max(3, 0.5 * tallest):
            continue
        part = labels[sl] == k + 1
        stroked += bool(2 * depth[sl][part].max() <= max(MAX_STROKE_RATIO * h, MIN_STROKE_PX)
                        and part.mean() <= MAX_GLYPH_FILL)
    return stroked >= MIN_STROKED_GLYPHS


def labelled_thin_bars(image: np.ndarray) -> list[tuple[tuple, str, object]]:
    """Thin candidates (:func:`thin_candidates`) with a text line of at least two glyphs
    where labels go: (bbox, colour, label), longest first. A segment with its label beside
    it and the line going on past the label is half of a bar with its text in the middle
    (:func:`_through_label`).

    The text of a blurred thin line is often darker (or brighter) than the line, or as
    grey: the label finder is tried with the line set to its own level, to the level of
    the ink near it and to the image's extreme, end ticks wiped; the label of most glyphs
    where labels go is kept."""
    found, span = [], float(image.max() - image.min())
    for box, color in thin_candidates(image):
        label = _best_label(image, box, color)
        if label is None:
            continue
        box = _through_label(image, box, color, label.line_bbox, span)
        if box is None or any(f[0] == box for f in found) or _runs_on(image, box, color, span):
            continue
        ink, paper = _levels(image, box, color)
        ticks = [(rs.start, cs.start, rs.stop, cs.stop)
                 for rs, cs in _tick_spans(box, image, color, ink, abs(paper - ink))]
        found.append((box, color, replace(label, label_bbox=union(label.label_bbox, box, *ticks))))
    return sorted(found, key=lambda f: f[0][1] - f[0][3])


def _through_label(image, box, color, line, span: float):
    """The bar of a segment whose label is beside it: the segment, or, when the line goes on
    past the far side of the label (the text set in the bar's middle), the two segments
    joined when of similar length; None when the line going on is much longer or shorter
    (the segment is part of something else)."""
    (r0, c0, r1, c1), (t0, s0, t1, s1) = box, line
    if not t0 <= 0.5 * (r0 + r1) <= t1:
        return box  # text above or below
    on = _line_on(image, box, color, span)
    reach = max(4, t1 - t0)
    if s0 >= c1:  # label right of the segment: look right of the label
        cols = np.arange(s1, min(image.shape[1], s1 + reach + 2 * (c1 - c0)))
    else:
        cols = np.arange(s0 - 1, max(-1, s0 - 1 - reach - 2 * (c1 - c0)), -1)
    hits = np.flatnonzero(on[cols[:reach]]) if cols.size else np.array([], int)
    if hits.size == 0:
        return box
    tail = on[cols[hits[0]:]]
    n = int(np.argmin(tail)) if not tail.all() else tail.size
    if not 0.7 * (c1 - c0) <= n <= 1.4 * (c1 - c0):
        return None
    far = int(cols[hits[0] + n - 1])
    return (r0, min(c0, far), r1, max(c1, far + 1))


def _levels(image, box, color) -> tuple[float, float]:
    """Ink of a line (median of its darkest or brightest pixel per column) and the paper
    2-3 rows above and below it."""
    r0, c0, r1, c1 = box
    line = image[r0:r1, c0:c1]
    ink = float(np.median(line.min(axis=0) if color == "black" else line.max(axis=0)))
    paper = float(np.median(np.concatenate([image[max(0, r0 - 4):max(0, r0 - 2), c0:c1].ravel(),
                                            image[r1 + 2:r1 + 4, c0:c1].ravel()])))
    return ink, paper


def _runs_on(image, box, color, span: float) -> bool:
    """Whether the line resumes past one of its ends, within one bar length (or a tenth of
    the width), after a break (a longer line crossing particles of its own ink): a run of
    ``RESUME_SHARE`` of the bar's length (at least RESUME_MIN_PX) on its rows."""
    r0, c0, r1, c1 = box
    length, cols = c1 - c0, image.shape[1]
    on = _line_on(image, box, color, span)
    least, reach = max(RESUME_MIN_PX, int(RESUME_SHARE * length)), max(length, cols // 10)
    for part in (on[c1 + 2:min(cols, c1 + reach)], on[max(0, c0 - reach):max(0, c0 - 2)]):
        if part.size and _longest_run(part[None, :]) >= least:
            return True
    return False


def _best_label(image, box, color):
    """The label (:func:`find_label`) of most glyphs, at least two, where labels go, found
    with the line set to one of three levels (:func:`labelled_thin_bars`); or None."""
    r0, c0, r1, c1 = box
    ink, paper = _levels(image, box, color)
    depth = abs(paper - ink)
    wiped = image.copy()
    for rs, cs in _tick_spans(box, image, color, ink, depth):
        part = wiped[rs, cs]
        part[_inked(part, color, ink, depth)] = paper
    reach = max(12, int(0.5 * (c1 - c0)))
    near = wiped[max(0, r0 - reach):r1 + reach, max(0, c0 - reach):c1 + reach].copy()
    near[min(reach, r0):min(reach, r0) + r1 - r0, min(reach, c0):min(reach, c0) + c1 - c0] = paper
    inked = near[_inked(near, color, ink, depth)]
    levels = {ink, float(image.min() if color == "black" else image.max())}
    if inked.size:
        levels.add(float(np.median(inked)))
    best = None
    for level in sorted(levels):
        trial = wiped.copy()
        trial[r0:r1, c0:c1] = level
        label = find_label(trial, box, color)
        if (label.crop is not None and label.n_glyphs >= 2
                and _where_labels_go(label.line_bbox, box)
                and (best is None or label.n_glyphs > best.n_glyphs)):
            best = label
    return best


def _where_labels_go(line, bar) -> bool:
    """Whether a text line sits right above or below the bar, over its middle, or right
    beside it on its rows."""
    (r0, c0, r1, c1), (t0, s0, t1, s1) = bar, line
    h, length = t1 - t0, c1 - c0
    if s1 - s0 > 3 * length + 4 * h:
        return False
    if t0 <= 0.5 * (r0 + r1) <= t1:  # beside
        gap = s0 - c1 if s0 >= c1 else c0 - s1
        return -1 <= gap <= 2 * h
    gap = t0 - r1 if t0 >= r1 else r0 - t1
    centre = 0.5 * (s0 + s1)
    return -1 <= gap <= 1.5 * h and c0 - 0.25 * length <= centre <= c1 + 0.25 * length

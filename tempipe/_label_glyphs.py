"""Checking a scale-bar label's reading against its glyphs.

Private helper of :mod:`tempipe._ocr`. Tesseract reads digits and "nm" well but the µ of
"µm" as "u", "p", "y" or not at all, now and then skips a glyph or a decimal point, and
takes a speck for a letter; these checks, on the upscaled label's ink mask, decide whether
a reading can be trusted. A µ hangs below the baseline of the final m and nothing hangs
below "nm" (specks of particle wholly below the baseline aside); the µ is open at the top
between its strokes, where a p's bowl is closed, so a µ read as "p" or "m" is still a µ,
and a hanging glyph closed at the top is not read (picometre bars are too rare on
micrographs to risk a µm read as pm, a factor of a million); an Å has its ring above the
digits. A decimal point (or comma) on the glyphs must match one in the reading, digits
standing too far apart hide a faint one, and the label may hold no more tall glyphs than
the reading has characters. A 3 and a 5 (both round) are told apart by the 5's upper-left
stem. Glyphs are connected pieces, pieces stacked in
one column taken as one (:func:`stacked_glyphs`: a thin serif 5 broken where its bar
meets its bowl would put the digits' top at the x-height). Before the checks, one-pixel
breaks in strokes are bridged (:func:`bridged`) and marks inside a glyph's counter
dropped (:func:`enclosed_marks`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

#: A µ or p reaches this fraction of the text height below the baseline (a comma less).
DESCENDER_FRACTION = 0.15
#: A µ or p starts at least this fraction of the text height below the digits' top.
X_HEIGHT_GAP = 0.12
#: A decimal point is at most this fraction of the text height wide and high.
DOT_FRACTION = 0.4
#: ... and at least this fraction (smaller specks are noise).
MIN_DOT_FRACTION = 0.07
#: Digits of one number stand at most this many text heights apart (a "1" in a serif
#: font up to 0.35; around a decimal point at least 0.44).
WIDE_GAP = 0.4
#: Tall pieces closer than this many text heights (or two micrograph pixels) may be one
#: glyph (a serif m broken up).
SPLIT_GAP = 0.15
#: A µ hangs at most this fraction of the text height below the baseline (a speck of
#: particle stuck under its foot adds to its own descender).
MAX_HANG_FRACTION = 0.75
#: The middle of a µ is open from its top down to at least this fraction of its height
#: above the baseline (a u with a tail); a p's bowl closes it at the top.
OPEN_TOP_FRACTION = 0.5
#: ... over at least this fraction of the text height of columns (the µ's inner width).
MU_GAP_FRACTION = 0.1
#: Pieces of one glyph stacked in a column stand at most this fraction of their joint
#: height apart (:func:`stacked_glyphs`).
STACK_GAP_FRACTION = 0.25
#: ... among at most this many pieces.
MAX_PIECES = 600
#: Characters Tesseract gives for a µ (or a p) before the final m (an "m" for a bold µ).
_MU_LIKE = frozenset("uµμpyjwim")


def text_rows(labels: np.ndarray) -> tuple[float, float] | None:
    """Top row of the tallest glyphs and the baseline of a labelled label image.

    The top is the highest top of the glyphs (:func:`stacked_glyphs`) at least 0.7 times
    the median glyph height (digits, not a stray stroke); the baseline the median lowest
    ink row of those among them that start near that top (digits, not a µ hanging below
    the baseline).
    """
    objects = stacked_glyphs(labels)
    if not objects:
        return None
    heights = np.array([sl[0].stop - sl[0].start for sl in objects])
    tall = [sl for sl, h in zip(objects, heights) if h >= 0.7 * np.median(heights)]
    top = min(sl[0].start for sl in tall)
    high = [sl for sl in tall if sl[0].start <= top + 0.1 * (sl[0].stop - sl[0].start)]
    return float(top), float(np.median([sl[0].stop - 1 for sl in high]))


def _hanging(ink: np.ndarray):
    """Labelled ink, digits' top, baseline, and the ink columns near the label's end (within
    ``2.6`` text heights: an m and a slanted µ, not a decimal comma) whose ink reaches
    ``DESCENDER_FRACTION`` of the text height below the baseline (specks wholly below the
    baseline left out, :func:`_specks_below`), with their lowest rows; None without text."""
    labels, _ = ndimage.label(ink, structure=np.ones((3, 3)))
    rows = text_rows(labels)
    if rows is None or rows[1] <= rows[0]:
        return None
    top, baseline = rows
    height = baseline - top
    ink = ink & ~np.isin(labels, _specks_below(labels, baseline, height))
    cols = np.flatnonzero(ink.any(axis=0))
    bottoms = ink.shape[0] - 1 - np.argmax(ink[::-1, cols], axis=0)
    deep = (bottoms > baseline + DESCENDER_FRACTION * height) & (cols >= cols[-1] - 2.6 * height)
    return labels, top, baseline, cols[deep], bottoms[deep]


def _specks_below(labels: np.ndarray, baseline: float, height: float) -> list[int]:
    """Labels of the components lying wholly below the baseline (specks of particle under
    the text), but for a stroke at least 1.5 times as tall as wide starting within a tenth
    of the text height of the baseline (the descender of a µ broken off its body)."""
    out = []
    for k, sl in enumerate(ndimage.find_objects(labels)):
        if sl is None or sl[0].start <= baseline:
            continue
        h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        if not (h >= 1.5 * w and sl[0].start <= baseline + 0.1 * height + 1):
            out.append(k + 1)
    return out


def _descender(ink: np.ndarray) -> tuple[np.ndarray, float, float] | None:
    """The glyph hanging below the baseline just before the last glyph (the µ or p of "µm"
    or "pm"), the text height and the baseline; None when there is none.

    The glyph holds the right-most hanging column (:func:`_hanging`). Like a µ or p, it
    must start at the x-height (``X_HEIGHT_GAP`` below the digits' top), be at least 0.6
    text heights tall and hang less than ``MAX_HANG_FRACTION`` of one.
    """
    found = _hanging(ink)
    if found is None or found[3].size == 0:
        return None
    labels, top, baseline, cols, bottoms = found
    height = baseline - top
    glyph = labels == labels[bottoms[-1], cols[-1]]
    g_rows = np.flatnonzero(glyph.any(axis=1))
    if (g_rows[0] < top + X_HEIGHT_GAP * height
            or g_rows[-1] > baseline + MAX_HANG_FRACTION * height
            or g_rows[-1] - g_rows[0] + 1 < 0.6 * height):
        return None
    return glyph, height, baseline


def _is_mu(ink: np.ndarray, glyph: np.ndarray, height: float, baseline: float) -> bool:
    """Whether the hanging ``glyph`` is a µ: open at the top between its strokes.

    Over the 0.8 text heights of ink from the glyph's left edge (the µ and the start of its
    m, the µ's arms may be broken apart), between the glyph's top and the baseline, a
    gap between two strokes reaching the top quarter, inked in every column (the µ's
    bowl), whose first ink, the glyph's own, lies at least ``OPEN_TOP_FRACTION`` of that
    height down in ``MU_GAP_FRACTION`` text heights of columns (two at least). A p's bowl
    or an n's arch closes every column at the top; a speck closing a µ at the bottom does
    not; the empty gap between an n and its m (a speck of particle under it) is no bowl.
    """
    cols = np.flatnonzero(glyph.any(axis=0))
    top = int(np.flatnonzero(glyph.any(axis=1))[0])
    body = baseline - top
    if body <= 0:
        return False
    rows, span = slice(top, int(baseline) + 1), slice(cols[0], int(cols[0] + 0.8 * height) + 1)
    zone = ink[rows, span]
    inked = zone.any(axis=0)
    first = np.where(inked, np.argmax(zone, axis=0), zone.shape[0])
    valley = glyph[rows, span].any(axis=0) & (first >= OPEN_TOP_FRACTION * body)
    strokes = np.flatnonzero(inked & (first <= 0.25 * body))
    for left, right in zip(strokes, strokes[1:]):  # between two strokes reaching the top
        inside = slice(left + 1, right)
        if (right - left > 1 and inked[inside].all()
                and valley[inside].sum() >= max(2, MU_GAP_FRACTION * height)):
            return True
    return False


def unit_of(letters: str, ink: np.ndarray) -> str | None:
    """The unit a label's letters stand for, checked on its glyphs; None when unsure.

    Parameters
    ----------
    letters : str
        Unit letters as read, lower case.
    ink : (H, W) bool ndarray
        The label as read, True = ink.

    Returns
    -------
    str or None
        ``"nm"`` for "nm" with nothing below the baseline near its end; ``"µm"`` for a
        µ-like letter (or none, or an m) before the m when a glyph hangs below the baseline
        there that is open at the top (:func:`_is_mu`); ``"Å"`` for "A" or "Å" with a ring
        above the digits. A "u" that does not hang (an "um" typed for µm, or an "n"
        misread), a hanging glyph closed at the top (a p), an "A" without a ring (a cut
        "nm"), "mm" without a µ (more often a misread "nm" than a real unit on a
        micrograph) and anything else give None.
    """
    if letters in ("a", "å"):
        return "Å" if _has_ring(ink) else None
    if not letters.endswith("m"):
        return None
    prefix = letters[:-1]
    if prefix == "n":  # nothing may hang below the baseline: a µ read as n, or a speck
        found = _hanging(ink)
        return "nm" if found is not None and found[3].size == 0 else None
    hanging = _descender(ink)
    if set(prefix) <= _MU_LIKE and hanging is not None and _is_mu(ink, *hanging):
        return "µm"
    return None


def _has_ring(ink: np.ndarray) -> bool:
    """Whether ink rises above the digits (the lowest top of the glyphs before the last;
    a speck only raises one) over the last glyph: the ring of an Å (an "A" alone is more
    often a misread "nm" cut short than Ångström)."""
    tall, _ = tall_glyphs(ink)
    if len(tall) < 2:
        return False
    cols = np.flatnonzero(ink.any(axis=0))
    first = max(tall[:-1], key=lambda sl: sl[0].start)
    digit = first[0].stop - first[0].start
    last = ink[:, max(0, int(cols[-1] - 0.9 * digit)):]
    return bool(last[:max(0, int(np.ceil(first[0].start - 0.1 * digit)))].any())


def stacked_glyphs(labels: np.ndarray) -> list:
    """Boxes (slices) of the glyphs of a labelled label image from left to right: its
    components, pieces stacked in one column taken as one glyph (a thin serif 5 broken by
    anti-aliasing where its bar meets its bowl): sharing half the columns of the narrower,
    at least half as wide as the wider and at most ``STACK_GAP_FRACTION`` of their joint
    height apart (an Å's ring, a speck over a digit are narrower). Over ``MAX_PIECES``
    pieces (noise, no text) nothing is merged."""
    b = np.array([(sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)
                  for sl in ndimage.find_objects(labels) if sl is not None],
                 dtype=np.int64).reshape(-1, 4)
    if 1 < len(b) <= MAX_PIECES:
        widths = b[:, 3] - b[:, 1]
        narrow = np.minimum.outer(widths, widths)
        overlap = np.minimum.outer(b[:, 3], b[:, 3]) - np.maximum.outer(b[:, 1], b[:, 1])
        gap = np.maximum.outer(b[:, 0], b[:, 0]) - np.minimum.outer(b[:, 2], b[:, 2])
        joint = np.maximum.outer(b[:, 2], b[:, 2]) - np.minimum.outer(b[:, 0], b[:, 0])
        linked = ((overlap >= 0.5 * narrow) & (narrow >= 0.5 * np.maximum.outer(widths, widths))
                  & (gap <= STACK_GAP_FRACTION * joint))
        n, group = connected_components(csr_matrix(linked), directed=False)
        if n < len(b):
            b = np.array([[b[group == k, 0].min(), b[group == k, 1].min(),
                           b[group == k, 2].max(), b[group == k, 3].max()] for k in range(n)])
    b = b[np.argsort(b[:, 1], kind="stable")]
    return [(slice(int(r0), int(r1)), slice(int(c0), int(c1))) for r0, c0, r1, c1 in b]


def has_dot(ink: np.ndarray) -> bool:
    """Whether a small mark (a decimal point or comma) sits on the baseline in a gap between
    glyphs: at least ``MIN_DOT_FRACTION`` of the text height across, at most
    ``DOT_FRACTION`` wide and high (half as much again for a comma), starting no higher
    and not below the baseline (a speck of particle under the text), reaching the baseline
    and no deeper than a comma, no other ink in its middle column (a speck on a glyph's
    flank is no dot)."""
    labels, n = ndimage.label(ink, structure=np.ones((3, 3)))
    rows = text_rows(labels)
    if n < 3 or rows is None:
        return False
    cols = np.flatnonzero(ink.any(axis=0))
    baseline, height = rows[1], rows[1] - rows[0] + 1
    for k, sl in enumerate(ndimage.find_objects(labels)):
        h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        mid = (sl[1].start + sl[1].stop - 1) // 2
        if (MIN_DOT_FRACTION * height <= max(h, w) and w <= DOT_FRACTION * height
                and h <= 1.5 * DOT_FRACTION * height
                and baseline - DOT_FRACTION * height - 1 <= sl[0].start <= baseline + 1
                and baseline - 0.1 * height - 1 <= sl[0].stop - 1 <= baseline + 0.35 * height
                and cols[0] < sl[1].start and sl[1].stop - 1 < cols[-1]
                and not np.any(ink[:, mid] & (labels[:, mid] != k + 1))):
            return True
    return False


def tall_glyphs(ink: np.ndarray) -> tuple[list, float]:
    """The glyphs (:func:`stacked_glyphs`) at least 0.6 text heights tall (digits and
    letters, not dots, rings or specks) from left to right, and the text height."""
    labels, _ = ndimage.label(ink, structure=np.ones((3, 3)))
    rows = text_rows(labels)
    if rows is None:
        return [], 0.0
    height = rows[1] - rows[0] + 1
    return [sl for sl in stacked_glyphs(labels)
            if sl[0].stop - sl[0].start >= 0.6 * height], height


def wide_gap(tall: list, height: float, n_digits: int) -> bool:
    """Whether two of the first ``n_digits`` tall glyphs (the number's digits) stand more
    than ``WIDE_GAP`` text heights apart, the second as high as a digit (not the x-height
    letter after digits run together): room for a decimal point too faint to be seen."""
    digits = tall[:n_digits]
    return any(b[1].start - a[1].stop > WIDE_GAP * height
               and b[0].start <= digits[0][0].start + 0.15 * height
               for a, b in zip(digits, digits[1:]))


def skipped(tall: list, height: float, scale: float, n_glyphs: int) -> bool:
    """Whether the label holds more tall glyphs than the ``n_glyphs`` read (digits and the
    unit's glyphs), counting pieces closer than ``SPLIT_GAP`` text heights or two
    micrograph pixels (``scale`` page pixels each) as one glyph (a small m broken up)."""
    split = max(SPLIT_GAP * height, 2 * scale)
    return bool(tall) and 1 + sum(b[1].start - a[1].stop > split
                                  for a, b in zip(tall, tall[1:])) > n_glyphs


def enclosed_marks(ink: np.ndarray) -> np.ndarray:
    """Ink lying wholly inside another glyph's closed counter (the dot of a monospaced
    zero, a speck of particle inside an "o"), as a mask: no character of a label has one,
    and Tesseract reads a dotted 0 as 8 or 6."""
    labels, n = ndimage.label(ink, structure=np.ones((3, 3)))
    enclosed = ndimage.binary_fill_holes(ink) & ~ink
    if n < 2 or not enclosed.any():
        return np.zeros(ink.shape, dtype=bool)
    ring = ndimage.binary_dilation(labels > 0, structure=np.ones((3, 3))) & ~ink
    outside = ndimage.maximum_filter(np.where(ring & ~enclosed, 1, 0), size=3) > 0
    keep = np.unique(labels[outside & ink])  # components touching the open background
    return (labels > 0) & ~np.isin(labels, keep)


def bridged(ink: np.ndarray, faint: np.ndarray) -> np.ndarray:
    """``ink`` with the ``faint`` pixels that touch two of its pieces (a one-pixel break in
    a stroke of a small glyph) added."""
    labels, n = ndimage.label(ink, structure=np.ones((3, 3)))
    if n < 2:
        return ink
    high = ndimage.maximum_filter(labels, size=3)
    low = ndimage.minimum_filter(np.where(labels > 0, labels, n + 1), size=3)
    return ink | (faint & (low <= n) & (high != low))


def threes_and_fives_agree(digits: str, tall: list, height: float, ink: np.ndarray) -> bool:
    """Whether each 3 and 5 of ``digits`` (the number as read) is one on the glyphs: the
    upper-left stem of a 5 (ink in the left quarter of the glyph, from 0.3 to 0.45 of its
    height) is missing from a 3. A 3 whose glyph cannot be told (digits run together, a
    glyph not reaching the digits' top or in pieces: broken) is not trusted; a 5 is, as before this
    check. ``tall`` and ``height`` are those of :func:`tall_glyphs`."""
    if "3" not in digits and "5" not in digits:
        return True
    glyphs = tall[:len(digits)]
    mapped = len(glyphs) == len(digits) and all(
        sl[1].stop - sl[1].start <= 1.1 * (sl[0].stop - sl[0].start) for sl in glyphs)
    if not mapped:
        return "3" not in digits
    top = min(sl[0].start for sl in glyphs)
    for digit, (rows, cols) in zip(digits, glyphs):
        if digit not in "35":
            continue
        pieces = ndimage.label(ink[rows, cols], structure=np.ones((3, 3)))[1]
        if rows.start > top + 0.15 * height or pieces > 1:  # broken: cannot be told
            if digit == "3":
                return False
            continue
        h, w = rows.stop - rows.start, cols.stop - cols.start
        band = ink[rows.start + int(0.3 * h):rows.start + int(np.ceil(0.45 * h)),
                   cols.start:cols.start + max(1, int(round(0.25 * w)))]
        if band.any() != (digit == "5"):
            return False
    return True

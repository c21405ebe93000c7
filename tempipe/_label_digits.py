"""Digits checked on a scale-bar label's glyphs: a dotted 0 read as 6, 8 or 9 (it is an
oval: :func:`zeros_on_glyphs`), a µ read as a digit (no room for it before the µ's
descender: :func:`digits_fit_before_mu`).

Private helper of :mod:`tempipe._ocr`, built on :mod:`tempipe._label_glyphs`.
"""

from __future__ import annotations

import re

import numpy as np
from scipy import ndimage
from skimage.morphology import convex_hull_image

from tempipe._label_glyphs import DESCENDER_FRACTION, X_HEIGHT_GAP, _descender, tall_glyphs

#: Least advance of a digit, in text heights (DejaVu: condensed 0.78, sans and serif 0.87).
DIGIT_ADVANCE = 0.8


def digits_fit_before_mu(n_digits: int, ink: np.ndarray, glyphs=None) -> bool:
    """Whether ``n_digits`` digits fit between the label's first tall glyph and the
    descender of its µ, at ``DIGIT_ADVANCE`` text heights each (rounded; glyphs run
    together do not matter): a µ read as a digit ("500m" for "50µm", the m alone taken for
    µm) leaves a digit with no room. True when the label has no µ. ``glyphs``: the
    ``(tall, height)`` of :func:`tempipe._label_glyphs.tall_glyphs` when already known."""
    hanging = _descender(ink)
    tall, height = glyphs if glyphs is not None else tall_glyphs(ink)
    if hanging is None or not tall:
        return True
    glyph, _, baseline = hanging
    below = np.flatnonzero(glyph[int(baseline + DESCENDER_FRACTION * height) + 1:].any(axis=0))
    if not below.size:
        return True
    return n_digits <= round((below[0] - tall[0][1].start) / (DIGIT_ADVANCE * height))


#: A 0 is an oval: its filled outline covers at least this share of its convex hull (at
#: 32-40 px of text height, 0.96-0.98 in every DejaVu face); an 8's waist, a 6's or 9's
#: open side leave more of the hull empty (0.93 at most).
ZERO_SOLIDITY = 0.945


def zeros_on_glyphs(text: str, ink: np.ndarray) -> str:
    """``text`` with each 6, 8 or 9 of its number that stands on an oval glyph (a 0 whose
    inner dot touches its ring: Tesseract reads a dotted 0 as 8 or 6) made a 0. Digits are
    matched to the tall glyphs left to right, only when the label holds as many tall
    glyphs as the reading has digits and unit glyphs (one for Å; two, or one for "nm" run
    together, for "nm" or "µm"), the digits' glyphs no wider than high and at the digits'
    height, the unit's first below it (else the text is returned as read: a digit made up
    lands on the unit); a narrow glyph (a condensed 1) is no 0."""
    places = [k for k, ch in enumerate(text) if ch in "0123456789OoIl|"]
    if not any(text[k] in "689" for k in places):
        return text
    unit = re.sub(r"[^a-zµμå]", "", text[places[-1] + 1:].lower())
    n_unit = 1 if unit in ("a", "å") else 2 if unit.endswith("m") else 0
    tall, height = tall_glyphs(ink)
    if not n_unit or len(tall) - len(places) not in (n_unit, 1):
        return text  # a glyph made up or skipped, glyphs run together or broken up
    glyphs = tall[:len(places)]
    top = min(sl[0].start for sl in glyphs)
    if any(sl[1].stop - sl[1].start > 1.1 * (sl[0].stop - sl[0].start)
           or sl[0].start > top + 0.15 * height for sl in glyphs) or (
            n_unit == 2 and tall[len(places)][0].start <= top + X_HEIGHT_GAP * height):
        return text  # a digit not at the digits' height, or the unit's letter at it
    chars = list(text)
    for k, sl in zip(places, glyphs):
        h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        if chars[k] in "689" and w >= 0.4 * h and _solidity(ink[sl]) >= ZERO_SOLIDITY:
            chars[k] = "0"
    return "".join(chars)


def _solidity(patch: np.ndarray) -> float:
    """Share of the convex hull of the largest ink component of ``patch`` (holes filled)
    that it covers."""
    labels, n = ndimage.label(patch, structure=np.ones((3, 3)))
    if n == 0:
        return 0.0
    shape = ndimage.binary_fill_holes(labels == np.bincount(labels.ravel())[1:].argmax() + 1)
    return float(shape.sum() / max(1, convex_hull_image(shape).sum()))

"""Cleaning a scale-bar label's text line for Tesseract.

Private helper of :mod:`tempipe._scalebar_label`. Outside an opaque label box, the ink
distance is judged against the local paper (:func:`local_distance`): over a particle nearer
the ink than the background, text is compared with the particle's level, so that particle
pixels stay far from the ink. The crop (:func:`clean_crop`) keeps the line's glyphs and
the marks between them (decimal points, rings), and nothing of the particles around;
:func:`ink_core_crop` keeps only the surroundings of its ink-level pixels (text is drawn in
a saturated colour, particle texture seldom reaches it).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: Text pixels outside a box: their ink core lies within TEXT_CORE_FRACTION of the
#: ink-to-paper contrast of the ink; MIN_CORE_SHARE of a glyph lies in it.
TEXT_CORE_FRACTION, MIN_CORE_SHARE = 0.2, 0.2
#: A mark (a decimal point) outside a box reaches this fraction of the contrast to the ink.
MARK_CORE_FRACTION = 0.3
#: Local paper levels nearer the ink than this fraction of the contrast are not trusted.
LOCAL_PAPER_FLOOR = 0.1
#: ... and where the local paper is nearer the ink than this, text lies over particles.
BUSY_PAPER = 0.8
#: Ink-level pixels: blocks holding one are text for the local paper.
STROKE_INK_FRACTION = 0.1
#: Outside a box and away from particles, the text grows this many pixels into pixels
#: within this fraction of the contrast of the ink (thin strokes).
GROW_STEPS, GROW_INK_FRACTION = 2, 0.7
#: Ink-level pixels of text drawn in a saturated colour, over particles too: within this
#: fraction of the window's ink-to-paper contrast of the ink (particle texture rarely is).
SATURATED_INK = 0.12
#: A decimal point is at most this fraction of the line height wide and high.
DOT_SIZE = 0.3
#: ... and holds at least this many squared line heights of ink, and at least MIN_MARK_MASS
#: pixels' worth (the point of an 11-px font is one pixel, 95 % inked; noise makes none).
DOT_MASS, MIN_MARK_MASS = 0.003, 0.6


def clean_crop(distance, glyphs, loose, members, line, busy,
               grow=None) -> tuple[np.ndarray, tuple]:
    """The text line with a margin, as ink distance, all but its text set to paper, and the
    window ``(row, col)`` of its first pixel.

    Kept: the line's glyphs (of glyphs split off a particle, only their ink core) and the
    marks in the line's box (:func:`_marks`); outside a label box (``busy`` None in one)
    less thick blobs away from the ink core and, over particles (``busy``), less pixels
    more than a pixel from it; all grown, where ``grow`` (a window mask, clear of particles)
    allows, ``GROW_STEPS`` pixels into pixels within ``GROW_INK_FRACTION`` of the ink (a
    one-pixel stroke set between two pixel columns, each half inked), then by a pixel
    for their anti-aliased edge.
    """
    boxed = busy is None
    h = line[2] - line[0]
    margin = max(2, int(0.25 * h))
    r0, c0 = max(0, line[0] - margin), max(0, line[1] - margin)
    r1, c1 = min(distance.shape[0], line[2] + margin), min(distance.shape[1], line[3] + margin)
    near = distance[r0:r1, c0:c1]
    text = np.isin(glyphs[r0:r1, c0:c1], members + 1)
    inside = np.zeros(near.shape, dtype=bool)
    inside[line[0] - r0:line[2] - r0, line[1] - c0:line[3] - c0] = True
    keep = text | _marks(near, (loose[r0:r1, c0:c1] > 0) & inside & ~text, text, h, boxed)
    if not boxed:
        core = near <= TEXT_CORE_FRACTION
        keep &= ~_blobs_off_core(keep, core)
        keep &= ~busy[r0:r1, c0:c1] | ndimage.binary_dilation(core, np.ones((3, 3), bool))
    if grow is not None:
        faint = (near <= GROW_INK_FRACTION) & grow[r0:r1, c0:c1]
        keep = ndimage.binary_dilation(keep, iterations=GROW_STEPS, mask=faint | keep)
    keep = ndimage.binary_dilation(keep) & (near < 1)
    return np.where(keep, near, 1.0), (r0, c0)


def _marks(near: np.ndarray, candidates: np.ndarray, text: np.ndarray, h: int,
           boxed: bool) -> np.ndarray:
    """The marks to keep among the near-ink pixels of the line's box that are not glyphs
    (dots, rings, glyph pieces too faint to be glyphs): components at most half the line
    high; outside a label box only those with ``DOT_MASS`` squared line heights of ink (a
    speck of noise has less) and either an ink core or the place of a decimal point."""
    marks, n = ndimage.label(candidates)
    if n == 0:
        return candidates
    index = np.arange(1, n + 1)
    good = np.array([sl[0].stop - sl[0].start <= 0.5 * h for sl in ndimage.find_objects(marks)])
    if not boxed:
        mass = ndimage.sum(1.0 - near, marks, index)
        core = ndimage.mean(near <= MARK_CORE_FRACTION, marks, index)
        good &= (mass >= max(MIN_MARK_MASS, DOT_MASS * h * h)) & (
            (core >= MIN_CORE_SHARE) | _dots(marks, n, text, h))
    return np.isin(marks, index[good])


def _dots(marks: np.ndarray, n: int, text: np.ndarray, h: int) -> np.ndarray:
    """Which marks may be decimal points (or commas): at most ``DOT_SIZE`` line heights
    wide and high (half as much again for a comma), no more than three times longer one way
    than the other, sitting on the text's baseline in a gap between glyphs (no glyph ink
    in their middle column)."""
    cols = text.any(axis=0)
    if not cols.any():
        return np.zeros(n, dtype=bool)
    used = np.flatnonzero(cols)
    baseline = float(np.median(text.shape[0] - 1 - np.argmax(text[::-1, used], axis=0)))
    out = np.zeros(n, dtype=bool)
    for k, sl in enumerate(ndimage.find_objects(marks)):
        rows, width = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        out[k] = bool(width <= DOT_SIZE * h and rows <= 1.5 * DOT_SIZE * h
                      and max(rows, width) <= 3 * min(rows, width)
                      and sl[0].stop - 1 >= baseline - 0.15 * h - 1
                      and sl[0].start >= baseline - DOT_SIZE * h - 1
                      and not cols[(sl[1].start + sl[1].stop - 1) // 2]
                      and cols[:sl[1].start].any() and cols[sl[1].stop:].any())
    return out


def _blobs_off_core(keep: np.ndarray, core: np.ndarray) -> np.ndarray:
    """Parts of ``keep`` more than two pixels from the ink core that are thick (a particle
    touching the text), as a mask; faint thin strokes of light fonts are not."""
    far = keep & ~ndimage.binary_dilation(core, iterations=2)
    labels, n = ndimage.label(far)
    if n == 0:
        return far
    thickness = ndimage.maximum(ndimage.distance_transform_edt(far), labels,
                                np.arange(1, n + 1))
    return np.isin(labels, np.flatnonzero(thickness >= 2.0) + 1)


def _stroke_px(distance: np.ndarray) -> float | None:
    """Typical stroke width of the text in a window: one more than the median length of the
    horizontal runs (two pixels or more) of pixels at most half-way to the paper that hold
    an ink-level pixel (strokes, blurred ones whole; not the body of a particle); None with
    under ten runs."""
    rows, cols = distance.shape
    half = np.zeros((rows, cols + 2), dtype=np.int8)
    half[:, 1:-1] = distance <= 0.5
    step = np.diff(half, axis=1).ravel()
    starts, stops = np.flatnonzero(step == 1), np.flatnonzero(step == -1)
    inked = np.zeros(rows * (cols + 1) + 1, dtype=np.int32)
    level = np.zeros((rows, cols + 1), dtype=bool)
    level[:, :-1] = distance <= STROKE_INK_FRACTION
    np.cumsum(level.ravel(), out=inked[1:])
    lengths = (stops - starts)[(inked[stops] > inked[starts]) & (stops - starts >= 2)]
    return float(np.median(lengths)) + 1 if lengths.size >= 10 else None


def local_distance(distance: np.ndarray, thick: int) -> tuple[np.ndarray, np.ndarray]:
    """Ink distance relative to the local paper, and where that paper is a particle's.

    The distance is averaged in blocks of a few pixels (less noise, less work). Over about
    ``2 * stroke + 3`` pixels (:func:`_stroke_px`, else from the bar's thickness), the local
    paper is the lower of the mean of the blocks clear of text (no ink-level pixel in or
    next to them) and the grey closing of all blocks (strokes vanish, larger particles
    stay): each misses a particle the other sees (one mostly hidden by text, one narrower
    than the closing). Where the local paper is nearer the ink than the window's (a
    particle under the text), distances are divided by it, so that text is judged against
    the particle's level and particle pixels stay far from the ink; ``busy`` marks those
    places (local paper under ``BUSY_PAPER``).
    """
    stroke = _stroke_px(distance)
    size = 2 * (thick if stroke is None else stroke) + 3
    rows, cols = distance.shape
    k = int(max(1, min(max(2, size // 6), rows, cols)))
    n_r, n_c = max(1, rows // k), max(1, cols // k)
    tiles = [distance[i::k, j::k][:n_r, :n_c] for i in range(k) for j in range(k)]
    blocks = (sum(tiles) / k ** 2).astype(np.float32)
    clear = ~ndimage.binary_dilation(np.minimum.reduce(tiles) <= STROKE_INK_FRACTION,
                                     structure=np.ones((3, 3), dtype=bool))
    n = int(np.ceil(size / k)) | 1
    weight = ndimage.uniform_filter(clear.astype(np.float32), n, mode="nearest")
    mean = ndimage.uniform_filter(np.where(clear, blocks, 0), n, mode="nearest")
    paper = np.minimum(np.where(weight > 0, mean / np.maximum(weight, 1e-6), 1.0),
                       ndimage.grey_closing(blocks, size=(n, n)))
    paper = paper[np.minimum(np.arange(rows) // k, n_r - 1)][:, np.minimum(np.arange(cols) // k,
                                                                           n_c - 1)]
    return distance / np.clip(paper, LOCAL_PAPER_FLOOR, 1.0), paper < BUSY_PAPER


def ink_core_crop(crop: np.ndarray, distance: np.ndarray) -> np.ndarray | None:
    """``crop`` kept only within a pixel of its ink-level pixels (``SATURATED_INK`` of the
    window's contrast in ``distance``, the plain ink distance of the same pixels): text
    drawn in a saturated colour reaches the ink level in each stroke, the texture of a
    particle stuck to it seldom does. None when that drops no ink of ``crop``."""
    zone = ndimage.binary_dilation(distance <= SATURATED_INK, structure=np.ones((3, 3), bool))
    dropped = (crop < 0.5) & ~zone
    return np.where(zone, crop, 1.0) if dropped.any() else None

"""Finding a scale bar's label: its opaque box, its text line and a clean crop of the text.

Private helper of :mod:`tempipe.scalebar`. Around a bar, glyphs are the connected pixels
close to the bar's own level (text and bar share one colour); outside a label box a glyph
must also have a core at that level, which particles and noise lack, and a component that
is too large or too faint for a glyph (text touching a particle) is split along its core.
Glyphs of similar height, aligned on their tops or baselines and close together form text
lines; the line nearest the bar, above, below or beside it, is the label. Its crop keeps
only the line's glyphs (and the dots and rings between them), so Tesseract sees clean text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

#: Text pixels lie within this fraction of the ink-to-paper contrast from the ink ...
TEXT_INK_FRACTION = 0.45
#: ... or, on the clean paper of a label box, within this fraction.
BOXED_INK_FRACTION = 0.6
#: ... and outside a box MIN_CORE_SHARE of a glyph lies within TEXT_CORE_FRACTION of it.
TEXT_CORE_FRACTION, MIN_CORE_SHARE = 0.2, 0.2
#: A mark (a decimal point) outside a box reaches this fraction of the contrast to the ink.
MARK_CORE_FRACTION = 0.3
#: Shortest text line read as a label, in pixels.
MIN_TEXT_HEIGHT_PX = 5
#: Paper-level tolerance of a label box, as a fraction of the ink-to-paper contrast.
BOX_TOLERANCE_FRACTION = 0.05
#: Neighbouring glyphs of a line: gap under LINE_GAP heights, tops or bottoms within
#: LINE_ALIGN heights, heights within a factor LINE_HEIGHT_RATIO.
LINE_GAP, LINE_ALIGN, LINE_HEIGHT_RATIO = 1.5, 0.4, 2.5


@dataclass(frozen=True)
class Label:
    """Where a bar's label is.

    Attributes
    ----------
    line_bbox : tuple of int or None
        ``(min_row, min_col, max_row, max_col)`` of the text line, max exclusive.
    label_bbox : tuple of int or None
        Bar, text and the opaque box (when there is one).
    crop : (h, w) float ndarray or None
        The text line as ink distance in [0, 1] (0 = ink, 1 = paper), everything but its
        glyphs set to paper.
    n_glyphs : int
        Glyphs found in the text line.
    boxed : bool
        Whether bar and text sit in an opaque box.
    """

    line_bbox: tuple | None
    label_bbox: tuple | None
    crop: np.ndarray | None
    n_glyphs: int = 0
    boxed: bool = False


def union(*boxes) -> tuple[int, int, int, int]:
    """Smallest box holding all ``boxes``."""
    return (int(min(b[0] for b in boxes)), int(min(b[1] for b in boxes)),
            int(max(b[2] for b in boxes)), int(max(b[3] for b in boxes)))


def label_window(shape: tuple[int, int], box) -> tuple[int, int, int, int]:
    """Region around a bar where its label (and label box) can be."""
    (r0, c0, r1, c1), (rows, cols) = box, shape
    reach_r = int(max(8 * (r1 - r0), 0.6 * (c1 - c0), 0.1 * min(rows, cols)))
    reach_c = int(max(1.5 * (c1 - c0), 0.3 * cols))
    return (max(0, r0 - reach_r), max(0, c0 - reach_c), min(rows, r1 + reach_r),
            min(cols, c1 + reach_c))


def opaque_box(image: np.ndarray, box, win, levels: tuple[float, float]) -> tuple | None:
    """Bbox of a solid box of the paper level around the bar, inside ``win``; else None."""
    ink, paper = levels
    tol = BOX_TOLERANCE_FRACTION * abs(ink - paper)
    rows, cols = image.shape
    g = (max(0, box[0] - 1), max(0, box[1] - 1), min(rows, box[2] + 1), min(cols, box[3] + 1))
    ring = np.ones((g[2] - g[0], g[3] - g[1]), dtype=bool)
    ring[1:-1, 1:-1] = False
    labels, _ = ndimage.label(np.abs(image[win[0]:win[2], win[1]:win[3]] - paper) <= tol)
    ring_labels = labels[g[0] - win[0]:g[2] - win[0], g[1] - win[1]:g[3] - win[1]][ring]
    if np.mean(ring_labels > 0) < 0.9:
        return None
    sl = ndimage.find_objects((labels == np.bincount(ring_labels).argmax()).astype(np.int8))[0]
    found = (sl[0].start + win[0], sl[1].start + win[1], sl[0].stop + win[0],
             sl[1].stop + win[1])
    if any(found[i] == win[i] != edge for i, edge in enumerate((0, 0, rows, cols))):
        return None  # open: the paper-level region runs out of the window
    inside = image[found[0]:found[2], found[1]:found[3]]
    solid = (np.abs(inside - paper) <= tol) | (np.abs(inside - ink) <= 0.5 * abs(ink - paper))
    return found if solid.mean() >= 0.9 else None


def _glyph_shaped(sl, max_height: int) -> bool:
    h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
    return 3 <= h <= max_height and w <= 4 * h + 2 and h * w >= 6


def _glyphs(distance: np.ndarray, boxed: bool, max_height: int):
    """Glyph label image (0 = none) and glyph boxes of an ink-distance window.

    Returns
    -------
    glyphs : (M, N) int32 ndarray
    boxes : list of tuple
        Box of glyph ``k + 1``, window coordinates.
    loose : (M, N) int32 ndarray
        Labels of all near-ink components (dots and rings among them).
    """
    near_ink = distance <= (BOXED_INK_FRACTION if boxed else TEXT_INK_FRACTION)
    loose, n = ndimage.label(ndimage.binary_dilation(near_ink))  # 1-px breaks of thin strokes
    loose[~near_ink] = 0
    core = distance <= TEXT_CORE_FRACTION
    min_core_share = 0.0 if boxed else MIN_CORE_SHARE
    glyphs, boxes = np.zeros(loose.shape, dtype=np.int32), []
    share = ndimage.mean(core, loose, np.arange(1, n + 1)) if n else []
    for i, sl in enumerate(ndimage.find_objects(loose)):
        if sl is None:
            continue
        piece = loose[sl] == i + 1
        if _glyph_shaped(sl, max_height) and share[i] >= min_core_share:
            parts = [(sl, piece)]
        elif share[i] > 0:  # too large or too faint: split along its core
            parts = _core_parts(core[sl] & piece, sl, max_height)
        else:
            parts = []
        for psl, mask in parts:
            boxes.append((psl[0].start, psl[1].start, psl[0].stop, psl[1].stop))
            glyphs[psl][mask] = len(boxes)
    return glyphs, boxes, loose


def _core_parts(core: np.ndarray, sl, max_height: int) -> list[tuple]:
    """Glyph-shaped components of ``core`` (a boolean patch at slice ``sl``): (slice in the
    window, mask) pairs."""
    sub, _ = ndimage.label(core)
    return [((slice(sl[0].start + s[0].start, sl[0].start + s[0].stop),
              slice(sl[1].start + s[1].start, sl[1].start + s[1].stop)), sub[s] == j + 1)
            for j, s in enumerate(ndimage.find_objects(sub)) if _glyph_shaped(s, max_height)]


def text_lines(boxes: list[tuple]) -> list[tuple[tuple, np.ndarray]]:
    """Group glyph boxes into text lines: (line bbox, indices of its glyphs).

    Neighbours in a line have similar heights, overlapping rows, tops or bottoms aligned
    (digits and "nm" share the baseline, "µ" and "m" the x-height) and a gap under
    ``LINE_GAP`` glyph heights (a monospaced space).
    """
    b = np.asarray(boxes, dtype=float).reshape(-1, 4)
    heights = b[:, 2] - b[:, 0]
    overlap = np.minimum.outer(b[:, 2], b[:, 2]) - np.maximum.outer(b[:, 0], b[:, 0])
    gap = np.maximum.outer(b[:, 1], b[:, 1]) - np.minimum.outer(b[:, 3], b[:, 3])
    small, big = np.minimum.outer(heights, heights), np.maximum.outer(heights, heights)
    aligned = ((np.abs(np.subtract.outer(b[:, 0], b[:, 0])) <= LINE_ALIGN * big)
               | (np.abs(np.subtract.outer(b[:, 2], b[:, 2])) <= LINE_ALIGN * big))
    linked = ((overlap >= 0.5 * small) & (gap <= LINE_GAP * big)
              & (big <= LINE_HEIGHT_RATIO * small) & aligned)
    n_lines, line_of = connected_components(csr_matrix(linked), directed=False)
    members = [np.flatnonzero(line_of == k) for k in range(n_lines)]
    return [(union(*[boxes[i] for i in m]), m) for m in members]


def _line_gap(line, bar) -> float | None:
    """Gap between a text line and the bar when the line sits where labels go, else None."""
    r0, c0, r1, c1 = bar
    thick, length, mid_row = r1 - r0, c1 - c0, 0.5 * (r0 + r1)
    h, w = line[2] - line[0], line[3] - line[1]
    if line[0] < mid_row < line[2]:  # beside
        gap = c0 - line[3] if line[3] <= c0 else line[1] - c1
        return gap if 0 <= gap <= max(3 * thick, 1.5 * h) else None
    centre_col = 0.5 * (line[1] + line[3])
    if c0 - 0.25 * length <= centre_col <= c1 + 0.25 * length and w <= 3 * length + 4 * h:
        gap = r0 - line[2] if line[2] <= r0 else line[0] - r1
        return gap if 0 <= gap <= max(3 * thick, 1.2 * h) else None
    return None


def _pick_line(lines, bar) -> int | None:
    """Index of the text line nearest the bar (relative to its height), or None."""
    best, best_key = None, (np.inf, 0)
    for k, (line, members) in enumerate(lines):
        h, w = line[2] - line[0], line[3] - line[1]
        if h < MIN_TEXT_HEIGHT_PX or (len(members) < 2 and w < 1.5 * h):
            continue
        gap = _line_gap(line, bar)
        key = (np.inf if gap is None else gap / max(h, bar[2] - bar[0]), -len(members))
        if key < best_key:
            best, best_key = k, key
    return best


def _clean_crop(distance, glyphs, loose, members, line, boxed: bool) -> np.ndarray:
    """The text line with a margin, as ink distance; all but its text set to paper.

    Kept: the line's glyphs (of glyphs split off a particle, only their ink core) and the
    marks lying inside the line's box (dots, rings, glyph pieces too faint to be glyphs;
    outside a label box only those reaching the ink core), less thick blobs away from the
    ink core outside a label box, each grown by a pixel for its anti-aliased edge.
    """
    h = line[2] - line[0]
    margin = max(2, int(0.25 * h))
    r0, c0 = max(0, line[0] - margin), max(0, line[1] - margin)
    r1, c1 = min(distance.shape[0], line[2] + margin), min(distance.shape[1], line[3] + margin)
    near, marks = distance[r0:r1, c0:c1], loose[r0:r1, c0:c1]
    box = (line[0] - r0, line[1] - c0, line[2] - r0, line[3] - c0)
    ids = np.unique(marks[box[0]:box[2], box[1]:box[3]])
    ids = ids[ids > 0]
    if ids.size:  # marks: components lying inside the line's box, at most half its height
        local = np.union1d(0, marks)
        relabelled = np.searchsorted(local, marks)
        objects = ndimage.find_objects(relabelled)
        keys = np.searchsorted(local, ids)
        area = ndimage.sum(np.ones(marks.shape), relabelled, keys)
        core = ndimage.maximum(near <= MARK_CORE_FRACTION, relabelled, keys)
        fits = np.array([objects[k - 1][0].start >= box[0] and objects[k - 1][0].stop <= box[2]
                         and objects[k - 1][1].start >= box[1]
                         and objects[k - 1][1].stop <= box[3]
                         and objects[k - 1][0].stop - objects[k - 1][0].start <= 0.5 * h
                         for k in keys])
        ids = ids[fits & (core.astype(bool) | boxed)]
    keep = np.isin(glyphs[r0:r1, c0:c1], members + 1) | np.isin(marks, ids)
    if not boxed:
        keep &= ~_blobs_off_core(keep, near)
    keep = ndimage.binary_dilation(keep) & (near < 1)
    return np.where(keep, near, 1.0)


def _blobs_off_core(keep: np.ndarray, near: np.ndarray) -> np.ndarray:
    """Parts of ``keep`` more than two pixels from the ink core that are thick (a particle
    touching the text), as a mask; faint thin strokes of light fonts are not."""
    far = keep & ~ndimage.binary_dilation(near <= TEXT_CORE_FRACTION, iterations=2)
    labels, n = ndimage.label(far)
    if n == 0:
        return far
    thickness = ndimage.maximum(ndimage.distance_transform_edt(far), labels,
                                np.arange(1, n + 1))
    return np.isin(labels, np.flatnonzero(thickness >= 2.0) + 1)


def find_label(image: np.ndarray, bar, color: str) -> Label:
    """The label of the bar at ``bar`` (a bbox) of colour ``color`` ("white"/"black")."""
    lo, hi = float(image.min()), float(image.max())
    levels = (hi, lo) if color == "white" else (lo, hi)
    win = label_window(image.shape, bar)
    box = opaque_box(image, bar, win, levels)
    levels = (float(np.median(image[bar[0]:bar[2], bar[1]:bar[3]])), levels[1])
    if box is None:
        levels = (levels[0], float(np.median(image[win[0]:win[2]:2, win[1]:win[3]:2])))
    else:
        win = box
    sub = image[win[0]:win[2], win[1]:win[3]]
    distance = np.clip(np.abs(sub - levels[0]) / max(abs(levels[1] - levels[0]), 1e-12), 0, 1)
    distance[max(0, bar[0] - 1 - win[0]):bar[2] + 1 - win[0],
             max(0, bar[1] - 1 - win[1]):bar[3] + 1 - win[1]] = 1.0
    max_height = max(MIN_TEXT_HEIGHT_PX, int((1.0 if box else 0.5) * (win[2] - win[0])))
    glyphs, boxes, loose = _glyphs(distance, box is not None, max_height)
    lines = text_lines(boxes) if boxes else []
    bar_in_win = (bar[0] - win[0], bar[1] - win[1], bar[2] - win[0], bar[3] - win[1])
    k = _pick_line(lines, bar_in_win)
    if k is None:
        return Label(None, box, None, 0, box is not None)
    line, members = lines[k]
    line_img = (line[0] + win[0], line[1] + win[1], line[2] + win[0], line[3] + win[1])
    crop = _clean_crop(distance, glyphs, loose, members, line, box is not None)
    return Label(line_img, box if box is not None else union(bar, line_img), crop,
                 len(members), box is not None)

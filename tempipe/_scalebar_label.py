"""Finding a scale bar's label: its opaque box, its text line and a clean crop of the text.

Private helper of :mod:`tempipe.scalebar`. Around a bar, glyphs are the connected pixels
close to the bar's own level (text and bar share one colour); outside a label box a glyph
must also have a core at the ink level, which particles and noise lack, and a component
too large or too faint for a glyph (glyphs set close together, text touching a particle)
is split. Glyphs of similar height, aligned on their tops or baselines and close together
form text lines; the line nearest the bar, above, below or beside it, is the label, and
:mod:`tempipe._label_clean` crops it clean for Tesseract. Where particles lie by the text,
the line is also found and cleaned against the local paper (the particle's level).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from tempipe._label_clean import (MIN_CORE_SHARE, TEXT_CORE_FRACTION, clean_crop, ink_core_crop,
                                  local_distance)

#: Text pixels lie within this fraction of the ink-to-paper contrast from the ink ...
TEXT_INK_FRACTION = 0.45
#: ... or, on the clean paper of a label box, within this fraction.
BOXED_INK_FRACTION = 0.6
#: Shortest text line read as a label, in pixels.
MIN_TEXT_HEIGHT_PX = 5
#: Paper-level tolerance of a label box, as a fraction of the ink-to-paper contrast.
BOX_TOLERANCE_FRACTION = 0.05
#: Neighbouring glyphs of a line: gap under LINE_GAP heights, tops or bottoms within
#: LINE_ALIGN heights, heights within a factor LINE_HEIGHT_RATIO.
LINE_GAP, LINE_ALIGN, LINE_HEIGHT_RATIO = 1.5, 0.4, 2.5
#: A line of one glyph outside a label box is at least this many times as wide as high.
SHORT_LINE_RATIO = 1.1


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
    crop_origin : tuple of int or None
        Image ``(row, col)`` of the crop's first pixel.
    alternatives : tuple of ndarray
        Other cleanings of the text line, to read when ``crop`` does not read.
    alternative_origins : tuple of tuple
        Image ``(row, col)`` of their first pixels.
    """

    line_bbox: tuple | None
    label_bbox: tuple | None
    crop: np.ndarray | None
    n_glyphs: int = 0
    boxed: bool = False
    crop_origin: tuple | None = None
    alternatives: tuple = ()
    alternative_origins: tuple = ()


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
        elif share[i] > 0:  # too large or too faint: split
            parts = _split(piece, core[sl], sl, max_height, min_core_share)
        else:
            parts = []
        for psl, mask in parts:
            boxes.append((psl[0].start, psl[1].start, psl[0].stop, psl[1].stop))
            glyphs[psl][mask] = len(boxes)
    return glyphs, boxes, loose


def _split(piece: np.ndarray, core: np.ndarray, sl, max_height: int,
           min_core_share: float) -> list[tuple]:
    """Glyphs of a component too large or too faint for one (``piece``, a boolean patch at
    slice ``sl``, ``core`` its ink core): its parts without the bridging of one-pixel gaps
    (glyphs set close together), and those still not glyphs (text touching a particle)
    split along their core. (slice in the window, mask) pairs."""
    sub, _ = ndimage.label(piece, structure=np.ones((3, 3), dtype=bool))
    parts = []
    for j, s in enumerate(ndimage.find_objects(sub)):
        mask, inner = sub[s] == j + 1, core[s]
        full = (slice(sl[0].start + s[0].start, sl[0].start + s[0].stop),
                slice(sl[1].start + s[1].start, sl[1].start + s[1].stop))
        if _glyph_shaped(s, max_height) and inner[mask].mean() >= max(min_core_share, 1e-9):
            parts.append((full, mask))
        elif inner[mask].any():
            parts += _core_parts(inner & mask, full, max_height)
    return parts


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


def _pick_line(lines, bar, boxed: bool = False) -> int | None:
    """Index of the text line nearest the bar (relative to its height), or None. A line of
    one glyph must be 1.5 times as wide as high (two glyphs run together), or as wide as
    high in a label box ("2Å", the ring touching the A); outside a box, one at least
    ``SHORT_LINE_RATIO`` times as wide as high ("1Å", its ring making it tall) is taken
    when no other line sits where labels go; so is one in a box (a decimal point set
    apart). With no line where labels go, the line of most glyphs."""
    best, best_key = None, (True, True, np.inf, 0)
    for k, (line, members) in enumerate(lines):
        h, w = line[2] - line[0], line[3] - line[1]
        single = len(members) < 2
        if h < MIN_TEXT_HEIGHT_PX or (single and w < (1.0 if boxed else SHORT_LINE_RATIO) * h):
            continue
        gap = _line_gap(line, bar)
        weak = single and w < 1.5 * h  # after lines of more glyphs (a box's decimal point)
        if weak and gap is None and not boxed:
            continue
        key = (gap is None, weak, np.inf if gap is None else gap / max(h, bar[2] - bar[0]),
               -len(members))
        if key < best_key:
            best, best_key = k, key
    return best


def in_ruler(image: np.ndarray, bar, levels: tuple[float, float]) -> bool:
    """Whether the bar is one block of a chequered ruler: past one of its ends, on its
    rows, a block of the paper level, a block of the ink level half to one and a half times
    as long as the bar, and another block of the paper level (paper blocks at least a third
    as long as the bar, two columns of blur allowed before each block). Past a bar in a
    label box, the background beyond the box runs on."""
    (r0, c0, r1, c1), (ink, paper) = bar, levels
    tol, length = 0.25 * abs(ink - paper), c1 - c0
    strip = image[r0:r1]
    is_paper = (np.abs(strip - paper) <= tol).mean(axis=0) >= 0.8
    is_ink = (np.abs(strip - ink) <= tol).mean(axis=0) >= 0.8
    for step, start in ((-1, c0 - 1), (1, c1)):
        cols = np.arange(start, start + step * 3 * length, step)
        cols = cols[(cols >= 0) & (cols < image.shape[1])]
        n_paper, rest = _run(is_paper[cols])
        n_ink, end = _run(is_ink[cols[rest:]])
        n_next, _ = _run(is_paper[cols[rest + end:]])
        if (min(n_paper, n_next) >= max(4, length / 3)
                and 0.5 * length <= n_ink <= 1.5 * length):
            return True
    return False


def _run(flags: np.ndarray, blur: int = 2) -> tuple[int, int]:
    """Length of the run of True starting within ``blur`` places of the start of ``flags``,
    and where it ends."""
    first = np.flatnonzero(flags[:blur + 1])
    if first.size == 0:
        return 0, 0
    tail = flags[first[0]:]
    n = int(np.argmin(tail)) if not tail.all() else tail.size
    return n, int(first[0] + n)


def find_label(image: np.ndarray, bar, color: str) -> Label:
    """The label of the bar at ``bar`` (a bbox) of colour ``color`` ("white"/"black"); no
    label for a block of a chequered ruler (:func:`in_ruler`), whose label is the ruler's.

    Outside a label box, where particles lie under or next to the text line
    (:func:`local_distance`), the label is also cleaned against the local paper: that
    crop comes first (over a particle, the plain cleaning may lose a decimal point or a
    glyph without a trace), the plain one after it in ``alternatives``, unless the local
    line holds fewer glyphs. Outside a box, the first crop kept only around its ink-level
    pixels (:func:`ink_core_crop`: the texture of a particle stuck to the text dropped)
    is the last alternative.
    """
    lo, hi = float(image.min()), float(image.max())
    levels = (hi, lo) if color == "white" else (lo, hi)
    if in_ruler(image, bar, levels):
        return Label(None, None, None)
    win = label_window(image.shape, bar)
    box = opaque_box(image, bar, win, levels)
    levels = (float(np.median(image[bar[0]:bar[2], bar[1]:bar[3]])), levels[1])
    if box is None:
        levels = (levels[0], float(np.median(image[win[0]:win[2]:2, win[1]:win[3]:2])))
    else:
        win = box
    sub = image[win[0]:win[2], win[1]:win[3]]
    distance = np.abs(sub - levels[0]) / max(abs(levels[1] - levels[0]), 1e-12)
    distance[max(0, bar[0] - 1 - win[0]):bar[2] + 1 - win[0],
             max(0, bar[1] - 1 - win[1]):bar[3] + 1 - win[1]] = 1.0
    if box is not None:  # the box's blurred edge is no glyph
        distance[[0, -1], :], distance[:, [0, -1]] = 1.0, 1.0
    passes = [(np.clip(distance, 0, 1), None if box is not None else np.zeros(sub.shape, bool))]
    grow = None
    if box is None:
        local, busy = local_distance(distance, bar[2] - bar[0])
        grow = ~ndimage.binary_dilation(busy, iterations=2)
        if busy.any():
            passes.append((np.clip(local, 0, 1), busy))
    bar_in_win = (bar[0] - win[0], bar[1] - win[1], bar[2] - win[0], bar[3] - win[1])
    max_height = max(MIN_TEXT_HEIGHT_PX, int((1.0 if box else 0.5) * (win[2] - win[0])))
    found = [f for f in (_line_crop(d, b, bar_in_win, max_height, grow) for d, b in passes)
             if f]
    if len(found) == 2:
        plain, local = found
        if not local[4]:
            found = [plain]  # no particle by the text
        elif local[1] >= plain[1]:
            found = [local, plain]  # over a particle the plain cleaning may lose glyphs
    if not found:
        return Label(None, box, None, 0, box is not None)
    line, n_glyphs, crop, *_ = found[0]
    if box is None:  # last, the first crop with only the ink-level strokes' surroundings
        (o_r, o_c), first = found[0][3], found[0][2]
        cored = ink_core_crop(first, passes[0][0][o_r:o_r + first.shape[0],
                                                  o_c:o_c + first.shape[1]])
        if cored is not None:
            found.append((line, n_glyphs, cored, (o_r, o_c), False))
    line_img = (line[0] + win[0], line[1] + win[1], line[2] + win[0], line[3] + win[1])
    origins = [(int(f[3][0] + win[0]), int(f[3][1] + win[1])) for f in found]
    return Label(line_img, box if box is not None else union(bar, line_img), crop, n_glyphs,
                 box is not None, origins[0], tuple(f[2] for f in found[1:]),
                 tuple(origins[1:]))


def _line_crop(distance: np.ndarray, busy, bar, max_height: int, grow=None):
    """The label line of an ink-distance window (``bar`` in window coordinates) and its
    clean crop (:func:`clean_crop`): (line bbox, glyphs, crop, crop origin, whether the
    crop's area is ``busy`` anywhere), or None."""
    glyphs, boxes, loose = _glyphs(distance, busy is None, max_height)
    lines = text_lines(boxes) if boxes else []
    k = _pick_line(lines, bar, busy is None)
    if k is None:
        return None
    line, members = lines[k]
    crop, (o_r, o_c) = clean_crop(distance, glyphs, loose, members, line, busy, grow)
    busy_here = busy is not None and bool(busy[o_r:o_r + crop.shape[0],
                                               o_c:o_c + crop.shape[1]].any())
    return line, len(members), crop, (o_r, o_c), busy_here

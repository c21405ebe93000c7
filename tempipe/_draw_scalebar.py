"""Drawing a calibrated scale bar with its text label onto a micrograph.

Private helper of :mod:`tempipe.simulate`, which re-exports :func:`draw_scale_bar` and
:class:`ScaleBarTruth`: import them from there. The bar is a solid rectangle of an exact
integer pixel length (or a thin line of a given thickness, with end ticks if asked, as SEM
data bars draw it); the text is rendered with Pillow (DejaVu Sans when available).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tempipe._render import as_generator
from tempipe.errors import ParameterError

SCALE_BAR_CORNERS = ("bottom-right", "bottom-left", "top-right", "top-left")
SCALE_BAR_TEXT_POSITIONS = ("above", "below", "beside")


@dataclass(frozen=True)
class ScaleBarTruth:
    """Where a drawn scale bar is and what it says.

    Boxes are ``(min_row, min_col, max_row, max_col)`` with the max exclusive, like
    scikit-image's ``regionprops.bbox``. ``label_bbox`` covers bar, text and box (if any).
    """

    length_px: int
    value_nm: float
    text: str
    bar_bbox: tuple[int, int, int, int]
    label_bbox: tuple[int, int, int, int]


def nice_scale_bar_length_nm(width_nm: float) -> float:
    """A 1-2-5 round length near 20 % of the field width (15-25 % when one exists)."""
    candidates = np.array([m * 10.0 ** k for k in range(-2, 8) for m in (1, 2, 5)])
    share = candidates / width_nm
    inside = candidates[(share >= 0.15) & (share <= 0.25)]
    pool = inside if inside.size else candidates
    return float(pool[np.argmin(np.abs(np.log(pool / (0.2 * width_nm))))])


def scale_bar_text(value_nm: float, rng: np.random.Generator) -> str:
    """Label text in one of the styles seen on micrographs: '20 nm', '100.0nm', '0.5 µm'."""
    styles = [f"{value_nm:g} nm", f"{value_nm:.1f}nm"]
    if value_nm >= 100:
        styles.append(f"{value_nm / 1000:g} µm")
    return styles[int(rng.integers(len(styles)))]


def load_font(size_px: int, font_path: str | None = None):
    """``font_path`` (a TrueType file) or DejaVu Sans at ``size_px``, else Pillow's own font."""
    if font_path is not None:
        try:
            return ImageFont.truetype(str(font_path), size_px)
        except OSError as err:
            raise ParameterError(f"font_path={font_path!r} cannot be loaded as a TrueType "
                                 f"font ({err}); give an existing .ttf file.") from None
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size_px)
    except OSError:
        return ImageFont.load_default(size=size_px)


def text_alpha(text: str, font) -> np.ndarray:
    """Anti-aliased text coverage (H, W) float in [0, 1], tightly cropped."""
    left, top, right, bottom = font.getbbox(text)
    canvas = Image.new("L", (right - left, bottom - top), 0)
    ImageDraw.Draw(canvas).text((-left, -top), text, fill=255, font=font)
    return np.asarray(canvas, dtype=np.float64) / 255.0


def _box_union(*boxes):
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def scale_bar_layout(shape, length_px: int, alpha_shape, *, corner: str, text_position: str,
                     box: bool, thickness_px: int | None = None,
                     tick_px: int = 0) -> tuple[tuple, tuple, tuple]:
    """Place bar and text in a corner; return (bar_bbox, text_bbox, label_bbox).

    ``thickness_px`` defaults to ``max(3, min(shape) / 150)``; end ticks reach ``tick_px``
    above and below the bar, and the text keeps clear of them."""
    rows, cols = shape
    thick = thickness_px or max(3, round(min(rows, cols) / 150))
    margin, pad = max(4, round(0.03 * min(rows, cols))), (max(3, thick) if box else 0)
    t_h, t_w = alpha_shape
    bar = (0, 0, thick, length_px)
    gap = max(thick, tick_px + 2) if tick_px else max(thick, 3)
    if text_position == "beside":
        right = corner.endswith("right")
        t_c = -gap - t_w if right else length_px + gap
        t_r = thick // 2 - t_h // 2
    else:
        t_c = (length_px - t_w) // 2
        t_r = -gap - t_h if text_position == "above" else thick + gap
    text = (t_r, t_c, t_r + t_h, t_c + t_w)
    label = _box_union(bar, text, (-tick_px, 0, thick + tick_px, length_px))
    label = (label[0] - pad, label[1] - pad, label[2] + pad, label[3] + pad)
    h, w = label[2] - label[0], label[3] - label[1]
    if h + 2 * margin > rows or w + 2 * margin > cols:
        raise ParameterError(f"a {length_px}-px scale bar and its label ({h} x {w} px) do not "
                             f"fit in a {rows} x {cols} image; choose a shorter length_nm or "
                             "a smaller font_size.")
    top = margin if corner.startswith("top") else rows - margin - h
    left = margin if corner.endswith("left") else cols - margin - w
    d_row, d_col = top - label[0], left - label[1]
    return tuple((b[0] + d_row, b[1] + d_col, b[2] + d_row, b[3] + d_col)
                 for b in (bar, text, label))


def draw_scale_bar(image, pixel_size_nm: float, *, length_nm: float | None = None,
                   corner: str = "bottom-right", color: str = "white", box: bool = False,
                   text_position: str = "above", font_size: int | None = None,
                   text: str | None = None, font_path: str | None = None, rng=0,
                   thickness_px: int | None = None, end_ticks: bool = False):
    """Draw a calibrated scale bar with its text label, as microscope software does.

    Parameters
    ----------
    image : (M, N) ndarray
        Micrograph; not modified.
    pixel_size_nm : float
        Pixel size; the bar is ``round(length_nm / pixel_size_nm)`` pixels long, exactly.
    length_nm : float, optional
        Bar length; default a round 1-2-5 value near 20 % of the image width.
    corner : {"bottom-right", "bottom-left", "top-right", "top-left"}
    color : {"white", "black"}
        Bar and text take the image maximum (white) or minimum (black).
    box : bool
        Fill an opaque box of the other colour behind bar and text.
    text_position : {"above", "below", "beside"}
    font_size : int, optional
        Text height in pixels; default 3.5 % of the shorter image side.
    text : str, optional
        Label text; default the value in a style picked by ``rng`` ("20 nm", "100.0nm",
        "0.5 µm").
    font_path : str, optional
        TrueType font file for the text; default DejaVu Sans.
    rng : int, Generator or None
    thickness_px : int, optional
        Bar thickness; default ``max(3, min(image.shape) / 150)``. 1 or 2 draws a thin line
        bar.
    end_ticks : bool
        Draw a one-pixel (or bar-thick) tick across each end, reaching ``max(3, 3 *
        thickness)`` pixels above and below the bar; the bar's length is tick to tick.

    Returns
    -------
    image : (M, N) float32 ndarray
    truth : ScaleBarTruth

    Raises
    ------
    ParameterError
        Bad pixel size, length, corner, colour, position or font, or a bar that does not
        fit.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ParameterError(f"image must be 2-D, got shape {image.shape}.")
    length_px, value_nm = _check_scale_bar_args(image.shape, pixel_size_nm, length_nm, corner,
                                                color, text_position)
    rng = as_generator(rng)
    label_text = text if text is not None else scale_bar_text(value_nm, rng)
    size = int(font_size) if font_size else max(10, round(0.035 * min(image.shape)))
    alpha = text_alpha(label_text, load_font(size, font_path))
    if thickness_px is not None and not (isinstance(thickness_px, (int, np.integer))
                                         and thickness_px >= 1):
        raise ParameterError(f"thickness_px must be an integer >= 1, got {thickness_px!r}.")
    tick_px = max(3, 3 * int(thickness_px or 1)) if end_ticks else 0
    bar, text_box, label = scale_bar_layout(image.shape, length_px, alpha.shape, corner=corner,
                                            text_position=text_position, box=box,
                                            thickness_px=thickness_px, tick_px=tick_px)
    hi, lo = float(image.max()), float(image.min())
    ink, paper = (hi, lo) if color == "white" else (lo, hi)
    out = image.copy()
    if box:
        out[label[0]:label[2], label[1]:label[3]] = paper
    region = out[text_box[0]:text_box[2], text_box[1]:text_box[3]]
    region[...] = region * (1 - alpha) + ink * alpha
    out[bar[0]:bar[2], bar[1]:bar[3]] = ink
    if tick_px:
        width = max(1, min(bar[2] - bar[0], 2))
        for c in (bar[1], bar[3] - width):
            out[bar[0] - tick_px:bar[2] + tick_px, c:c + width] = ink
    return out, ScaleBarTruth(length_px, value_nm, label_text, bar, label)


def _check_scale_bar_args(shape, pixel_size_nm, length_nm, corner, color, text_position):
    if not (isinstance(pixel_size_nm, (int, float)) and np.isfinite(pixel_size_nm)
            and pixel_size_nm > 0):
        raise ParameterError(f"pixel_size_nm must be a finite number > 0, got "
                             f"{pixel_size_nm!r}.")
    if corner not in SCALE_BAR_CORNERS:
        raise ParameterError(f"corner={corner!r}; use one of {SCALE_BAR_CORNERS}.")
    if color not in ("white", "black"):
        raise ParameterError(f"color={color!r}; use 'white' or 'black'.")
    if text_position not in SCALE_BAR_TEXT_POSITIONS:
        raise ParameterError(f"text_position={text_position!r}; use one of "
                             f"{SCALE_BAR_TEXT_POSITIONS}.")
    value_nm = (nice_scale_bar_length_nm(shape[1] * pixel_size_nm) if length_nm is None
                else float(length_nm))
    length_px = int(round(value_nm / pixel_size_nm))
    if not np.isfinite(value_nm) or length_px < 2:
        raise ParameterError(f"length_nm={length_nm!r} gives a bar of {length_px} px; it must "
                             "be at least 2 px long.")
    return length_px, value_nm

"""Reading a scale bar's label ("20 nm", "0.5 µm", "100.0nm", "5 Å") with Tesseract.

Private helper of :mod:`tempipe.scalebar`. The cleaned label line (see
:mod:`tempipe._scalebar_label`) is upscaled and read as one line (``--psm 7``), with a
whitelist of digits, separators and unit letters or without, in up to four ways
(``READINGS``) until two readings agree on a sure value. Tesseract reads digits and "nm"
well but the µ of "µm" as "u", "p", "y" or not at all, so the unit is checked on the
glyphs themselves: a µ or p hangs below the baseline of the final m, and a p has a closed
bowl where a µ has none. A reading has a value only when its text is "<number> <unit>",
the unit is sure, no decimal point was lost and the number is a round scale-bar value
(``ROUND_MANTISSAS``); the label's value is None (the user types the length) unless two
readings agree. Without the ``tesseract`` program or ``pytesseract`` nothing is read.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image
from scipy import ndimage

#: Readings tried in turn, (text height in px, binarised, whitelist): Tesseract's digit
#: errors change with the scale and the preparation, so two agreeing readings are trusted.
READINGS = ((32, False, True), (40, True, True), (48, False, False), (32, False, False))
#: Largest upscaling factor.
MAX_UPSCALE = 8
#: Characters Tesseract may output.
WHITELIST = "0123456789.,nmuµμAÅp"
#: Nanometres per unit.
NM_PER_UNIT = {"nm": 1.0, "µm": 1e3, "mm": 1e6, "pm": 1e-3, "Å": 0.1}
#: Scale bars are 1, 2, 2.5, 3 or 5 times a power of ten in their own unit; other
#: readings are more likely misread digits (a 0 read as 6 or 8, a 5 as 9): not trusted.
ROUND_MANTISSAS = (1.0, 2.0, 2.5, 3.0, 5.0)
#: Grey level (of 255) under which the upscaled label is ink for the glyph checks.
GLYPH_THRESHOLD = 128
#: A µ or p reaches this fraction of the text height below the baseline (a comma less).
DESCENDER_FRACTION = 0.15
#: A µ or p starts at least this fraction of the text height below the digits' top.
X_HEIGHT_GAP = 0.12
#: A decimal point is at most this fraction of the text height across.
DOT_FRACTION = 0.3
#: A p's bowl is at least this fraction of the squared text height.
MIN_BOWL_FRACTION = 0.03
#: Characters Tesseract gives for a µ (or a p) before the final m.
_MU_LIKE = frozenset("uµμpyjwi")
_LABEL = re.compile(r"([0-9OoIl|]+(?:[.,:][0-9OoIl|]+)?)([nmupyjwiaµμå]{1,3})")
_NUMBER_FIXES = str.maketrans({"O": "0", "o": "0", "I": "1", "l": "1", "|": "1", ",": ".",
                               ":": "."})


@dataclass(frozen=True)
class LabelReading:
    """What Tesseract read on a label.

    Attributes
    ----------
    value_nm : float or None
        The label's length in nm; None when the text does not parse, its unit is unsure or
        its number is not a round scale-bar value.
    text : str
        Tesseract's text.
    confidence : float
        Its mean word confidence, 0-100 (low with a whitelist even when right).
    """

    value_nm: float | None
    text: str
    confidence: float


def tesseract_available() -> bool:
    """True when pytesseract imports and the ``tesseract`` program is on the PATH."""
    try:
        import pytesseract  # noqa: F401
    except ImportError:
        return False
    return shutil.which("tesseract") is not None


def parse_label(text: str) -> tuple[float, str] | None:
    """Number and unit letters of a label text, or None when it is not "<number><unit>".

    Parameters
    ----------
    text : str
        OCR output such as ``"0.5 um"``, ``"100.0nm"``, ``"5A"``.

    Returns
    -------
    (float, str) or None
        The number (``,`` and ``:`` read as a decimal point, O and l as 0 and 1) and the
        unit letters in lower case as read (``"um"``, ``"pm"``, ``"nm"``, ``"a"``...).

    Examples
    --------
    >>> parse_label("0,5 um")
    (0.5, 'um')
    """
    squeezed = re.sub(r"\s+", "", text)
    squeezed = re.sub(r"^[^0-9A-Za-z]+|[^0-9A-Za-zµμÅå]+$", "", squeezed)
    match = _LABEL.fullmatch(squeezed[:1] + squeezed[1:].lower().replace("å", "a")
                             if squeezed else "")
    if match is None or match.group(1)[0] in ".,:":
        return None
    digits = match.group(1).translate(_NUMBER_FIXES)
    if re.fullmatch(r"0\d", digits[:2]):
        return None  # "05": a lost decimal point
    number = float(digits)
    return (number, match.group(2)) if number > 0 else None


def looks_like_label(text: str) -> bool:
    """Whether ``text`` reads as a number and a length unit ("37 nm", "2 pm", "5A"), its
    value sure or not.

    Examples
    --------
    >>> looks_like_label("37 nm"), looks_like_label("100n"), looks_like_label("77")
    (True, False, False)
    """
    parsed = parse_label(text)
    return parsed is not None and (parsed[1].endswith("m") or parsed[1] in ("a", "å"))


def is_round(number: float) -> bool:
    """Whether ``number`` is a ``ROUND_MANTISSAS`` multiple of a power of ten."""
    mantissa = number / 10.0 ** np.floor(np.log10(number) + 1e-9)
    return bool(np.any(np.isclose(mantissa, ROUND_MANTISSAS, rtol=1e-6)))


def label_ink(crop: np.ndarray, height_px: int = 32) -> np.ndarray:
    """Upscaled grey label, text about ``height_px`` high: (H, W) uint8, black text (0) on
    white (255).

    Parameters
    ----------
    crop : (h, w) float ndarray
        The label line as ink distance in [0, 1]: 0 = ink, 1 = paper.
    height_px : int
        Wanted text height (the crop is never shrunk, nor grown over ``MAX_UPSCALE``).
    """
    ink_rows = np.flatnonzero((crop < 0.5).any(axis=1))
    height = int(ink_rows[-1] - ink_rows[0] + 1) if ink_rows.size else crop.shape[0]
    scale = float(np.clip(height_px / height, 1, MAX_UPSCALE))
    grey = Image.fromarray(np.round(np.clip(crop, 0, 1) * 255).astype(np.uint8))
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    return np.asarray(grey.resize(size, Image.Resampling.BICUBIC))


def _text_rows(labels: np.ndarray) -> tuple[float, float] | None:
    """Top row of the tallest glyphs and the baseline of a labelled label image.

    The top is the highest top of the components at least 0.7 times the median component
    height (digits, not a stray stroke); the baseline the median lowest ink row of them.
    """
    objects = [sl for sl in ndimage.find_objects(labels) if sl is not None]
    if not objects:
        return None
    heights = np.array([sl[0].stop - sl[0].start for sl in objects])
    tall = [sl for sl, h in zip(objects, heights) if h >= 0.7 * np.median(heights)]
    return (float(min(sl[0].start for sl in tall)),
            float(np.median([sl[0].stop - 1 for sl in tall])))


def _descender(ink: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The glyph hanging below the baseline just before the last glyph (the µ or p of "µm"
    or "pm") and the text height; None when there is none.

    A column descends when its ink reaches ``DESCENDER_FRACTION`` of the text height below
    the baseline; the right-most descending column must lie within ``2.2`` text heights of
    the label's end (an m's width), which leaves out a decimal comma. Like a µ or p, the
    glyph must start at the x-height (``X_HEIGHT_GAP`` below the digits' top), be at least
    0.6 text heights tall and hang less than half of one.
    """
    labels, _ = ndimage.label(ink, structure=np.ones((3, 3)))
    rows = _text_rows(labels)
    if rows is None:
        return None
    (top, baseline), cols = rows, np.flatnonzero(ink.any(axis=0))
    height = baseline - top
    bottoms = ink.shape[0] - 1 - np.argmax(ink[::-1, cols], axis=0)
    deep = np.flatnonzero(bottoms > baseline + DESCENDER_FRACTION * height)
    if height <= 0 or deep.size == 0 or cols[-1] - cols[deep[-1]] > 2.2 * height:
        return None
    glyph = labels == labels[bottoms[deep[-1]], cols[deep[-1]]]
    g_rows = np.flatnonzero(glyph.any(axis=1))
    if (g_rows[0] < top + X_HEIGHT_GAP * height or g_rows[-1] > baseline + 0.5 * height
            or g_rows[-1] - g_rows[0] + 1 < 0.6 * height):
        return None
    return glyph, height


def _has_bowl(mask: np.ndarray, height: float) -> bool:
    """Whether ``mask`` encloses a hole of at least ``MIN_BOWL_FRACTION`` of the squared
    text height (the bowl of a p; noise leaves smaller ones, µ and m none)."""
    rows, cols = np.nonzero(mask)
    glyph = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    background, n = ndimage.label(~np.pad(glyph, 1))
    if n < 2:
        return False
    sizes = np.bincount(background.ravel())
    sizes[[0, background[0, 0]]] = 0  # ink and the outside
    return bool(sizes.max() >= MIN_BOWL_FRACTION * height ** 2)


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
        ``"nm"`` for "nm" with nothing below the baseline; ``"µm"`` or ``"pm"`` for a µ-like
        letter (or none) before the m when one glyph hangs below the baseline there, a p
        having a bowl; ``"Å"`` for "A" or "Å". A "u" that does not hang (an "um" typed for
        µm, or an "n" misread), "mm" (more often a misread "nm" than a real unit on a
        micrograph) and anything else give None.
    """
    if letters in ("a", "å"):
        return "Å"
    if not letters.endswith("m"):
        return None
    prefix, hanging = letters[:-1], _descender(ink)
    if prefix == "n":
        return "nm" if hanging is None else None
    if set(prefix) <= _MU_LIKE and hanging is not None and _one_glyph(*hanging):
        return "pm" if _has_bowl(*hanging) else "µm"
    return None


def _one_glyph(mask: np.ndarray, height: float) -> bool:
    """Whether a component is no wider than one µ or p (not merged with its m or a speck
    of particle)."""
    cols = np.flatnonzero(mask.any(axis=0))
    return bool(cols[-1] - cols[0] + 1 <= 1.1 * height)


@contextlib.contextmanager
def _single_thread():
    """Run Tesseract single-threaded (its OpenMP threads only slow small images down)."""
    had = "OMP_THREAD_LIMIT" in os.environ
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    try:
        yield
    finally:
        if not had:
            os.environ.pop("OMP_THREAD_LIMIT", None)


def tesseract_line(page: Image.Image, whitelist: bool = True) -> tuple[str, float]:
    """One Tesseract reading of a one-line page: text and mean word confidence."""
    import pytesseract

    config = "--psm 7" + (f" -c tessedit_char_whitelist={WHITELIST}" if whitelist else "")
    with _single_thread():
        data = pytesseract.image_to_data(page, config=config,
                                         output_type=pytesseract.Output.DICT)
    words = [(w, float(c)) for w, c in zip(data["text"], data["conf"]) if w.strip()]
    if not words:
        return "", 0.0
    return " ".join(w for w, _ in words), float(np.mean([c for _, c in words]))


def _has_dot(ink: np.ndarray) -> bool:
    """Whether a small mark (a decimal point) sits on the baseline between glyphs."""
    labels, n = ndimage.label(ink, structure=np.ones((3, 3)))
    rows = np.flatnonzero(ink.any(axis=1))
    if n < 3 or rows.size == 0:
        return False
    cols = np.flatnonzero(ink.any(axis=0))
    baseline = float(np.median(ink.shape[0] - 1 - np.argmax(ink[::-1, cols], axis=0)))
    height = baseline - rows[0]
    for sl in ndimage.find_objects(labels):
        h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        if (max(h, w) <= DOT_FRACTION * height and abs(sl[0].stop - 1 - baseline)
                <= 0.1 * height + 1 and cols[0] < sl[1].start and sl[1].stop - 1 < cols[-1]):
            return True
    return False


def value_of(text: str, ink: np.ndarray) -> float | None:
    """The label's value in nm from its text and glyphs, None unless sure (module doc)."""
    parsed = parse_label(text)
    if parsed is None:
        return None
    number, letters = parsed
    if not re.search(r"\d[.,:]\d", text) and _has_dot(ink):
        return None  # a decimal point on the label that the reading lost
    unit = unit_of(letters, ink)
    if unit is None or not is_round(number):
        return None
    return number * NM_PER_UNIT[unit]


def _page(crop: np.ndarray, height_px: int, binarise: bool) -> tuple[Image.Image, np.ndarray]:
    """Tesseract page of the label at text height ``height_px`` and its ink mask."""
    grey = label_ink(crop, height_px)
    ink = grey < GLYPH_THRESHOLD
    if binarise:
        grey = np.where(ink, 0, 255).astype(np.uint8)
    pad = max(8, grey.shape[0] // 3)
    return Image.fromarray(np.pad(grey, pad, constant_values=255)), ink


def read_label(crop: np.ndarray) -> LabelReading | None:
    """Read the value of a scale-bar label.

    The label is read in the ways of ``READINGS`` (one Tesseract call each) until two
    readings give the same value (module doc): two calls for a clear label, up to four for
    a hard one. A single reading is not trusted: Tesseract drops or swaps a digit now and
    then ("5nm" for "50 nm") with all checks passing.

    Parameters
    ----------
    crop : (h, w) float ndarray
        The label's text line as ink distance in [0, 1]: 0 = ink, 1 = paper, nothing but
        the text inked.

    Returns
    -------
    LabelReading or None
        A reading whose value another reading confirmed, else the first reading with its
        value set to None; None when Tesseract is not installed or fails to run.
    """
    if not tesseract_available():
        return None
    readings: list[LabelReading] = []
    for height_px, binarise, whitelist in READINGS:
        page, ink = _page(crop, height_px, binarise)
        try:
            text, confidence = tesseract_line(page, whitelist)
        except (OSError, RuntimeError):  # pytesseract's TesseractError is a RuntimeError
            return None
        reading = LabelReading(value_of(text, ink), text, confidence)
        if reading.value_nm is not None and any(
                r.value_nm is not None and np.isclose(r.value_nm, reading.value_nm)
                for r in readings):
            return reading
        readings.append(reading)
    return replace(readings[0], value_nm=None)

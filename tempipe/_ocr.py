"""Reading a scale bar's label ("20 nm", "0.5 µm", "100.0nm", "5 Å") with Tesseract.

Private helper of :mod:`tempipe.scalebar`. The cleaned label line (see
:mod:`tempipe._scalebar_label`) is scaled to a text height and read as one line
(``--psm 7``), marks inside a glyph's counter (the dot of a monospaced 0) removed, with a
whitelist of digits, separators and unit letters or without, in up to seven ways
(``READINGS``). A reading has a value only when its text is "<number> <unit>", the number
is a round scale-bar value (``ROUND_MANTISSAS``) and the reading agrees with the label's
glyphs: unit, decimal point, no glyph skipped, a 3 not a 5, a 6 or 8 on an oval glyph
read as the 0 it is, no µ read as a digit (:mod:`tempipe._label_glyphs`,
:mod:`tempipe._label_digits`).
The label's value is None (the user types the length) unless two readings agree, none
gives another value and no other length (round or not) is stated by more readings. Text
taller than a reading's height is shrunk to it, so that the readings differ. Without the
``tesseract`` program or ``pytesseract`` nothing is read.
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

from tempipe import _label_digits as _digits
from tempipe import _label_glyphs as _glyphs

#: Readings tried in turn, (text height in px, binarised, whitelist): Tesseract's digit
#: errors change with the scale and the preparation, so two agreeing readings are trusted.
#: A clear label is settled by the first two; the last three are for hard ones (a small
#: font over particles, a "1" dropped before "nm").
READINGS = ((32, False, True), (40, True, True), (48, False, False), (32, False, False),
            (56, False, True), (40, True, False), (24, False, False))
#: Largest upscaling factor. Large text is shrunk to the reading's height too: read at
#: its own size twice, one misread (a bold serif "5" as 3) is made twice.
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
#: ... and under which a pixel joining two pieces of ink is ink too (a stroke broken by the
#: anti-aliasing of a small bold serif glyph).
BRIDGE_THRESHOLD = 150
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
    stated_nm : float or None
        The length the text states when it parses and its unit agrees with the glyphs,
        round or not, its number unchecked (:func:`stated_nm`): readings that state another
        length more often than the value make the value unsure.
    """

    value_nm: float | None
    text: str
    confidence: float
    stated_nm: float | None = None


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
        The number (``,`` and ``:`` read as a decimal point, O and l as 0 and 1, a first
        i or ! as 1) and the unit letters in lower case as read (``"um"``, ``"pm"``,
        ``"nm"``, ``"a"``...); None also for a number with a space inside ("50000 0 nm")
        or starting with "0" and another digit ("05 nm"), where a decimal point was lost.

    Examples
    --------
    >>> parse_label("0,5 um")
    (0.5, 'um')
    """
    if re.search(r"\d\s+\d", text):
        return None  # "50000 0": a space inside a number, where a decimal point was lost
    squeezed = re.sub(r"\s+", "", text)
    squeezed = re.sub(r"^[i!]", "1", squeezed)  # a leading 1 read as "i" or "!"
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
        Wanted text height (the crop is not grown over ``MAX_UPSCALE`` times).
    """
    ink_rows = np.flatnonzero((crop < 0.5).any(axis=1))
    height = int(ink_rows[-1] - ink_rows[0] + 1) if ink_rows.size else crop.shape[0]
    scale = float(min(height_px / height, MAX_UPSCALE))
    grey = Image.fromarray(np.round(np.clip(crop, 0, 1) * 255).astype(np.uint8))
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    return np.asarray(grey.resize(size, Image.Resampling.BICUBIC))


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


def _number_and_unit(text: str, ink: np.ndarray) -> tuple[float, str] | None:
    """Number and unit of a reading, its unit checked on the glyphs; None unless both."""
    parsed = parse_label(text)  # (it reads a leading "i" or "!" as 1)
    unit = None if parsed is None else _glyphs.unit_of(parsed[1], ink)
    return None if unit is None else (parsed[0], unit)


def stated_nm(text: str, ink: np.ndarray) -> float | None:
    """The length in nm a reading states ("39 pm" read for "5 µm": 39000), its unit
    checked on the glyphs (``ink``) but not its number; None when it states none."""
    found = _number_and_unit(_digits.zeros_on_glyphs(text, ink), ink)
    return None if found is None else found[0] * NM_PER_UNIT[found[1]]


def value_of(text: str, ink: np.ndarray, scale: float = 1.0) -> float | None:
    """The label's value in nm from its text and glyphs (``ink`` upscaled ``scale`` times
    from the micrograph), None unless sure (module doc)."""
    text = _digits.zeros_on_glyphs(re.sub(r"^\s*[i!]", "1", text), ink)
    found = _number_and_unit(text, ink)
    if found is None or not is_round(found[0]):
        return None
    number, unit = found
    separated = bool(re.search(r"\d[.,:]\d", text))
    if separated != _glyphs.has_dot(ink):
        return None  # a decimal point on the label that the reading lost, or one made up
    n_digits = len(re.sub(r"[^0-9OoIl|]", "", text))
    tall, height = _glyphs.tall_glyphs(ink)
    if _glyphs.skipped(tall, height, scale, n_digits + len(unit)):
        return None  # glyphs the reading skipped ("2 µm" for "0.2 µm")
    if not separated and _glyphs.wide_gap(tall, height, n_digits):
        return None  # ... or a decimal point too faint to be seen on the glyphs
    digits = re.sub(r"[^0-9]", "", text.translate(_NUMBER_FIXES))
    if not _glyphs.threes_and_fives_agree(digits, tall, height, ink):
        return None  # a small bold serif 5 read as 3 (both round) by two readings
    if unit == "µm" and not _digits.digits_fit_before_mu(n_digits, ink, (tall, height)):
        return None  # the µ read as a digit: "500m" for "50µm"
    return number * NM_PER_UNIT[unit]


def _page(crop: np.ndarray, height_px: int, binarise: bool) -> tuple[Image.Image, np.ndarray]:
    """Tesseract page of the label at text height ``height_px`` and its ink mask."""
    grey = label_ink(crop, height_px)
    ink = _glyphs.bridged(grey < GLYPH_THRESHOLD, grey < BRIDGE_THRESHOLD)
    inner = _glyphs.enclosed_marks(ink)
    if inner.any():  # the dot of a monospaced zero: paper
        ink &= ~inner
        grey = np.where(ndimage.binary_dilation(inner, iterations=2) & ~ink, 255, grey)
        grey = grey.astype(np.uint8)
    if binarise:
        grey = np.where(ink, 0, 255).astype(np.uint8)
    pad = max(8, grey.shape[0] // 3)
    return Image.fromarray(np.pad(grey, pad, constant_values=255)), ink


def read_label(crop: np.ndarray, *alternatives: np.ndarray) -> LabelReading | None:
    """Read the value of a scale-bar label.

    The label is read in the ways of ``READINGS`` (one Tesseract call each) until two
    readings give the same value (module doc): two calls for a clear label, up to seven
    for a hard one, then the same for each of ``alternatives`` while none did. A single
    reading is not trusted: Tesseract drops or swaps a digit now and then ("5nm" for
    "50 nm", "3 µm" for "5 µm") with all checks passing; a reading whose value differs
    from an earlier one's (of any crop) ends the search with no value, and so does a
    confirmed value that more readings contradict by stating one other length, round or
    not ("39 pm" four times, "3 pm" twice, for "5 µm").

    Parameters
    ----------
    crop : (h, w) float ndarray
        The label's text line as ink distance in [0, 1]: 0 = ink, 1 = paper, nothing but
        the text inked.
    *alternatives : (h', w') float ndarray
        Other cleanings of the same line, read in turn when ``crop`` gives no value.

    Returns
    -------
    LabelReading or None
        A reading whose value another reading of the same crop confirmed and none
        contradicted, else the first reading with its value set to None; None when
        Tesseract is not installed or fails to run.
    """
    if not tesseract_available():
        return None
    readings: list[LabelReading] = []
    for image in (crop, *alternatives):
        try:
            confirmed, done = _read_crop(image, readings)
        except (OSError, RuntimeError):  # pytesseract's TesseractError is a RuntimeError
            return None
        if confirmed is not None or done:
            return confirmed or replace(readings[0], value_nm=None)
    return replace(readings[0], value_nm=None)


def _read_crop(crop: np.ndarray, readings: list) -> tuple[LabelReading | None, bool]:
    """Read one crop in the ways of ``READINGS``, adding to ``readings``: (the confirmed
    reading or None, whether readings disagreed)."""
    start = len(readings)
    for height_px, binarise, whitelist in READINGS:
        page, ink = _page(crop, height_px, binarise)
        text, confidence = tesseract_line(page, whitelist)
        reading = LabelReading(value_of(text, ink, ink.shape[0] / crop.shape[0]), text,
                               confidence, stated_nm(text, ink))
        earlier = [r.value_nm for r in readings if r.value_nm is not None]
        readings.append(reading)
        if reading.value_nm is None:
            continue
        if any(not np.isclose(v, reading.value_nm) for v in earlier):
            return None, True  # two readings disagree: neither is trusted
        if any(r.value_nm is not None for r in readings[start:-1]):
            if _outvoted(reading.value_nm, readings):
                return None, True
            return reading, False
    return None, False


def _outvoted(value_nm: float, readings: list) -> bool:
    """Whether more readings state one other length than state ``value_nm`` ("39 pm" four
    times, "3 pm" twice, for "5 µm")."""
    stated = np.array([r.stated_nm for r in readings if r.stated_nm is not None])
    support = np.isclose(stated, value_nm)
    return any(np.isclose(stated, v).sum() > support.sum() for v in stated[~support])

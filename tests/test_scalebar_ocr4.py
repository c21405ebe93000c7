"""Label reading, fourth round: a dotted monospaced 0 read as 8 or 6 (glyph shapes)."""

import numpy as np
import pytest
from test_scalebar import FONTS, _ink  # labels drawn as ink masks, as Tesseract's page

from tempipe import _label_digits, _ocr
from tempipe.scalebar import find_scale_bar
from tempipe.simulate import draw_scale_bar

needs_tesseract = pytest.mark.skipif(not _ocr.tesseract_available(),
                                     reason="Tesseract (tesseract-ocr + pytesseract) absent")


@pytest.mark.parametrize("font", ["DejaVuSansMono-Bold.ttf", "DejaVuSansMono.ttf",
                                  "DejaVuSans.ttf", "DejaVuSerif-Bold.ttf",
                                  "DejaVuSerifCondensed.ttf"])
def test_a_zero_read_as_eight_or_six_is_a_zero(font):
    """A 0 is an oval: a reading's 8 or 6 on it is a 0 (value and stated length), while a
    drawn 8, 6, 9 or 5 keeps the digit read (its value stays unsure: not round)."""
    assert _ocr.value_of("8.2pm", _ink("0.2 µm", font, 32)) == 200.0
    assert _ocr.value_of("6.5nm", _ink("0.5 nm", font, 32)) == 0.5
    assert _ocr.stated_nm("1000.6nm", _ink("1000.0 nm", font, 32)) == 1000.0
    assert _ocr.value_of("8.2pm", _ink("8.2 µm", font, 32)) is None
    assert _ocr.stated_nm("8.2pm", _ink("8.2 µm", font, 32)) == 8200.0
    assert _ocr.stated_nm("60nm", _ink("60 nm", font, 32)) == 60.0
    assert _ocr.stated_nm("90nm", _ink("90 nm", font, 32)) == 90.0
    assert _ocr.value_of("6nm", _ink("5 nm", font, 32)) is None


def test_zeros_need_one_glyph_per_digit():
    """Digits run together (more digits read than glyphs seen) are left as read."""
    ink = _ink("00 nm", "DejaVuSans.ttf", 32)
    joined = ink.copy()
    cols = np.flatnonzero(ink.any(axis=0))
    gap = cols[np.flatnonzero(np.diff(cols) > 1)[0]] + 1  # first gap: between the zeros
    joined[ink.shape[0] // 2, gap - 1:gap + 4] = True
    assert _label_digits.zeros_on_glyphs("80 nm", ink) == "00 nm"
    assert _label_digits.zeros_on_glyphs("80 nm", joined) == "80 nm"


@pytest.mark.parametrize("read, drawn", [("59000nm", "5000 nm"), ("160.0nm", "10.0 nm"),
                                         ("580A", "50 Å")])
def test_a_digit_made_up_is_not_made_a_zero(read, drawn):
    """A reading with a digit more than the label has (a 0 read as "90" or "60") is left as
    read, never turned into a round value ten times off."""
    ink = _ink(drawn, "DejaVuSansMono-Bold.ttf", 32)
    assert _label_digits.zeros_on_glyphs(read, ink) == read
    assert _ocr.value_of(read, ink) is None


@pytest.mark.parametrize("font", ["DejaVuSerif-Bold.ttf", "DejaVuSans.ttf",
                                  "DejaVuSansCondensed.ttf", "DejaVuSansMono.ttf"])
@pytest.mark.parametrize("drawn, right, misread", [("50µm", "50um", "500m"),
                                                    ("20µm", "20um", "200m")])
def test_a_mu_read_as_a_digit_leaves_no_room(font, drawn, right, misread):
    """Seeds 8 and 9's wrong values: a bold serif "50µm" read "500m" (the µ taken for a 0,
    the m for µm) gave 500 µm. The digits read must fit before the µ's descender. (The
    room is measured at the narrowest digit advance, so with a decimal point or a space
    before the µ one digit too many still fits: "0.20m" for "0.2µm" is not caught.)"""
    ink = _ink(drawn, font, 32)
    assert _label_digits.digits_fit_before_mu(2, ink)
    assert not _label_digits.digits_fit_before_mu(3, ink)
    value = float(right.split("u")[0]) * 1000
    assert _ocr.value_of(right, ink) == value
    assert _ocr.value_of(misread, ink) is None
    assert _label_digits.digits_fit_before_mu(9, _ink("50 nm", font, 32))  # no µ: no check


def _plain_field(seed: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.6, 0.04, (512, 512)).astype(np.float32)


@needs_tesseract
@pytest.mark.parametrize("text, box, position, value_nm", [
    ("0.5µm", True, "above", 500.0),     # read "6.5pm": unread before
    ("0.2 nm", True, "above", 0.2),      # read "6.2nm"
    ("0.5µm", False, "above", 500.0),    # read "8.5pm" / "6..5pm"
])
def test_small_dotted_zeros_are_read(text, box, position, value_nm):
    image, _ = draw_scale_bar(_plain_field(), value_nm / 150, length_nm=value_nm,
                              color="black", box=box, text_position=position, text=text,
                              font_path=FONTS + "DejaVuSansMono-Bold.ttf", font_size=13)
    assert find_scale_bar(image).value_nm == pytest.approx(value_nm)

"""Scale-bar finding and label reading on drawn bars of known length and value."""

import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from tempipe import _label_glyphs, _ocr
from tempipe._scalebar_label import find_label, in_ruler
from tempipe.errors import ParameterError
from tempipe.scalebar import (ScaleBar, find_scale_bar, mask_scale_bar,
                              scale_bar_exclusion)
from tempipe.simulate import draw_scale_bar, simulate_micrograph

FONTS = "/usr/share/fonts/truetype/dejavu/"
needs_tesseract = pytest.mark.skipif(not _ocr.tesseract_available(),
                                     reason="Tesseract (tesseract-ocr + pytesseract) absent")


@pytest.fixture(scope="module")
def fields():
    """Bar-less fields: dark particles (TEM) and bright particles (SEM/HAADF)."""
    return {p: simulate_micrograph((512, 512), n_particles=30, polarity=p, rng=11).image
            for p in ("dark", "bright")}


@pytest.fixture(scope="module")
def crowded():
    """Fields packed with particles, so that a label drawn in a corner lies over them."""
    return {p: simulate_micrograph((512, 512), n_particles=100, polarity=p, rng=21)
            for p in ("dark", "bright")}


def _overlap(a, b) -> float:
    """Intersection over union of two (min_row, min_col, max_row, max_col) boxes."""
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    area = lambda q: (q[2] - q[0]) * (q[3] - q[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


@pytest.mark.parametrize("polarity", ["dark", "bright"])
@pytest.mark.parametrize("corner, color, box, position, font", [
    ("bottom-right", "white", False, "above", "DejaVuSans.ttf"),
    ("bottom-left", "black", True, "below", "DejaVuSerif.ttf"),
    ("top-left", "white", True, "beside", "DejaVuSansMono-Bold.ttf"),
    ("top-right", "black", False, "beside", "DejaVuSansCondensed.ttf"),
    ("bottom-right", "black", True, "above", "DejaVuSerif-Bold.ttf"),
    ("top-left", "white", False, "below", "DejaVuSans-Bold.ttf"),
])
def test_drawn_bar_length_and_label_box(fields, polarity, corner, color, box, position, font):
    image, truth = draw_scale_bar(fields[polarity], 0.5, corner=corner, color=color, box=box,
                                  text_position=position, font_path=FONTS + font, rng=1)
    bar = find_scale_bar(image, read_label=False)
    assert bar is not None and bar.color == color
    assert bar.length_px == pytest.approx(truth.length_px, abs=0.5)
    assert bar.bbox == truth.bar_bbox
    assert _overlap(bar.label_bbox, truth.label_bbox) >= 0.85


@pytest.mark.parametrize("side, share", [(512, 0.05), (512, 0.3), (2048, 0.05), (2048, 0.3)])
def test_short_and_long_bars_on_small_and_large_images(side, share):
    base = np.random.default_rng(2).normal(0.7, 0.05, (side, side)).astype(np.float32)
    length = int(share * side)
    image, truth = draw_scale_bar(base, 2.0, length_nm=2.0 * length, box=side == 2048,
                                  color="black", rng=3)
    bar = find_scale_bar(image, read_label=False)
    assert bar is not None and abs(bar.length_px - truth.length_px) <= 0.5


def test_blurred_bar_measured_between_half_intensity_edges(fields):
    image, truth = draw_scale_bar(fields["dark"], 0.5, color="black", box=True, rng=4)
    bar = find_scale_bar(ndimage.gaussian_filter(image, 1.0), read_label=False)
    assert bar is not None and bar.length_px == pytest.approx(truth.length_px, abs=1.0)


def test_box_edge_is_not_taken_for_the_bar(fields):
    """Text wider than the bar: the box's edge strips are longer than the bar itself."""
    image, truth = draw_scale_bar(fields["bright"], 0.5, length_nm=30, box=True,
                                  color="black", text_position="below", text="10000.0 nm",
                                  font_size=20)
    bar = find_scale_bar(image, read_label=False)
    assert bar.bbox == truth.bar_bbox and bar.label_bbox == truth.label_bbox


@pytest.mark.parametrize("polarity", ["dark", "bright"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_bar_on_plain_fields(polarity, seed):
    image = simulate_micrograph((512, 512), n_particles=40, polarity=polarity, rng=seed).image
    assert find_scale_bar(image) is None


def _saturated_shapes() -> np.ndarray:
    """Saturated particles with straight edges: cubes cut by the border, a rod (a
    superellipse of exponent 4: a perfectly square-ended saturated rod would be a bar),
    and a panel letter with horizontal strokes, on a noisy background."""
    image = np.random.default_rng(5).normal(0.55, 0.04, (400, 500))
    image[360:400, 100:260] = 0.0                               # cube cut by the bottom edge
    image[:30, 300:460] = 1.0                                   # cube cut by the top edge
    rows, cols = np.mgrid[:400, :500]
    rod = ((cols - 250) / 70.0) ** 4 + ((rows - 330) / 9.0) ** 4 <= 1   # horizontal rod
    image[rod] = 0.0
    canvas = Image.new("L", (120, 90), 0)
    ImageDraw.Draw(canvas).text((5, 0), "B", fill=255,
                                font=ImageFont.truetype(FONTS + "DejaVuSans-Bold.ttf", 80))
    letter = np.asarray(canvas) > 127
    image[300:390, 380:500][letter] = 1.0
    return image


def test_no_bar_on_straight_particle_edges_rods_and_letters():
    assert find_scale_bar(_saturated_shapes()) is None


@pytest.mark.parametrize("bad", [np.zeros((3, 4, 5)), np.array([["a"]]),
                                 np.zeros((4, 4), dtype=complex)])
def test_bad_input(bad):
    with pytest.raises(ParameterError, match="2-D numeric image"):
        find_scale_bar(bad)


def test_non_finite_pixels_do_not_hide_the_bar(fields):
    image, truth = draw_scale_bar(fields["dark"], 0.5, rng=6)
    image[:5, :5], image[10, 10] = np.nan, np.inf
    assert find_scale_bar(image, read_label=False).length_px == pytest.approx(truth.length_px,
                                                                             abs=0.5)


def test_exclusion_covers_label_and_masking_removes_it(fields):
    image, truth = draw_scale_bar(fields["dark"], 0.5, color="black", text_position="beside",
                                  rng=7)
    bar = find_scale_bar(image, read_label=False)
    r0, c0, r1, c1 = scale_bar_exclusion(bar, image.shape)
    t0, s0, t1, s1 = truth.label_bbox
    assert r0 <= t0 and c0 <= s0 and r1 >= t1 and c1 >= s1
    masked = mask_scale_bar(image, bar)
    assert find_scale_bar(masked, read_label=False) is None
    outside = np.ones(image.shape, bool)
    outside[r0:r1, c0:c1] = False
    assert np.array_equal(masked[outside], image[outside])
    assert np.ptp(masked[r0:r1, c0:c1]) == 0


def test_exclusion_without_label_leaves_room_around_the_bar():
    bar = ScaleBar(100.0, (480, 300, 484, 400))
    r0, c0, r1, c1 = scale_bar_exclusion(bar, (500, 500))
    assert (r0, r1) == (455, 500) and (c0, c1) == (265, 435)


@pytest.mark.parametrize("text, expected", [
    ("0,5 um", (0.5, "um")), ("100.0nm", (100.0, "nm")), ("5A", (5.0, "a")),
    ("—20 nm.", (20.0, "nm")), ("O.5 pm", (0.5, "pm")), ("20:0 nm", (20.0, "nm")),
    ("Inm", (1.0, "nm")), ("05um", None), ("nm", None), ("20", None), ("1 0rn", None),
    ("50000 0 nm", None),
])
def test_parse_label(text, expected):
    assert _ocr.parse_label(text) == expected


@pytest.mark.parametrize("number, expected", [(1, True), (0.5, True), (250, True),
                                              (300, True), (1e4, True), (0.2, True),
                                              (6.5, False), (90, False), (1006, False),
                                              (0.11, False), (400, False)])
def test_round_values_only(number, expected):
    assert _ocr.is_round(number) is expected


@needs_tesseract
@pytest.mark.parametrize("text, font, value_nm", [
    ("0.5 µm", "DejaVuSans.ttf", 500.0),
    ("100.0nm", "DejaVuSerif.ttf", 100.0),
    ("2 µm", "DejaVuSerif-Bold.ttf", 2000.0),
    ("5 Å", "DejaVuSans-Bold.ttf", 0.5),
    ("0,5 µm", "DejaVuSans.ttf", 500.0),
    ("20 nm", "DejaVuSansMono.ttf", 20.0),
])
def test_label_value_is_read(fields, text, font, value_nm):
    image, _ = draw_scale_bar(fields["dark"], 0.5, length_nm=50, text=text, box=True,
                              font_path=FONTS + font)
    bar = find_scale_bar(image)
    assert bar.value_nm == pytest.approx(value_nm) and bar.text


@needs_tesseract
def test_one_glyph_label_in_a_box_is_read(fields):
    """ "2Å" in a serif font: the ring touches the A and the 2 runs into it, one glyph as
    wide as high, still the label in a box."""
    image, _ = draw_scale_bar(fields["bright"], 0.002, length_nm=0.2, text="2Å", box=True,
                              font_size=20, font_path=FONTS + "DejaVuSerif.ttf")
    assert find_scale_bar(image).value_nm == pytest.approx(0.2)


@needs_tesseract
def test_unround_garbled_or_picometre_labels_are_left_to_the_user(fields):
    """A p is a µ closed by a speck as often as a real p: "pm" is never trusted."""
    for text in ("37 nm", "x7 qz", "500 pm"):
        image, _ = draw_scale_bar(fields["dark"], 0.5, length_nm=50, text=text, box=True)
        bar = find_scale_bar(image)
        assert bar is not None and bar.value_nm is None and bar.length_px == 100


def test_without_tesseract_the_value_is_none(fields, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    image, truth = draw_scale_bar(fields["dark"], 0.5, text="20 nm", box=True)
    bar = find_scale_bar(image)
    assert bar.value_nm is None and bar.text is None
    assert bar.length_px == truth.length_px and bar.label_bbox == truth.label_bbox


def _ink(text: str, font: str, size: int) -> np.ndarray:
    """``text`` drawn in ``font`` at ``size`` px as a binary ink mask, as Tesseract's page."""
    face = ImageFont.truetype(FONTS + font, size)
    left, top, right, bottom = face.getbbox(text)
    canvas = Image.new("L", (right - left + 16, bottom - top + 16), 0)
    ImageDraw.Draw(canvas).text((8 - left, 8 - top), text, fill=255, font=face)
    return np.asarray(canvas) > 127


@pytest.mark.parametrize("font", ["DejaVuSans.ttf", "DejaVuSerif-Bold.ttf",
                                  "DejaVuSansMono.ttf", "DejaVuSansCondensed.ttf",
                                  "DejaVuSans-BoldOblique.ttf"])
@pytest.mark.parametrize("read, drawn, value_nm", [
    ("5.0nm", "5.0 nm", 5.0), ("50nm", "5.0 nm", None),            # a lost decimal point
    ("500000nm", "50000.0 nm", None), ("10um", "1.0 µm", None),
    ("5.0nm", "50 nm", None), ("50nm", "50 nm", 50.0),              # a made-up one
    ("0,5um", "0,5 µm", 500.0), ("1.0um", "1.0 µm", 1000.0),
    ("0.2nm", "0.2 µm", None), ("2nm", "2µm", None),                # a µ read as n
    ("2pm", "2 µm", 2000.0), ("500pm", "500 pm", None),             # p or closed µ: unsure
    ("5A", "5 Å", 0.5), ("200A", "200 n", None),                    # an A needs its ring
    ("2um", "0.2 µm", None),                                        # a skipped "0."
    ("0.1mm", "0.1 µm", 100.0), ("2mm", "2 nm", None),              # a bold µ read as m
    ("inm", "1nm", 1.0), ("5pm", "5 nm", None),                     # a 1 read as i
])
def test_value_must_agree_with_the_glyphs(font, read, drawn, value_nm):
    """A reading's decimal point and unit are checked on the drawn glyphs: a value 10 or
    1000 times off is never returned."""
    assert _ocr.value_of(read, _ink(drawn, font, 32)) == value_nm


@pytest.mark.parametrize("font", ["DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono-Bold.ttf"])
def test_specks_by_the_unit_do_not_change_it(font):
    """Specks of particle under "nm" leave it nm; a speck bridging the arms of a µ (read as
    "p") leaves it a µ, open at the top; a real p, closed at the top, stays unread."""
    ink = _ink("20 nm", font, 32)
    rows, cols = np.nonzero(ink)
    base, right = rows.max(), cols.max()
    for c in (right - 40, right - 25, right - 8):            # three specks under the nm
        ink[base + 3:base + 6, c:c + 3] = True
    assert _ocr.value_of("20nm", ink) == 20.0
    ink = _ink("2 µm", font, 32)
    mu = ndimage.find_objects(ndimage.label(ink)[0])[1]     # the µ, after the 2
    middle = (mu[0].start + mu[0].stop) // 2
    ink[middle + 2:middle + 5, mu[1]] |= True               # a speck closing its bowl
    assert _ocr.value_of("2pm", ink) == 2000.0
    assert _ocr.value_of("2pm", _ink("2 pm", font, 32)) is None


@pytest.mark.parametrize("font", ["DejaVuSans.ttf", "DejaVuSansCondensed.ttf"])
def test_smudge_under_the_n_is_no_mu(font):
    """A smudge of particle under the n of "nm", reaching into the gap before the m: the
    n hangs, but that gap, empty above the smudge, is no µ's bowl (once "20 µm")."""
    ink = _ink("20 nm", font, 32)
    *_, n_box, m_box = ndimage.find_objects(ndimage.label(ink)[0])
    base, gap = n_box[0].stop, m_box[1].start - n_box[1].stop
    ink[base - 1:base + 6, n_box[1].stop - 3:n_box[1].stop + gap // 2 + 1] = True
    assert [_ocr.value_of(text, ink) for text in ("20um", "20mm", "20nm")] == [None] * 3


def test_faint_decimal_point_leaves_the_value_unread():
    """An extra-light "5.0": the point is too faint for the ink mask, the gap it leaves
    between the digits is not."""
    ink = _ink("5.0 nm", "DejaVuSans-ExtraLight.ttf", 24)
    assert not _label_glyphs.has_dot(ink) and _ocr.value_of("50nm", ink) is None


_OVER = [("dark", "DejaVuSans.ttf", "50000.0 nm", "bottom-right"),
         ("bright", "DejaVuSerif-Bold.ttf", "0.5 µm", "top-left"),
         ("dark", "DejaVuSansMono.ttf", "20 nm", "bottom-left"),
         ("bright", "DejaVuSansCondensed.ttf", "2.0 nm", "top-right"),
         ("dark", "DejaVuSerif.ttf", "5 Å", "top-left"),
         ("bright", "DejaVuSans-Bold.ttf", "100.0nm", "bottom-right")]
_VALUE_NM = {"50000.0 nm": 5e4, "0.5 µm": 500.0, "20 nm": 20.0, "2.0 nm": 2.0, "5 Å": 0.5,
             "100.0nm": 100.0}


def _drawn_over_particles(field, polarity, font, text, corner):
    """A 120-px bar labelled ``text`` over the particles of ``field``; the text's coverage
    (alpha) where it can be seen (the particle under it is not at the ink level)."""
    color, value_nm = ("black" if polarity == "dark" else "white"), _VALUE_NM[text]
    image, truth = draw_scale_bar(field.image, value_nm / 120, length_nm=value_nm,
                                  color=color, text=text, font_path=FONTS + font,
                                  font_size=20, corner=corner)
    ink = float(field.image.max() if color == "white" else field.image.min())
    span = ink - field.image
    visible = np.abs(span) >= 0.3 * np.ptp(field.image)
    alpha = np.where(visible, (image - field.image) / np.where(visible, span, 1.0), 0.0)
    (b0, b1, b2, b3), (r0, c0, _, c1) = truth.bar_bbox, truth.label_bbox
    alpha[b0:b2, b1:b3] = 0.0
    assert np.mean(field.labels[r0:b0, c0:c1] > 0) >= 0.3  # the text lies over particles
    return image, truth, color, alpha, visible


def test_label_crop_over_particles_keeps_the_text_and_drops_the_particles(crowded):
    """The crop cleaned against the local paper, against the drawn text: all of the
    text's core, and (over six labels) at least 90 % of its ink on the text (the plain
    cleaning, alone before: 75 %)."""
    precisions = []
    for polarity, font, text, corner in _OVER:
        field = crowded[polarity]
        image, truth, color, alpha, visible = _drawn_over_particles(field, polarity, font,
                                                                    text, corner)
        label = find_label(image, truth.bar_bbox, color)
        got = np.zeros(image.shape, dtype=bool)
        crop, (o_r, o_c) = label.crop, label.crop_origin
        got[o_r:o_r + crop.shape[0], o_c:o_c + crop.shape[1]] = crop < 0.5
        core = (alpha >= 0.9) & visible
        assert np.mean(got[core]) >= 0.97, (text, np.mean(got[core]))
        precisions.append(np.mean(ndimage.binary_dilation(alpha > 0.1)[got]))
    assert np.mean(precisions) >= 0.9, precisions


def test_block_of_a_chequered_ruler_is_no_bar():
    """A ruler of alternating black and white blocks: a block has no label of its own."""
    image = np.full((200, 300), 0.5)
    image[150:166, 20:284] = 0.0                     # frame
    image[152:164, 22:282] = 1.0                     # white blocks
    for start in (62, 142, 222):
        image[152:164, start:start + 40] = 0.0       # black blocks
    levels = (0.0, 1.0)
    assert in_ruler(image, (152, 62, 164, 102), levels)
    lone = np.full((200, 300), 0.5)
    lone[150:162, 40:200] = 1.0
    lone[152:160, 60:180] = 0.0                      # a black bar in a white box
    assert not in_ruler(lone, (152, 60, 160, 180), levels)


@needs_tesseract
def test_labels_over_particles_are_read_and_never_wrong(crowded):
    """Six labels over particles: none read wrong, at least five read (the previous
    cleaning: one read, one wrong: "2.0 nm" as 20)."""
    values = []
    for polarity, font, text, corner in _OVER:
        image, truth, *_ = _drawn_over_particles(crowded[polarity], polarity, font, text,
                                                 corner)
        bar = find_scale_bar(image)
        assert bar is not None and bar.length_px == pytest.approx(truth.length_px, abs=0.5)
        assert bar.value_nm is None or bar.value_nm == pytest.approx(truth.value_nm), text
        values.append(bar.value_nm)
    assert sum(v is not None for v in values) >= 5, values


def _label_crop(text: str, font: str, size: int) -> np.ndarray:
    """A clean label crop (ink distance: 0 = ink, 1 = paper) of ``text``."""
    return 1.0 - _ink(text, font, size).astype(float)


@pytest.mark.parametrize("texts, value_nm", [
    (["5pm", "2pm", "2pm", "5pm"], None),      # "5 µm" read once as 5, then as 2: unread
    (["5pm", "3pm", "3pm", "5pm"], 5000.0),    # ... but the glyph has a 5's stem: no 3
    (["5pm", "", "5 um", "3pm"], 5000.0),      # confirmed before any contradiction
    (["", "5pm", "", ""], None),               # never confirmed
    (["39pm", "3pm", "39 pm", "39pm", "3pm"], None),  # 39 µm stated (not round) more often
    (["90pm", "5pm", "90pm", "5pm"], 5000.0),  # ... as often: still confirmed
])
def test_readings_must_agree_and_none_contradict(monkeypatch, texts, value_nm):
    readings = iter(texts + [""] * len(_ocr.READINGS))
    monkeypatch.setattr(_ocr, "tesseract_available", lambda: True)
    monkeypatch.setattr(_ocr, "tesseract_line", lambda page, whitelist=True: (next(readings),
                                                                             50.0))
    assert _ocr.read_label(_label_crop("5 µm", "DejaVuSerif.ttf", 22)).value_nm == value_nm


@needs_tesseract
@pytest.mark.parametrize("polarity, color, box, text, font, size, value_nm", [
    ("bright", "white", True, "5 µm", "DejaVuSerif.ttf", 22, 5000.0),   # once read as 3 µm
    ("dark", "black", False, "5.0 nm", "DejaVuSansCondensed.ttf", 14, 5.0),  # once as 50
])
def test_labels_once_read_wrong_are_right_or_unread(crowded, polarity, color, box, text,
                                                    font, size, value_nm):
    image, truth = draw_scale_bar(crowded[polarity].image, value_nm / 69, length_nm=value_nm,
                                  color=color, box=box, text_position="beside", text=text,
                                  font_path=FONTS + font, font_size=size)
    bar = find_scale_bar(image)
    assert bar is not None and bar.value_nm in (None, pytest.approx(value_nm))


@pytest.mark.parametrize("font", ["DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf"])
def test_dot_of_a_monospaced_zero_is_an_enclosed_mark(font):
    """The dot inside a monospaced 0 (read as 8 or 6 by Tesseract) lies wholly inside the
    0's counter; no ink of "8", "µm", "Å" or a decimal point does."""
    ink = _ink("1000 nm", font, 40)
    inner = _label_glyphs.enclosed_marks(ink)
    labels, _ = ndimage.label(inner)
    assert labels.max() == 3  # one dot in each 0
    glyphs = ndimage.find_objects(ndimage.label(ink & ~inner)[0])
    for dot in ndimage.find_objects(labels):  # each inside a glyph's box
        assert any(all(g.start < d.start and d.stop < g.stop for d, g in zip(dot, glyph))
                   for glyph in glyphs)
    for text in ("8.5 µm", "20 Å", "0.5 nm"):
        assert not _label_glyphs.enclosed_marks(_ink(text, "DejaVuSans.ttf", 40)).any()


def test_one_pixel_break_in_a_stroke_is_bridged():
    """A stroke broken by one faint pixel is joined; a gap between two glyphs is not."""
    ink = np.zeros((10, 20), dtype=bool)
    ink[2:8, 2:5] = ink[2:8, 6:9] = True        # one stroke, broken at column 5
    ink[2:8, 13:16] = True                       # another glyph, 4 px away
    faint = ink.copy()
    faint[4, 5] = True                           # the break's faint pixel
    faint[4, 10:13] = True                       # faint pixels between the glyphs
    joined = _label_glyphs.bridged(ink, faint)
    assert ndimage.label(joined, structure=np.ones((3, 3)))[1] == 2
    assert joined[4, 5] and not joined[4, 10:13].any()


def test_large_text_is_read_at_the_reading_height():
    """An 80-px label is shrunk to the reading's height: read at its own size, the two
    readings are one image twice (a bold serif "5 µm" once read twice as 3 µm)."""
    crop = _label_crop("5 µm", "DejaVuSerif-Bold.ttf", 80)
    for height in (32, 48):
        rows = np.flatnonzero((_ocr.label_ink(crop, height) < 128).any(axis=1))
        assert abs((rows[-1] - rows[0] + 1) - height) <= 0.1 * height


def _plain_field(seed: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.6, 0.04, (512, 512)).astype(np.float32)


@needs_tesseract
@pytest.mark.parametrize("text, font, size, box, position, value_nm", [
    ("1Å", "DejaVuSansMono-Bold.ttf", 20, False, "above", 0.1),   # one glyph, taller (ring)
    ("2Å", "DejaVuSansCondensed.ttf", 11, False, "above", 0.2),
    ("20.0 nm", "DejaVuSansCondensed.ttf", 11, False, "below", 20.0),  # a 1-px point
    ("0.5nm", "DejaVuSerifCondensed.ttf", 14, False, "above", 0.5),  # a thin stem of 5
    ("0.5 µm", "DejaVuSansMono-Bold.ttf", 43, True, "beside", 500.0),  # point apart in a box
    ("1000nm", "DejaVuSansMono-Bold.ttf", 34, True, "above", 1000.0),  # dotted zeros
])
def test_labels_once_left_unread_are_read(text, font, size, box, position, value_nm):
    image, _ = draw_scale_bar(_plain_field(), value_nm / 150, length_nm=value_nm,
                              color="black", box=box, text_position=position, text=text,
                              font_path=FONTS + font, font_size=size)
    assert find_scale_bar(image).value_nm == pytest.approx(value_nm)


@pytest.mark.parametrize("font", ["DejaVuSans.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansMono.ttf",
                                  "DejaVuSerifCondensed.ttf", "DejaVuSans-Bold.ttf"])
def test_a_five_read_as_three_is_not_trusted(font):
    """5 and 3 are both round: a 5 read as 3 (a small bold serif 5, read so twice) is
    caught by the 5's upper-left stem; real 3s and 5s keep their values."""
    assert _ocr.value_of("3nm", _ink("5 nm", font, 32)) is None
    assert _ocr.value_of("30nm", _ink("50 nm", font, 32)) is None
    assert _ocr.value_of("5nm", _ink("3 nm", font, 32)) is None
    assert _ocr.value_of("3nm", _ink("3 nm", font, 32)) == 3.0
    assert _ocr.value_of("50nm", _ink("50 nm", font, 32)) == 50.0

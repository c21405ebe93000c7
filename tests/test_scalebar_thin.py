"""Thin line scale bars (1-2 px, with or without end ticks): found and measured on drawn
bars of known length; thin straight lines that are no bars are not taken for one."""

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from tempipe._draw_scalebar import text_alpha
from tempipe.errors import ParameterError
from tempipe.scalebar import find_scale_bar, mask_scale_bar, scale_bar_exclusion
from tempipe.simulate import draw_scale_bar, simulate_micrograph

FONTS = "/usr/share/fonts/truetype/dejavu/"


@pytest.fixture(scope="module")
def twins():
    """Particle fields and their particle-free twins (same imaging), per polarity."""
    return {p: tuple(simulate_micrograph((512, 512), n_particles=n, polarity=p, rng=31).image
                     for n in (40, 0)) for p in ("dark", "bright")}


def _thin_case(twins, polarity, **style):
    """A thin bar drawn with its label on particle-free background, as on a data strip."""
    field, empty = twins[polarity]
    color = "black" if polarity == "dark" else "white"
    args = dict(length_nm=style.pop("length_nm", 50.0), color=color, **style)
    _, truth = draw_scale_bar(field, 0.5, **args)
    r0, c0, r1, c1 = truth.label_bbox
    patched = field.copy()
    patched[max(0, r0 - 8):r1 + 8, max(0, c0 - 8):c1 + 8] = \
        empty[max(0, r0 - 8):r1 + 8, max(0, c0 - 8):c1 + 8]
    return draw_scale_bar(patched, 0.5, **args)


@pytest.mark.parametrize("polarity, thickness, ticks, corner, position, length_nm, font", [
    ("dark", 1, True, "bottom-left", "above", 50.0, "DejaVuSans.ttf"),
    ("dark", 1, False, "bottom-right", "below", 30.0, "DejaVuSerif.ttf"),
    ("bright", 1, True, "top-right", "beside", 40.0, "DejaVuSans-Bold.ttf"),
    ("bright", 2, True, "bottom-right", "above", 60.0, "DejaVuSansMono.ttf"),
    ("dark", 2, True, "top-left", "below", 25.0, "DejaVuSansCondensed.ttf"),
])
def test_thin_bar_length_within_two_pixels(twins, polarity, thickness, ticks, corner,
                                           position, length_nm, font):
    image, truth = _thin_case(twins, polarity, thickness_px=thickness, end_ticks=ticks,
                              corner=corner, text_position=position, length_nm=length_nm,
                              font_path=FONTS + font)
    bar = find_scale_bar(image, read_label=False)
    assert bar is not None
    assert abs(bar.length_px - truth.length_px) <= 2
    assert abs(bar.bbox[0] - truth.bar_bbox[0]) <= 1 and abs(bar.bbox[1] - truth.bar_bbox[1]) <= 2


def test_thin_bar_and_its_label_are_masked_out(twins):
    image, truth = _thin_case(twins, "dark", thickness_px=1, end_ticks=True,
                              corner="bottom-right", text_position="above")
    bar = find_scale_bar(image, read_label=False)
    r0, c0, r1, c1 = scale_bar_exclusion(bar, image.shape)
    t0, s0, t1, s1 = truth.label_bbox  # bar, ticks and text
    assert r0 <= t0 and c0 <= s0 and r1 >= t1 and c1 >= s1
    masked = mask_scale_bar(image, bar)
    assert find_scale_bar(masked, read_label=False) is None


def test_line_with_its_text_set_in_the_middle_is_measured_end_to_end(twins):
    """The line broken by its label ("|---- 200 nm ----|"), as some SEMs draw it."""
    _, empty = twins["bright"]
    image = empty.copy()
    ink = float(image.max())
    row, c0, c1 = 470, 250, 430
    image[row, c0:c1] = ink
    image[row - 4:row + 5, [c0, c1 - 1]] = ink
    alpha = text_alpha("200 nm", ImageFont.truetype(FONTS + "DejaVuSans.ttf", 16))
    h, w = alpha.shape
    t0, s0 = row - h // 2, (c0 + c1 - w) // 2
    image[row, s0 - 4:s0 + w + 4] = image[row - 6, s0 - 4:s0 + w + 4]  # gap for the text
    region = image[t0:t0 + h, s0:s0 + w]
    region[...] = region * (1 - alpha) + ink * alpha
    bar = find_scale_bar(image, read_label=False)
    assert bar is not None and abs(bar.length_px - (c1 - c0)) <= 2


def _panel_lines(polarity: str, seed: int) -> np.ndarray:
    """A bar-less field with a one-pixel panel border, a one-pixel line without a label near
    the bottom, and a panel letter "(a)" in a one-pixel outlined box."""
    image = simulate_micrograph((512, 512), n_particles=40, polarity=polarity,
                                rng=seed).image.copy()
    ink = float(image.min() if polarity == "dark" else image.max())
    image[[4, 507], 4:508] = ink
    image[4:508, [4, 507]] = ink
    image[450, 120:300] = ink
    canvas = Image.new("L", (60, 36), 0)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([0, 0, 59, 35], outline=255)
    draw.text((8, 4), "(a)", fill=255, font=ImageFont.truetype(FONTS + "DejaVuSans.ttf", 22))
    alpha = np.asarray(canvas, dtype=np.float32) / 255
    region = image[470:506, 20:80]
    region[...] = region * (1 - alpha) + ink * alpha
    return image


@pytest.mark.parametrize("polarity, seed", [("dark", 3), ("bright", 4)])
def test_panel_borders_lines_and_outlined_letters_are_no_bars(polarity, seed):
    image = _panel_lines(polarity, seed)
    assert find_scale_bar(image, read_label=False) is None
    assert find_scale_bar(image) is None


def test_bad_thickness():
    with pytest.raises(ParameterError, match="thickness_px"):
        draw_scale_bar(np.zeros((200, 300)), 1.0, thickness_px=0)

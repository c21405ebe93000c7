"""tempipe.crops: the CNN input convention, checked on particles whose geometry is known."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from skimage import draw
from skimage.transform import resize

from tempipe.crops import CROP_MARGIN, CROP_SIZE, crop_masks, crop_particles
from tempipe.errors import ParameterError

FILL = CROP_SIZE / (1 + 2 * CROP_MARGIN)  # crop pixels spanned by a particle's longer side


def dark_field(labels, particle=0.3, background=0.9, noise=0.0, seed=0):
    """Bright-field-like image: particles darker than the background."""
    rng = np.random.default_rng(seed)
    image = np.where(labels > 0, particle, background) + rng.normal(0, noise, labels.shape)
    return image.astype(np.float32)


def extent(crop, level=0.5):
    """(rows, cols) spanned by the pixels above ``level``."""
    rows, cols = np.nonzero(crop > level)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def three_particles():
    lab = np.zeros((120, 160), np.int32)
    lab[10:40, 10:40] = 5     # square
    lab[60:80, 20:60] = 2     # 2:1, wide
    lab[50:110, 100:130] = 9  # 1:2, tall
    return lab


def test_shape_dtype_and_row_order():
    lab = three_particles()
    crops = crop_particles(dark_field(lab), lab)
    assert crops.shape == (3, CROP_SIZE, CROP_SIZE) and crops.dtype == np.float32
    # ascending ids 2, 5, 9: wide, square, tall
    shapes = [extent(c) for c in crops]
    assert shapes[0][1] > 1.8 * shapes[0][0]
    assert abs(shapes[1][0] - shapes[1][1]) <= 1
    assert shapes[2][0] > 1.8 * shapes[2][1]
    chosen = crop_particles(dark_field(lab), lab, 32, label_ids=[9, 2])
    assert chosen.shape == (2, 32, 32)
    assert_allclose(chosen, crop_particles(dark_field(lab), lab, 32)[[2, 0]])
    masks = crop_masks(lab, label_ids=np.array([5]))
    assert masks.shape == (1, CROP_SIZE, CROP_SIZE) and masks.dtype == np.float32


def test_particle_is_one_inside_and_zero_outside():
    lab = np.zeros((100, 100), np.int32)
    lab[30:60, 20:80] = 1  # 30 x 60: spans FILL / 2 by FILL crop pixels
    crop = crop_particles(dark_field(lab, noise=0.02), lab)[0]
    centre = CROP_SIZE / 2
    half_h, half_w = FILL / 4, FILL / 2
    rows, cols = np.mgrid[:CROP_SIZE, :CROP_SIZE] + 0.5
    inside = (abs(rows - centre) < half_h - 2) & (abs(cols - centre) < half_w - 2)
    outside = (abs(rows - centre) > half_h + 2) | (abs(cols - centre) > half_w + 2)
    assert_allclose(crop[inside].mean(), 1.0, atol=0.02)
    assert crop[inside].min() > 0.7
    assert np.all(crop[outside] == 0.0)
    assert crop.min() >= 0.0 and crop.max() <= 2.0


@pytest.mark.parametrize("h, w", [(20, 40), (40, 20), (30, 60), (10, 20)])
def test_aspect_ratio_and_fill_fraction_are_preserved(h, w):
    lab = np.zeros((120, 120), np.int32)
    lab[40:40 + h, 30:30 + w] = 1
    rows, cols = extent(crop_masks(lab)[0])
    assert_allclose(max(rows, cols), FILL, atol=1.5)  # whatever the particle's pixel size
    assert_allclose(max(rows, cols) / min(rows, cols), max(h, w) / min(h, w), rtol=0.08)
    assert (cols > rows) == (w > h)


@pytest.mark.parametrize("side", [40, 100])  # upsampled and downsampled (anti-aliased)
def test_window_matches_skimage_resize_when_pixel_aligned(side):
    # a side x side bbox gives a window of 1.3 side pixels starting on a pixel edge, so
    # skimage.transform.resize of that integer window is the reference
    lab = np.zeros((200, 200), np.int32)
    r0 = c0 = 40
    lab[draw.ellipse(r0 + (side - 1) / 2, c0 + (side - 1) / 2, side / 2, side / 3,
                     rotation=0.3)] = 1
    lab[r0 + side // 2, c0:c0 + side] = 1  # a cross makes the bbox exactly side x side
    lab[r0:r0 + side, c0 + side // 2] = 1
    rows, cols = np.nonzero(lab)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (r0, r0 + side - 1, c0,
                                                                 c0 + side - 1)
    pad = int(round(side * CROP_MARGIN))
    window = (lab[r0 - pad:r0 + side + pad, c0 - pad:c0 + side + pad] == 1).astype(float)
    expected = resize(window, (CROP_SIZE, CROP_SIZE), order=1, anti_aliasing=True,
                      mode="constant")
    assert_allclose(crop_masks(lab)[0], expected, atol=1e-5)


def test_context_keeps_the_faint_background_near_the_mask_only():
    # a 40 x 40 square (window 52 px from (34, 34), pixel-aligned as above) with a faint spike
    # of half its contrast sticking out 6 px to the right, and a neighbour 1-4 px above it
    lab = np.zeros((140, 140), np.int32)
    lab[40:80, 40:80] = 1
    lab[36:40, 50:55] = 2
    image = dark_field(lab)
    image[58:62, 80:86] = 0.6  # (0.6 - 0.9) / (0.3 - 0.9) = 0.5
    window = (lab[34:86, 34:86] == 1).astype(float)
    assert_allclose(crop_particles(image, lab, label_ids=[1])[0],
                    resize(window, (CROP_SIZE, CROP_SIZE), order=1, anti_aliasing=True,
                           mode="constant"), atol=1e-5)  # context 0: the mask alone
    window[24:28, 46:50] = 0.5  # spike pixels 1-4 px from the mask; 5 and 6 px: outside
    expected = resize(window, (CROP_SIZE, CROP_SIZE), order=1, anti_aliasing=True,
                      mode="constant")
    assert_allclose(crop_particles(image, lab, label_ids=[1], context=4)[0], expected,
                    atol=1e-5)
    image[lab == 2] = 50.0  # the neighbour stays 0 whatever it looks like
    assert_allclose(crop_particles(image, lab, label_ids=[1], context=4)[0], expected,
                    atol=1e-5)


def test_symmetric_particle_gives_symmetric_crop():
    lab = np.zeros((90, 90), np.int32)
    lab[draw.disk((45, 44.5), 17.3)] = 1
    crop = crop_masks(lab, 48)[0]
    assert_allclose(crop, crop[::-1, :], atol=1e-5)
    assert_allclose(crop, crop[:, ::-1], atol=1e-5)


def test_same_shape_at_two_pixel_sizes_gives_the_same_crop():
    small, large = np.zeros((60, 60), np.int32), np.zeros((200, 200), np.int32)
    small[draw.ellipse(30, 30, 8, 14, rotation=0.4)] = 1
    large[draw.ellipse(100, 100, 32, 56, rotation=0.4)] = 1
    a, b = crop_masks(small)[0] > 0.5, crop_masks(large)[0] > 0.5
    assert (a & b).sum() / (a | b).sum() > 0.9


def test_dark_and_bright_particles_give_the_same_crop():
    lab = three_particles()
    dark = dark_field(lab, noise=0.03)
    bright = 1.5 - 2.0 * dark  # inverted polarity, other contrast and offset
    a, b = crop_particles(dark, lab), crop_particles(bright, lab)
    assert_allclose(a, b, atol=1e-5)
    assert_allclose(crop_particles(dark, lab, polarity="dark"), a)
    assert_allclose(crop_particles(bright, lab, polarity="bright"), b)
    # forcing the wrong polarity leaves no contrast to normalise: the bare mask
    assert_allclose(crop_particles(dark, lab, polarity="bright"), crop_masks(lab), atol=1e-6)


def test_intensity_is_normalised_and_clipped():
    lab = np.zeros((80, 80), np.int32)
    lab[20:60, 20:60] = 1
    image = dark_field(lab, particle=0.5, background=1.0)
    image[30:50, 30:50] = 0.0  # a core twice as dark as the median particle pixel
    image[24:27, 24:27] = -1.0  # a spot four times as dark: clipped to 2
    crop = crop_particles(image, lab)[0]
    mapped = lambda r: int((r - 40 + 0.5) * CROP_SIZE / (40 * 1.3) + CROP_SIZE / 2)  # noqa: E731
    assert_allclose(crop[mapped(40), mapped(40)], 2.0, atol=1e-5)  # (0 - 1) / (0.5 - 1)
    assert_allclose(crop[mapped(25), mapped(25)], 2.0, atol=0.05)
    assert_allclose(crop[mapped(55), mapped(40)], 1.0, atol=1e-5)


def test_ideal_image_crop_equals_mask_crop():
    lab = three_particles()
    assert_allclose(crop_particles(dark_field(lab), lab), crop_masks(lab), atol=1e-6)


def test_neighbour_inside_the_bounding_box_is_masked_out():
    lab = np.zeros((80, 80), np.int32)
    lab[draw.disk((40, 40), 15)] = 1
    lab[25:31, 25:31] = 2  # in particle 1's bbox corner, touching it
    assert (lab == 2).sum() == 36 and ((lab[24:32, 24:32] == 1).any())
    image = dark_field(lab)
    crop = crop_particles(image, lab, label_ids=[1])[0]
    lab_without = np.where(lab == 2, 0, lab)
    image_without = np.where(lab == 2, 0.9, image).astype(np.float32)
    assert_allclose(crop, crop_particles(image_without, lab_without)[0], atol=1e-6)


def test_neighbours_are_masked_out():
    lab = np.zeros((80, 80), np.int32)
    lab[20:50, 20:40] = 1
    lab[20:50, 40:60] = 2  # touching on the right
    image = dark_field(lab)
    crop = crop_particles(image, lab, label_ids=[1])[0]
    image[lab == 2] = 50.0  # whatever the neighbour looks like
    assert_allclose(crop_particles(image, lab, label_ids=[1])[0], crop)
    # the window (side 30 * 1.3, centred on particle 1) reaches 9.5 px into particle 2
    right = crop[:, int(CROP_SIZE / 2 + 0.5 * FILL * 20 / 30) + 2:]
    assert right.size and np.all(right == 0.0)
    assert crop.max() > 0.9


def test_particle_cut_by_the_image_border():
    lab = np.zeros((60, 60), np.int32)
    lab[draw.disk((30, 2), 12, shape=lab.shape)] = 1  # mostly outside, left edge
    crop = crop_particles(dark_field(lab), lab)[0]
    assert np.isfinite(crop).all() and crop.shape == (CROP_SIZE, CROP_SIZE)
    h, w = extent(crop)
    assert_allclose(h, FILL, atol=1.5) and w < h
    assert_allclose(crop[CROP_SIZE // 2, CROP_SIZE // 2], 1.0, atol=1e-5)
    # the image edge (col -0.5) maps to crop column ~17: everything left of it is 0
    assert np.all(crop[:, :15] == 0.0) and crop[:, 19].max() > 0.5


def test_window_without_background_uses_the_image_background():
    lab = np.zeros((120, 120), np.int32)
    lab[20:100, 20:100] = 2  # a wide neighbour filling particle 1's whole window
    lab[50:70, 50:70] = 1
    image = dark_field(lab, particle=0.6, background=0.9)
    image[lab == 1] = 0.3
    image[55:65, 55:65] = 0.0  # core: (0 - 0.9) / (0.3 - 0.9) = 1.5 with the image's b
    crop = crop_particles(image, lab, label_ids=[1])[0]
    assert_allclose(crop[CROP_SIZE // 2, CROP_SIZE // 2], 1.5, atol=1e-5)


def test_no_background_anywhere_falls_back_to_masks():
    lab = np.ones((40, 40), np.int32)
    lab[:, 20:] = 2
    crops = crop_particles(dark_field(lab), lab)
    assert_allclose(crops, crop_masks(lab), atol=1e-6)


def test_empty_and_huge_ids():
    empty = crop_particles(np.ones((20, 20)), np.zeros((20, 20), int), 16)
    assert empty.shape == (0, 16, 16) and empty.dtype == np.float32
    lab = three_particles().astype(np.int64)
    big = np.where(lab > 0, lab + 2**40, 0)
    assert_allclose(crop_particles(dark_field(lab), big), crop_particles(dark_field(lab), lab))
    assert_allclose(crop_masks(big, label_ids=[9 + 2**40]), crop_masks(lab, label_ids=[9]))


LAB = three_particles()
IMG = dark_field(LAB)


@pytest.mark.parametrize("kwargs, match", [
    ({"size": 3}, "size must be an integer >= 4"),
    ({"size": 32.0}, "size must be an integer"),
    ({"size": True}, "size must be an integer"),
    ({"margin": -0.1}, "margin must be a number in"),
    ({"margin": float("nan")}, "margin must be a number in"),
    ({"margin": "0.1"}, "margin must be a number in"),
    ({"polarity": "grey"}, "polarity must be None, 'dark' or 'bright'"),
    ({"context": -1}, "context must be an integer number of pixels"),
    ({"context": 2.0}, "context must be an integer number of pixels"),
    ({"context": True}, "context must be an integer number of pixels"),
    ({"label_ids": [5, 99]}, r"label_ids \[99\] are not particles"),
    ({"label_ids": [0]}, r"label_ids \[0\] are not particles"),
    ({"label_ids": [[5]]}, "1-D sequence of integer ids"),
    ({"label_ids": [5.0]}, "1-D sequence of integer ids"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        crop_particles(IMG, LAB, **kwargs)


@pytest.mark.parametrize("image, labels, match", [
    (IMG[None], LAB, "image must be a 2-D array"),
    (IMG.astype(complex), LAB, "real numbers"),
    (np.where(LAB > 0, np.nan, 1.0), LAB, "NaN or infinite"),
    (IMG, LAB.astype(float), "2-D integer label image"),
    (IMG[:, :50], LAB, r"labels has shape \(120, 160\) but image has shape \(120, 50\)"),
])
def test_bad_arrays(image, labels, match):
    with pytest.raises(ParameterError, match=match):
        crop_particles(image, labels)


def test_crop_masks_validates_too():
    with pytest.raises(ParameterError, match="2-D integer label image"):
        crop_masks(LAB > 0)
    with pytest.raises(ParameterError, match="size must be an integer"):
        crop_masks(LAB, 2)

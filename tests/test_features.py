"""tempipe.features: every feature checked against an independent truth.

Truths are analytic (areas, rectangle diagonals, lattice-point counts), brute force over
the pixel squares' corners (Feret diameters), numpy on the masked pixels (intensities) or
scikit-image's independent implementations (Euler number, filled area, bounding boxes).
"""

import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import ndimage as ndi
from skimage import draw, measure

from tempipe.errors import CalibrationError, ParameterError
from tempipe.features import COLUMNS, FEATURES, PIXEL_COLUMNS, measure_particles


def one(mask, image=None, pixel_size_nm=None):
    """Measure a single binary mask; return its row as a Series."""
    lab = np.asarray(mask, dtype=np.int32)
    img = np.ones(lab.shape) if image is None else image
    table = measure_particles(lab, img, pixel_size_nm)
    assert len(table) == 1
    return table.iloc[0]


def disk_mask(radius, shape=(80, 80), centre=(40.3, 39.6)):
    mask = np.zeros(shape, bool)
    mask[draw.disk(centre, radius, shape=shape)] = True
    return mask


def rotated_rect(length, width, angle_deg, shape=(120, 120)):
    """Rectangle whose long axis makes ``angle_deg`` with the column axis (counter-clockwise
    as displayed, i.e. towards smaller rows)."""
    t = np.radians(angle_deg)
    along, across = np.array([-np.sin(t), np.cos(t)]), np.array([np.cos(t), np.sin(t)])
    centre = np.array(shape) / 2 + 0.37
    corners = [centre + sa * length / 2 * along + sb * width / 2 * across
               for sa, sb in ((1, 1), (1, -1), (-1, -1), (-1, 1))]
    rr, cc = draw.polygon(*np.array(corners).T, shape=shape)
    mask = np.zeros(shape, bool)
    mask[rr, cc] = True
    return mask


def brute_feret(mask, n_angles=7200):
    """Max and min caliper width of the union of pixel squares, by brute force on corners."""
    rows, cols = np.nonzero(mask)
    corners = np.concatenate([np.stack([rows + dr, cols + dc], 1)
                              for dr in (-0.5, 0.5) for dc in (-0.5, 0.5)]).astype(float)
    corners = np.unique(corners, axis=0)
    diff = corners[:, None, :] - corners[None, :, :]
    max_feret = np.sqrt((diff**2).sum(-1).max())
    theta = np.linspace(0, np.pi, n_angles, endpoint=False)
    proj = corners @ np.stack([np.cos(theta), np.sin(theta)])
    return max_feret, np.ptp(proj, axis=0).min()


def angle_diff(a, b):
    """Difference of two undirected line angles in degrees, in [0, 90]."""
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


# --------------------------------------------------------------------------- the table


def test_thirty_features_with_units_and_pixel_counterparts():
    names = [f.name for f in FEATURES]
    assert len(FEATURES) == 30 and len(set(names)) == 30
    assert all(f.meaning and f.unit for f in FEATURES)
    for f in FEATURES:
        if f.name.endswith("_nm2"):
            assert f.unit == "nm^2" and f.px_name == f.name[:-4] + "_px"
        elif f.name.endswith("_nm"):
            assert f.unit == "nm" and f.px_name == f.name[:-3] + "_px"
        else:
            assert f.px_name is None
        if f.name.endswith("_deg"):
            assert f.unit == "deg"
    assert {"area_px", "equivalent_diameter_px", "max_feret_diameter_px"} <= set(PIXEL_COLUMNS)
    table = measure_particles(disk_mask(10).astype(int), np.ones((80, 80)))
    assert list(table.columns) == list(COLUMNS) == ["label", *names, *PIXEL_COLUMNS]


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("radius", [8, 15, 25])
def test_disk(radius):
    mask = disk_mask(radius)
    row = one(mask)
    area = mask.sum()
    assert_allclose(row.area_px, area)
    assert_allclose(row.area_px, math.pi * radius**2, rtol=0.03)
    assert_allclose(row.equivalent_diameter_px, 2 * radius, rtol=0.015)
    assert_allclose(row.circularity, 1.0, atol=0.03)
    assert_allclose(row.perimeter_px, 2 * math.sqrt(math.pi * area), rtol=0.02)
    assert_allclose([row.major_axis_length_px, row.minor_axis_length_px], 2 * radius, rtol=0.02)
    assert row.aspect_ratio < 1.03 and row.eccentricity < 0.25
    true_max, true_min = brute_feret(mask)
    assert_allclose(row.max_feret_diameter_px, true_max, atol=1e-9)
    assert_allclose(row.min_feret_diameter_px, true_min, atol=0.02)
    assert_allclose([row.max_feret_diameter_px, row.min_feret_diameter_px], 2 * radius, atol=1.5)
    assert row.solidity > 0.98 and row.euler_number == 1 and row.filled_area_px == area
    assert_allclose(row.roundness, 4 * area / (math.pi * true_max**2))


@pytest.mark.parametrize("h, w", [(12, 30), (30, 12), (7, 8)])
def test_axis_aligned_rectangle(h, w):
    mask = np.zeros((50, 60), bool)
    mask[5:5 + h, 9:9 + w] = True
    row = one(mask)
    assert row.area_px == h * w and row.convex_area_px == h * w
    assert row.solidity == 1.0 and row.extent == 1.0
    # the smoothed outline rounds each pixel-sharp corner: about 0.5 px lost per corner
    assert_allclose(row.perimeter_px, 2 * (h + w), atol=2.5)
    assert_allclose(row.convex_perimeter_px, 2 * (h + w))
    assert_allclose(row.max_feret_diameter_px, math.hypot(h, w))
    assert_allclose(row.min_feret_diameter_px, min(h, w))
    # the minimum width is measured across the short side: vertical (90 deg) when h < w
    assert angle_diff(row.min_feret_angle_deg, 90.0 if h < w else 0.0) < 1e-9
    assert angle_diff(abs(row.max_feret_angle_deg), math.degrees(math.atan2(h, w))) < 1e-9
    # equal-second-moment ellipse of a continuous h x w rectangle: axes 2 side / sqrt(3)
    assert_allclose(row.major_axis_length_px, 2 * max(h, w) / math.sqrt(3))
    assert_allclose(row.minor_axis_length_px, 2 * min(h, w) / math.sqrt(3))
    assert_allclose(row.aspect_ratio, max(h, w) / min(h, w))
    assert angle_diff(row.orientation_deg, 0.0 if w > h else 90.0) < 1e-9
    assert (row.bbox_min_row, row.bbox_min_col, row.bbox_height, row.bbox_width) == (5, 9, h, w)
    assert_allclose([row.centroid_row, row.centroid_col], [5 + (h - 1) / 2, 9 + (w - 1) / 2])
    assert_allclose(row.circularity, 4 * math.pi * h * w / (2 * (h + w)) ** 2, rtol=0.2)


@pytest.mark.parametrize("angle", [30.0, 60.0, -20.0, 75.0])
def test_rotated_rectangle_angles(angle):
    mask = rotated_rect(60, 18, angle)
    row = one(mask)
    assert angle_diff(row.orientation_deg, angle) < 1.0
    assert angle_diff(row.min_feret_angle_deg, angle + 90.0) < 3.0
    true_max, true_min = brute_feret(mask)
    assert_allclose(row.max_feret_diameter_px, true_max, atol=1e-9)
    assert_allclose(row.min_feret_diameter_px, true_min, atol=0.03)
    assert_allclose(row.min_feret_diameter_px, 18, atol=1.5)
    assert_allclose(row.max_feret_diameter_px, math.hypot(60, 18), atol=1.5)
    assert_allclose(row.aspect_ratio, 60 / 18, rtol=0.05)
    assert row.solidity > 0.97


@pytest.mark.parametrize("angle", [0.0, 10.0, 22.5, 45.0])
def test_square_perimeter_at_any_rotation(angle):
    mask = rotated_rect(34, 34, angle)
    row = one(mask)
    side = math.sqrt(mask.sum())
    assert_allclose(row.perimeter_px, 4 * side, rtol=0.025)
    assert_allclose(row.circularity, math.pi / 4, rtol=0.05)


def test_ring_has_a_hole():
    outer, inner = disk_mask(20), disk_mask(9)
    ring = outer & ~inner
    row = one(ring)
    assert row.euler_number == 0
    assert row.area_px == ring.sum() and row.filled_area_px == outer.sum()
    assert row.filled_area_px > row.area_px
    assert row.convex_area_px >= outer.sum()


def test_l_shape_solidity():
    a, b = 25, 12  # a x a square missing its top-right b x b corner
    mask = np.zeros((40, 40), bool)
    mask[5:5 + a, 5:5 + a] = True
    mask[5:5 + b, 5 + a - b:5 + a] = False
    row = one(mask)
    area = a * a - b * b
    # pixel centres inside the hull of the pixel centres: the diagonal hull edge keeps the
    # b (b - 1) / 2 missing pixels strictly below or on it
    convex = area + b * (b - 1) // 2
    assert row.area_px == area and row.convex_area_px == convex
    assert_allclose(row.solidity, area / convex)
    assert row.euler_number == 1
    # symmetric about the anti-diagonal: principal axes at +-45 deg, major one towards
    # the far corners (top-left to bottom-right), i.e. -45 deg
    assert angle_diff(row.orientation_deg, -45.0) < 1e-6


def test_euler_and_filled_area_match_skimage_on_odd_shapes():
    lab = np.zeros((60, 90), np.int32)
    lab[5:25, 5:40] = 1
    lab[8:12, 8:12] = 0  # two holes
    lab[15:20, 25:30] = 0
    lab[30:32, 5:7] = 2  # two pixels joined only diagonally
    lab[32:34, 7:9] = 2
    lab[40:55, 50:80] = 3
    lab[44:51, 60:70] = 4  # a particle inside particle 3's hole
    lab[43:52, 59:71][lab[43:52, 59:71] == 3] = 0
    lab[5, 60:85] = 5  # one-pixel-thick line
    table = measure_particles(lab, np.ones(lab.shape))
    ref = pd.DataFrame(measure.regionprops_table(
        lab, properties=["label", "euler_number", "area_filled", "area", "bbox"]))
    assert_allclose(table.euler_number, ref.euler_number)
    assert_allclose(table.filled_area_px, ref.area_filled)
    assert_allclose(table.area_px, ref.area)
    assert_allclose(table.bbox_min_row, ref["bbox-0"])
    assert_allclose(table.bbox_height, ref["bbox-2"] - ref["bbox-0"])
    assert table.loc[table.label == 1, "euler_number"].item() == -1
    line = table[table.label == 5].iloc[0]
    assert line.convex_area_px == 25 and line.min_feret_diameter_px == 1
    assert_allclose(line.max_feret_diameter_px, math.hypot(25, 1))


def reference_perimeter(mask):
    """skimage marching squares (particle 8-connected), steps smoothed (1, 2, 1) / 4."""
    total = 0.0
    for contour in measure.find_contours(np.pad(mask, 1).astype(float), 0.5,
                                         fully_connected="high"):
        step = np.diff(contour, axis=0)  # closed contour: last point repeats the first
        smooth = (np.roll(step, 1, axis=0) + 2 * step + np.roll(step, -1, axis=0)) / 4
        total += np.hypot(*smooth.T).sum()
    return total


def test_perimeter_matches_skimage_contours_on_odd_shapes():
    rng = np.random.default_rng(7)
    lab = np.zeros((70, 70), np.int32)
    blob = rng.random((30, 30)) < 0.55  # saddles, holes, diagonal joins
    blob = measure.label(blob, connectivity=2) == 1 + np.argmax(
        np.bincount(measure.label(blob, connectivity=2).ravel())[1:])
    lab[5:35, 5:35][blob] = 1
    ring = disk_mask(12, (70, 70), (50, 50)) & ~disk_mask(5, (70, 70), (50, 50))
    lab[ring] = 2
    lab[60:62, 5:7] = 3
    lab[62:64, 7:9] = 3  # two squares joined at one corner
    table = measure_particles(lab, np.ones(lab.shape))
    expected = [reference_perimeter(lab == k) for k in (1, 2, 3)]
    assert_allclose(table.perimeter_px, expected, rtol=1e-9)
    ref = measure.regionprops_table(lab, properties=["euler_number"])
    assert table.euler_number[0] < -10  # the random blob is full of holes
    assert_allclose(table.euler_number, ref["euler_number"])
    # holes are 4-connected background (as for the Euler number and MATLAB's imfill);
    # skimage's area_filled lets the background leak through diagonal gaps instead
    filled = [ndi.binary_fill_holes(lab == k).sum() for k in (1, 2, 3)]
    assert filled[0] > (lab == 1).sum() + 100
    assert_allclose(table.filled_area_px, filled)


def test_touching_neighbours_do_not_change_a_particle():
    alone = np.zeros((70, 70), np.int32)
    alone[draw.disk((35, 30), 14)] = 1
    together = alone.copy()
    together[draw.disk((35, 52), 12)] = 2  # overlaps particle 1, which is then restored
    together[alone == 1] = 1
    assert ((together == 2)[:, 1:] & (together == 1)[:, :-1]).any() or \
           ((together == 1)[:, 1:] & (together == 2)[:, :-1]).any()
    a = measure_particles(alone, np.ones(alone.shape)).iloc[0]
    b = measure_particles(together, np.ones(alone.shape)).iloc[0]
    geometry = [c for c in COLUMNS if "intensity" not in c]
    assert_allclose(b[geometry].astype(float), a[geometry].astype(float))


def test_intensity_statistics_match_numpy():
    rng = np.random.default_rng(3)
    lab = np.zeros((64, 64), np.int32)
    lab[draw.disk((20, 20), 9)] = 4
    lab[40:60, 30:62] = 9
    image = rng.normal(100.0, 15.0, lab.shape).astype(np.float32)
    table = measure_particles(lab, image)
    for _, row in table.iterrows():
        values = image[lab == row.label].astype(np.float64)
        assert_allclose([row.mean_intensity, row.std_intensity, row.min_intensity,
                         row.max_intensity],
                        [values.mean(), values.std(), values.min(), values.max()], rtol=1e-9)


def test_labels_ascending_with_gaps_and_huge_ids():
    lab = np.zeros((40, 40), np.int64)
    lab[2:6, 2:6] = 7            # 16 px
    lab[10:13, 10:13] = 3        # 9 px
    lab[20:30, 20:25] = 2**40    # 50 px
    table = measure_particles(lab, np.zeros(lab.shape))
    assert table.label.tolist() == [3, 7, 2**40]
    assert table.area_px.tolist() == [9, 16, 50]


# --------------------------------------------------------------------------- calibration


def test_pixel_size_scales_lengths_and_areas():
    mask = rotated_rect(40, 20, 25.0)
    bare, s = one(mask), 0.37
    cal = one(mask, pixel_size_nm=s)
    for f in FEATURES:
        if f.name.endswith("_nm2"):
            assert_allclose(cal[f.name], bare[f.px_name] * s**2)
        elif f.name.endswith("_nm"):
            assert_allclose(cal[f.name], bare[f.px_name] * s)
        else:
            assert_allclose(cal[f.name], bare[f.name])
    assert_allclose(cal[list(PIXEL_COLUMNS)].astype(float), bare[list(PIXEL_COLUMNS)].astype(float))


def test_nm_columns_are_nan_without_calibration():
    row = one(disk_mask(10))
    nm = [f.name for f in FEATURES if f.px_name]
    assert len(nm) == 10 and row[nm].isna().all()
    assert np.isfinite(row[list(PIXEL_COLUMNS)].astype(float)).all()
    others = [f.name for f in FEATURES if not f.px_name]
    assert np.isfinite(row[others].astype(float)).all()


def test_empty_label_image_gives_empty_table_with_all_columns():
    table = measure_particles(np.zeros((16, 16), np.int32), np.ones((16, 16)), 1.0)
    assert len(table) == 0 and list(table.columns) == list(COLUMNS)


# --------------------------------------------------------------------------- bad inputs

GOOD_LAB = np.zeros((8, 8), np.int32)
GOOD_IMG = np.ones((8, 8))


@pytest.mark.parametrize("labels, image, match", [
    (GOOD_LAB.astype(float), GOOD_IMG, "integer label image"),
    (np.zeros((2, 8, 8), int), np.ones((2, 8, 8)), "2-D integer"),
    (GOOD_LAB.astype(bool), GOOD_IMG, "skimage.measure.label"),
    (GOOD_LAB, np.ones((8, 9)), r"image has shape \(8, 9\)"),
    (GOOD_LAB - 1, GOOD_IMG, ">= 0"),
    (GOOD_LAB, np.full((8, 8), np.nan), "NaN or infinite"),
    (GOOD_LAB, GOOD_IMG.astype(complex), "real numbers"),
])
def test_bad_arrays(labels, image, match):
    with pytest.raises(ParameterError, match=match):
        measure_particles(labels, image)


@pytest.mark.parametrize("pixel_size", [0, -1.0, float("nan"), float("inf"), "1", True])
def test_bad_pixel_size(pixel_size):
    with pytest.raises(CalibrationError, match="pixel_size_nm must be a positive finite"):
        measure_particles(GOOD_LAB, GOOD_IMG, pixel_size)


def test_hull_features_match_qhull_on_irregular_particles_and_lines():
    from scipy.spatial import ConvexHull
    rng = np.random.default_rng(7)
    lab = np.zeros((90, 120), np.int32)
    for k in range(1, 9):
        rr, cc = draw.ellipse(rng.uniform(10, 80), rng.uniform(10, 110), rng.uniform(2, 12),
                              rng.uniform(2, 12), lab.shape, rotation=rng.uniform(0, np.pi))
        lab[rr, cc] = k
        lab[rr[::7], np.clip(cc[::7] + 3, 0, 119)] = k       # ragged, concave edges
    lab[2, 5:30] = 20                                          # a row, a column, a diagonal
    lab[40:70, 2] = 21
    rr, cc = draw.line(60, 100, 85, 115)
    lab[rr, cc] = 22
    lab[88, 60] = 23                                           # one pixel
    table = measure_particles(lab, np.ones(lab.shape)).set_index("label")
    for k in np.unique(lab)[1:]:
        rows, cols = np.nonzero(lab == k)
        pts = np.stack([rows, cols], axis=1).astype(float)
        try:
            hull = ConvexHull(pts)
            area, perimeter = hull.volume, hull.area
            corners = pts[hull.vertices].astype(int)                # counter-clockwise
        except Exception:                                      # collinear: a segment
            corners = pts[[np.lexsort(pts.T[::-1])[i] for i in (0, -1)]].astype(int)
            area, perimeter = 0.0, 2 * np.hypot(*np.ptp(pts, axis=0))
        edges = np.roll(corners, -1, axis=0) - corners
        on_edges = np.gcd(edges[:, 0], edges[:, 1]).sum()
        row = table.loc[k]
        assert_allclose(row.convex_perimeter_px, perimeter + 4, atol=1e-9)
        assert_allclose(row.convex_area_px, area + on_edges / 2 + 1, atol=1e-9)  # Pick
        max_feret, min_feret = brute_feret(lab == k, n_angles=3600)
        assert_allclose(row.max_feret_diameter_px, max_feret, atol=1e-9)
        assert row.min_feret_diameter_px <= min_feret + 1e-9
        assert row.min_feret_diameter_px >= min_feret - 0.01 * min_feret

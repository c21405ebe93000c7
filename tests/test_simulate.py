"""Simulator truth: eq. 1, rendered areas, placement, image formation, scale bar, demos."""

import time

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy import ndimage as ndi
from scipy.special import gamma

from tempipe.errors import ParameterError
from tempipe.features import measure_particles
from tempipe.simulate import (DEMO_BATCHES, ScaleBarStyle, ShapeFamily, demo_batch,
                              draw_scale_bar, particle_coverage, render_particle,
                              simulate_micrograph, superformula_radius, write_demo_batch)

THETA = np.linspace(0, 2 * np.pi, 721)


def _dense_rmax(p, d, l_ratio):
    """Maximum of eq. 1 on a very dense grid, independent of the module's search."""
    theta = np.linspace(0, 2 * np.pi, 400_001)
    a = 0.5 * d * theta
    return (((l_ratio * np.abs(np.cos(a))) ** p + np.abs(np.sin(a)) ** p) ** (-1 / p)).max()


# --- eq. 1 -------------------------------------------------------------------------------

@pytest.mark.parametrize("d", [1, 2, 3, 4, 6])
def test_p2_l1_is_the_unit_circle(d):
    np.testing.assert_allclose(superformula_radius(THETA, 2, d, 1.0, phi=0.4), 1.0, rtol=1e-12)


@pytest.mark.parametrize("l_ratio", [0.5, 1.0, 1.8, 3.0])
@pytest.mark.parametrize("p", [0.7, 2.0, 9.0])
def test_cos_axis_gives_one_over_l_and_sin_axis_one(l_ratio, p):
    phi = 0.3
    assert superformula_radius(-phi, p, 2, l_ratio, phi) == pytest.approx(1 / l_ratio)
    assert superformula_radius(np.pi / 2 - phi, p, 2, l_ratio, phi) == pytest.approx(1.0)


@pytest.mark.parametrize("p", [1.0, 2.0, 4.0, 50.0, 400.0])
def test_square_limits_on_the_diagonal(p):
    # d=2, L=1: |x|^p + |y|^p = 1, whose diagonal point is at radius 2^(1/2 - 1/p):
    # the diamond's edge midpoint 1/sqrt(2) at p=1, the square's corner sqrt(2) as p grows.
    assert superformula_radius(np.pi / 4, p, 2, 1.0) == pytest.approx(2 ** (0.5 - 1 / p))


def test_hand_values_and_broadcasting():
    # p=1, d=4, L=1 at theta=pi/8: (cos(pi/4) + sin(pi/4))^-1 = 1/sqrt(2)
    assert superformula_radius(np.pi / 8, 1, 4, 1.0) == pytest.approx(2 ** -0.5)
    # p=2, d=3, L=2 at theta=0: 1/2
    assert superformula_radius(0.0, 2, 3, 2.0) == pytest.approx(0.5)
    out = superformula_radius(THETA[:5, None], np.array([[1.0, 2.0, 3.0]]), 2, 1.5)
    assert out.shape == (5, 3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(p=0.0, d=2, l_ratio=1), "p must be"), (dict(p=-1, d=2, l_ratio=1), "p must be"),
    (dict(p=2, d=0, l_ratio=1), "d must be"), (dict(p=2, d=2, l_ratio=-1), "l_ratio must be"),
    (dict(p=np.nan, d=2, l_ratio=1), "p must be"), (dict(p="x", d=2, l_ratio=1), "not numeric"),
])
def test_bad_shape_parameters(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        superformula_radius(THETA, **kwargs)


# --- coverage ------------------------------------------------------------------------------

@pytest.mark.parametrize("radius", [5.3, 12.0, 27.7])
def test_circle_coverage_area(radius):
    cov = particle_coverage(2, 2, 1.0, 0.0, radius, (64, 64), (31.37, 30.81))
    assert cov.dtype == np.float32 and cov.min() >= 0 and cov.max() <= 1
    assert cov.sum() == pytest.approx(np.pi * radius ** 2, rel=0.01)
    centroid = ndi.center_of_mass(cov)  # pixel centres at integer coordinates
    np.testing.assert_allclose(centroid, (31.37, 30.81), atol=0.02)
    np.testing.assert_allclose(ndi.center_of_mass(cov >= 0.5), (31.37, 30.81), atol=0.15)


@pytest.mark.parametrize("p", [0.8, 1.5, 4.0, 10.0])
@pytest.mark.parametrize("l_ratio", [1.0, 1.6])
def test_superellipse_coverage_area_matches_gamma_formula(p, l_ratio):
    # d=2: |L x|^p + |y|^p = 1, area 4 (1/L) Gamma(1 + 1/p)^2 / Gamma(1 + 2/p), then the
    # renderer scales the curve to a maximum radius of `radius`.
    radius = 24.0
    area_unit = 4 / l_ratio * gamma(1 + 1 / p) ** 2 / gamma(1 + 2 / p)
    expected = area_unit * (radius / _dense_rmax(p, 2, l_ratio)) ** 2
    cov = particle_coverage(p, 2, l_ratio, 0.7, radius, (64, 64), (32.2, 31.6))
    assert cov.sum() == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("p, d, l_ratio", [(0.8, 5, 1.05), (1.5, 3, 1.8), (2.5, 1, 1.4)])
def test_general_shape_area_matches_polar_integral(p, d, l_ratio):
    theta = np.linspace(0, 2 * np.pi, 200_001)
    r = superformula_radius(theta, p, d, l_ratio) / _dense_rmax(p, d, l_ratio)
    expected = 0.5 * np.trapezoid(r ** 2, theta) * 26.0 ** 2
    cov = particle_coverage(p, d, l_ratio, 1.1, 26.0, (70, 70), (34.5, 35.1))
    assert cov.sum() == pytest.approx(expected, rel=0.01)
    # the maximum radius is respected: nothing beyond 26 px (plus a pixel) from the centre
    rows, cols = np.nonzero(cov > 0)
    assert np.hypot(rows - 34.5, cols - 35.1).max() <= 26.0 + 0.75


def test_render_particle_image_and_mask_agree():
    image, mask = render_particle(4, 2, 1.3, 0.5, 20, 48, contrast=0.5, noise=0.03, rng=1)
    assert image.shape == mask.shape == (48, 48) and image.dtype == np.float32
    cov = particle_coverage(4, 2, 1.3, 0.5, 20, (48, 48), (23.5, 23.5))
    np.testing.assert_array_equal(mask, cov >= 0.5)
    inner = ndi.binary_erosion(mask, iterations=2)
    outer = ~ndi.binary_dilation(mask, iterations=3)
    assert image[outer].mean() - image[inner].mean() == pytest.approx(0.5, abs=0.05)
    again, _ = render_particle(4, 2, 1.3, 0.5, 20, 48, contrast=0.5, noise=0.03, rng=1)
    np.testing.assert_array_equal(image, again)


@pytest.mark.parametrize("kwargs, match", [
    (dict(radius_px=30, size=48), "fit in the image"), (dict(radius_px=-2, size=48), "radius_px"),
    (dict(radius_px=3, size=4), "size must be"), (dict(radius_px=10, size=48, noise=-1), "noise"),
    (dict(radius_px=10, size=48, contrast=0), "contrast"),
])
def test_render_particle_bad_input(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        render_particle(2, 2, 1.0, 0.0, **kwargs)


# --- simulated fields ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sim():
    return simulate_micrograph((512, 512), n_particles=60, pixel_size_nm=0.5, scale_bar=True,
                               touching_fraction=0.4, rng=5)


def _neighbours(labels, label, gap):
    """Labels within `gap` pixels (8-connected dilation) of region `label`."""
    sl = tuple(slice(max(s.start - gap - 1, 0), s.stop + gap + 1)
               for s in ndi.find_objects((labels == label).astype(np.int32))[0])
    grown = ndi.binary_dilation(labels[sl] == label, np.ones((3, 3)), iterations=gap)
    return set(np.unique(labels[sl][grown]).tolist()) - {0, label}


def test_labels_match_the_table(sim):
    t = sim.particles
    assert sim.labels.dtype == np.int32 and sim.image.dtype == np.float32
    assert len(t) == 60 and t["label"].tolist() == list(range(1, 61))
    np.testing.assert_array_equal(np.bincount(sim.labels.ravel())[1:], t["area_px"])
    np.testing.assert_allclose(t["equivalent_diameter_nm"],
                               2 * np.sqrt(t["area_px"] / np.pi) * 0.5, rtol=1e-9)
    edge = np.concatenate([sim.labels[0], sim.labels[-1], sim.labels[:, 0], sim.labels[:, -1]])
    assert set(t.loc[t["touches_border"], "label"]) == set(np.unique(edge)) - {0}


def test_labels_are_the_half_coverage_pixels(sim):
    # every particle's label is exactly its coverage >= 0.5 set: none was overwritten
    for row in sim.particles.itertuples():
        cov = particle_coverage(row.p, row.d, row.l_ratio, row.phi, row.radius_px,
                                sim.labels.shape, (row.center_row, row.center_col))
        np.testing.assert_array_equal(cov >= 0.5, sim.labels == row.label)


def test_symmetric_particles_are_centred_and_sized(sim):
    t = sim.particles[~sim.particles["touches_border"]]
    even = t[t["d"] == 2]
    assert np.abs(even["centroid_row"] - even["center_row"]).max() < 0.3
    assert np.abs(even["centroid_col"] - even["center_col"]).max() < 0.3
    assert t["major_axis_length_px"].between(14, 70).all()


def test_touching_clusters_touch_and_isolated_particles_do_not(sim):
    t = sim.particles.set_index("label")
    clustered = t[t["cluster_id"] > 0]
    assert 0.3 <= len(clustered) / len(t) <= 0.5
    adjacent_pairs = 0
    for label, row in t.iterrows():
        near = _neighbours(sim.labels, label, 3)
        mates = set(clustered.index[clustered["cluster_id"] == row["cluster_id"]]) - {label}
        if row["cluster_id"] == 0:
            assert not near, f"isolated particle {label} is within 3 px of {near}"
            continue
        assert near <= mates, f"cluster member {label} is near non-members {near - mates}"
        assert _neighbours(sim.labels, label, 2) & mates, f"{label} is > 1 px from its cluster"
        adjacent_pairs += len(_neighbours(sim.labels, label, 1) & mates)
    assert adjacent_pairs >= 2 * 8  # each 8-adjacent pair is counted from both sides


def test_image_polarity_and_contrast(sim):
    inner = ndi.binary_erosion(sim.labels > 0, iterations=2)
    outer = ~ndi.binary_dilation(sim.labels > 0, iterations=3)
    outer[sim.scale_bar.label_bbox[0]:sim.scale_bar.label_bbox[2],
          sim.scale_bar.label_bbox[1]:sim.scale_bar.label_bbox[3]] = False
    assert np.median(sim.image[outer]) - np.median(sim.image[inner]) > 0.3
    bright = simulate_micrograph((256, 256), n_particles=12, polarity="bright", rng=5)
    fg = bright.labels > 0
    assert np.median(bright.image[fg]) - np.median(bright.image[~fg]) > 0.3


def test_no_particle_under_the_scale_bar(sim):
    r0, c0, r1, c1 = sim.scale_bar.label_bbox
    assert not sim.labels[r0:r1, c0:c1].any()
    assert sim.scale_bar.value_nm == 50.0 and sim.scale_bar.length_px == 100


def test_same_seed_same_field_other_seed_other_field():
    a = simulate_micrograph((256, 256), n_particles=15, rng=42)
    b = simulate_micrograph((256, 256), n_particles=15, rng=np.random.default_rng(42))
    c = simulate_micrograph((256, 256), n_particles=15, rng=43)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.labels, b.labels)
    pd.testing.assert_frame_equal(a.particles, b.particles)
    assert not np.array_equal(a.labels, c.labels)


def test_full_field_time_is_printed():
    start = time.perf_counter()
    field = simulate_micrograph((1024, 1024), n_particles=150, rng=0)
    seconds = time.perf_counter() - start
    print(f"\n1024x1024, 150 particles: {seconds:.3f} s")
    assert field.labels.max() == 150
    assert field.particles["major_axis_length_px"].median() == pytest.approx(37, abs=6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(shape=(16, 16)), "too small"), (dict(shape=(64,)), "shape must be"),
    (dict(n_particles=-1), "n_particles"), (dict(touching_fraction=1.5), "touching_fraction"),
    (dict(polarity="grey"), "polarity"), (dict(dose=0), "dose"), (dict(contrast=1.5), "contrast"),
    (dict(blur_px=-1), "blur_px"), (dict(families=[]), "families"),
    (dict(scale_bar=True), "pixel_size_nm"), (dict(pixel_size_nm=-0.5), "pixel_size_nm"),
    (dict(families=[ShapeFamily("a", size_mean_nm=5.0)]), "pixel_size_nm"),
    (dict(shape=(64, 64), n_particles=200), "only .* particles fit"),
])
def test_simulate_bad_input(kwargs, match):
    kwargs = {"shape": (128, 128), "n_particles": 5, **kwargs}
    with pytest.raises(ParameterError, match=match):
        simulate_micrograph(kwargs.pop("shape"), **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(p=(0.0, 1.0)), "p="), (dict(l_ratio=(2.0, 1.0)), "l_ratio="), (dict(d=()), "d="),
    (dict(size_mean_px=None), "exactly one"), (dict(size_mean_nm=3.0), "exactly one"),
    (dict(size_mean_px=-4.0), "mean size"), (dict(size_rel_sd=0.9), "size_rel_sd"),
    (dict(fraction=0.0), "fraction"),
])
def test_shape_family_bad_input(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        ShapeFamily("bad", **{"size_mean_px": 30.0, **kwargs})


# --- scale bar -------------------------------------------------------------------------------

@pytest.mark.parametrize("corner", ["bottom-right", "top-left"])
@pytest.mark.parametrize("color, box, position", [("white", True, "above"),
                                                  ("black", False, "below"),
                                                  ("white", False, "beside")])
def test_scale_bar_has_its_stated_length(corner, color, box, position):
    base = np.random.default_rng(0).normal(0.6, 0.05, (400, 600)).astype(np.float32)
    image, bar = draw_scale_bar(base, 0.45, corner=corner, color=color, box=box,
                                text_position=position, rng=3)
    assert bar.value_nm == 50.0  # 1-2-5 value near 20 % of 270 nm
    assert bar.length_px == round(50 / 0.45) == bar.bar_bbox[3] - bar.bar_bbox[1]
    ink = base.max() if color == "white" else base.min()
    r0, c0, r1, c1 = bar.bar_bbox
    assert (image[r0:r1, c0:c1] == ink).all()
    middle = image[(r0 + r1) // 2]  # the ink run through the bar ends exactly at its ends
    assert middle[c0 - 1] != ink and middle[c1] != ink
    lr0, lc0, lr1, lc1 = bar.label_bbox
    assert lr0 <= r0 and lc0 <= c0 and lr1 >= r1 and lc1 >= c1
    changed = np.argwhere(image != base)
    assert changed.min(0).tolist() >= [lr0, lc0] and changed.max(0).tolist() < [lr1, lc1]
    assert (image[lr0:lr1, lc0:lc1] != base[lr0:lr1, lc0:lc1]).sum() > bar.length_px * 4


def test_scale_bar_text_styles():
    texts = {draw_scale_bar(np.zeros((200, 400)), 1.0, length_nm=100, rng=s)[1].text
             for s in range(12)}
    assert texts == {"100 nm", "100.0nm", "0.1 µm"}
    _, bar = draw_scale_bar(np.zeros((200, 400)), 0.5, text="20 nm", length_nm=20)
    assert (bar.text, bar.length_px) == ("20 nm", 40)


@pytest.mark.parametrize("kwargs, match", [
    (dict(pixel_size_nm=0.0), "pixel_size_nm"), (dict(corner="middle"), "corner"),
    (dict(color="red"), "color"), (dict(text_position="inside"), "text_position"),
    (dict(length_nm=1e6), "do not fit"), (dict(length_nm=0.1), "at least 2 px"),
])
def test_scale_bar_bad_input(kwargs, match):
    kwargs = {"pixel_size_nm": 0.5, **kwargs}
    with pytest.raises(ParameterError, match=match):
        draw_scale_bar(np.zeros((200, 300)), kwargs.pop("pixel_size_nm"), **kwargs)


def test_scale_bar_style_is_used_by_simulate():
    style = ScaleBarStyle(length_nm=20, corner="top-left", color="black", box=False)
    field = simulate_micrograph((256, 256), n_particles=10, pixel_size_nm=0.25, scale_bar=style,
                                rng=2)
    bar = field.scale_bar
    assert bar.length_px == 80 and bar.label_bbox[:2] == (8, 8)  # 3 % margin, top-left
    r0, c0, r1, c1 = bar.bar_bbox
    assert (field.image[r0:r1, c0:c1] == field.image.min()).all()  # black bar, exact box


# --- demo batches ----------------------------------------------------------------------------

TARGETS = {  # family: (mean major axis nm, sigma/mean, share)
    "hot-injection": {"small-cuboid": (9.7, 0.20, 0.5), "large-cuboid": (13.9, 0.14, 0.2),
                      "platelet": (12.8, 0.27, 0.2), "large-irregular": (24.2, 0.19, 0.1)},
    "larp": {"small-cuboid": (8.9, 0.24, 0.192), "large-quasi-cuboid": (32.2, 0.15, 0.04),
             "cuboid": (15.4, 0.15, 0.192), "small-spheroid": (6.7, 0.25, 0.192),
             "platelet": (13.1, 0.28, 0.192), "irregular": (21.9, 0.30, 0.192)},
}


@pytest.mark.parametrize("name", sorted(DEMO_BATCHES))
def test_demo_batch_groups_match_the_paper(name):
    sims = demo_batch(name, n_images=2, rng=0)
    spec = DEMO_BATCHES[name]
    assert [s.name for s in sims] == [f"{name}-01", f"{name}-02"]
    for s in sims:
        assert s.image.shape == spec.shape and s.pixel_size_nm == spec.pixel_size_nm
        assert len(s.particles) == 300 and s.scale_bar is not None
    table = pd.concat([s.particles for s in sims])
    inner = table[~table["touches_border"]]
    for family, (mean_nm, cv, share) in TARGETS[name].items():
        assert (table["family"] == family).mean() == pytest.approx(share, abs=1 / 300)
        size = inner.loc[inner["family"] == family, "major_axis_length_nm"]
        tol = max(0.04, 4 * cv / np.sqrt(len(size)))  # 4 standard errors of the mean
        assert size.mean() == pytest.approx(mean_nm, rel=tol), family
        assert size.std() / size.mean() == pytest.approx(cv, abs=0.06), family
    # the smallest group is resolved: >= 20 px across on average
    smallest = min(TARGETS[name], key=lambda f: TARGETS[name][f][0])
    assert inner.loc[inner["family"] == smallest, "major_axis_length_px"].mean() >= 20
    first_again = demo_batch(name, n_images=1, rng=0)[0]
    np.testing.assert_array_equal(first_again.image, sims[0].image)


@pytest.mark.parametrize("name", sorted(DEMO_BATCHES))
def test_demo_groups_differ_in_shape(name):
    """Shape descriptors measured on the exact labels separate the families as described."""
    sim = demo_batch(name, n_images=1, rng=0)[0]
    measured = measure_particles(sim.labels, sim.image, pixel_size_nm=sim.pixel_size_nm)
    truth = sim.particles.set_index("label").loc[measured["label"]]
    inner = measured[~truth["touches_border"].to_numpy()]
    by = inner.groupby(truth.loc[inner["label"], "family"].to_numpy()).median(numeric_only=True)
    rounded, sharp = ("small-cuboid", "large-cuboid") if name == "hot-injection" else (
        "cuboid", "small-cuboid")
    assert by.loc[rounded, "circularity"] > by.loc[sharp, "circularity"] + 0.04
    assert by.loc["platelet", "aspect_ratio"] == pytest.approx(
        1.8 if name == "hot-injection" else 2.1, abs=0.12)
    irregular = "large-irregular" if name == "hot-injection" else "irregular"
    convex = by.drop(index=irregular)["solidity"]
    assert by.loc[irregular, "solidity"] < convex.min() - 0.03


def test_write_demo_batch_is_calibrated(tmp_path):
    paths = write_demo_batch("larp", tmp_path / "out", n_images=1, rng=4)
    assert [p.name for p in paths] == ["larp-01.tif"]
    with tifffile.TiffFile(paths[0]) as tif:
        image = tif.asarray()
        num, den = tif.pages[0].tags["XResolution"].value
        assert tif.imagej_metadata["unit"] == "nm"
    assert image.dtype == np.float32 and image.shape == DEMO_BATCHES["larp"].shape
    assert den / num == pytest.approx(DEMO_BATCHES["larp"].pixel_size_nm, rel=1e-4)
    table = pd.read_csv(paths[0].with_suffix(".csv"))
    assert len(table) == 300 and set(table["image"]) == {"larp-01.tif"}


@pytest.mark.parametrize("kwargs, match", [(dict(name="colloid"), "unknown demo batch"),
                                           (dict(name="larp", n_images=0), "n_images")])
def test_demo_bad_input(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        demo_batch(**kwargs)

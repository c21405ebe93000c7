"""The whole path on simulated truth: scale order, exclusions, sizes, batch failures."""

import numpy as np
import pandas as pd
import pytest

from tempipe.errors import CalibrationError
from tempipe.io import save_micrograph
from tempipe.pipeline import analyze_batch, analyze_image, analyze_micrograph
from tempipe.io import Micrograph, load_micrograph
from tempipe.simulate import simulate_micrograph


def _interior_truth(sim):
    table = sim.particles
    return table[~table["touches_border"]]


def test_sizes_match_truth_with_explicit_pixel_size(field):
    table = analyze_image(field.image, pixel_size_nm=0.5)
    truth = _interior_truth(field)
    # border particles are dropped, so counts compare with interior truth (a bar may hide a few)
    assert len(truth) - 4 <= len(table) <= len(truth) + 1
    measured = np.median(table["equivalent_diameter_nm"])
    expected = np.median(truth["equivalent_diameter_px"]) * 0.5
    assert measured == pytest.approx(expected, rel=0.03)
    assert table["area_nm2"].to_numpy() == pytest.approx(table["area_px"].to_numpy() * 0.25)


def test_no_kept_particle_touches_border_or_bar(field):
    result = analyze_micrograph(load_micrograph_array(field.image), pixel_size_nm=0.5)
    assert result.n_dropped_border > 0
    rows, cols = field.image.shape
    t = result.particles
    assert (t["bbox_min_row"] > 0).all() and (t["bbox_min_col"] > 0).all()
    assert (t["bbox_min_row"] + t["bbox_height"] < rows).all()
    assert (t["bbox_min_col"] + t["bbox_width"] < cols).all()
    assert result.crops.shape[0] == len(t)


def load_micrograph_array(image):
    from tempipe.pipeline import _array_micrograph
    return _array_micrograph(image)


def test_file_calibration_then_explicit_override(tmp_path, field):
    path = save_micrograph(tmp_path / "f.tif", field.image, pixel_size_nm=0.5)
    from_file = analyze_image(path)
    override = analyze_image(path, pixel_size_nm=1.0)
    ratio = override["equivalent_diameter_nm"].median() / from_file["equivalent_diameter_nm"].median()
    assert ratio == pytest.approx(2.0, rel=1e-6)


def test_scale_bar_gives_pixel_size(tmp_path, field):
    bar = field.scale_bar
    path = tmp_path / "bar.png"
    save_micrograph(path, field.image)  # PNG: no calibration in the file
    result = analyze_micrograph(load_micrograph(path), scale_bar_nm=bar.value_nm)
    assert result.scale_source == "scale-bar"
    assert result.pixel_size_nm == pytest.approx(0.5, rel=0.02)


def test_no_scale_leaves_nm_columns_nan_and_says_why(tmp_path, field):
    path = tmp_path / "plain.png"
    img = simulate_micrograph((256, 256), n_particles=12, rng=3).image
    save_micrograph(path, img)
    result = analyze_micrograph(load_micrograph(path))
    assert result.scale_source == "none"
    assert "no calibration" in result.scale_note
    assert len(result.particles) > 0
    assert result.particles["equivalent_diameter_nm"].isna().all()
    assert result.particles["equivalent_diameter_px"].notna().all()


@pytest.mark.parametrize("value", [-1.0, 0.0, float("nan"), float("inf"), "abc"])
def test_bad_pixel_size_is_rejected(field, value):
    with pytest.raises(CalibrationError, match="pixel_size_nm"):
        analyze_image(field.image, pixel_size_nm=value)


def test_batch_lists_failures_and_goes_on(tmp_path):
    good = []
    for i in range(3):
        sim = simulate_micrograph((256, 256), n_particles=10, pixel_size_nm=0.4, rng=20 + i)
        good.append(save_micrograph(tmp_path / f"g{i}.tif", sim.image, pixel_size_nm=0.4))
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    missing = tmp_path / "missing.tif"
    calls = []
    result = analyze_batch([good[0], bad, good[1], missing, good[2]],
                           progress=lambda d, n, name: calls.append((d, n)))
    assert list(result.failures["image"]) == ["broken.png", "missing.tif"]
    assert all(result.failures["error"].str.len() > 10)
    assert set(result.particles["image"]) == {"g0.tif", "g1.tif", "g2.tif"}
    assert calls[-1] == (5, 5)
    parallel = analyze_batch(good, n_jobs=2)
    pd.testing.assert_frame_equal(
        parallel.particles.reset_index(drop=True),
        result.particles.reset_index(drop=True))


def test_shape_parameters_come_with_every_particle(field):
    table = analyze_image(field.image, pixel_size_nm=0.5)
    for column in ("p", "d", "l_ratio", "d_class", "p_std", "d_std", "l_ratio_std",
                   "resim_jaccard"):
        assert table[column].notna().all(), column
    assert table["resim_jaccard"].mean() > 0.85
    assert (table["d_class"].isin(range(1, 7))).all()
    without = analyze_image(field.image, pixel_size_nm=0.5, shape_model=None)
    assert "p" not in without and len(without) == len(table)


def test_typed_pixel_size_follows_the_binning_of_a_large_image(field):
    from tempipe.pipeline import resolve_scale

    image = field.image[::2, ::2]
    binned = Micrograph(image=image, pixel_size_nm=None, name="big.tif",
                        metadata={"downsample_factor": 2, "original_shape": field.image.shape})
    size, source, note = resolve_scale(binned, None, 0.25, None)
    assert (size, source) == (0.5, "explicit")
    assert "2x binning" in note
    plain = Micrograph(image=image, pixel_size_nm=None, name="f.tif", metadata={})
    assert resolve_scale(plain, None, 0.25, None)[0] == 0.25

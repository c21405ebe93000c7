"""Two-dataset comparison on samples with known distributions."""

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from tempipe.compare import (bootstrap_size_ci, compare_populations, group_fractions,
                             shape_distance, size_tests)
from tempipe.errors import ParameterError


def table(n, rng, size_mean=12.0, size_sd=2.0, log_p=1.0, l_ratio=1.2, groups=(1, 2)):
    """A particle table with normal sizes (nm), CNN parameters and a group per row."""
    return pd.DataFrame({
        "major_axis_length_nm": rng.normal(size_mean, size_sd, n),
        "major_axis_length_px": np.zeros(n),
        "p": np.exp(rng.normal(log_p, 0.3, n)), "d": rng.choice([2.0, 3.0], n),
        "l_ratio": 1 + np.abs(rng.normal(l_ratio - 1, 0.1, n)),
        "group": rng.choice(groups, n)})


def test_size_tests_separate_shifted_samples():
    rng = np.random.default_rng(0)
    same = size_tests(rng.normal(10, 2, 800), rng.normal(10, 2, 800))
    shifted = size_tests(rng.normal(10, 2, 800), rng.normal(11, 2, 800))
    assert (same["p_value"] > 0.01).all()
    assert (shifted["p_value"] < 1e-6).all()
    assert list(shifted["test"]) == ["ks", "mann_whitney"]


def test_bootstrap_ci_matches_the_normal_theory():
    rng = np.random.default_rng(1)
    x = rng.normal(12.0, 3.0, 2000)
    ci = bootstrap_size_ci(x, rng=2, n_boot=1000)
    half_width = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert ci["mean"] == pytest.approx(x.mean())
    assert ci["mean_hi"] - ci["mean_lo"] == pytest.approx(2 * half_width, rel=0.15)
    assert ci["mean_lo"] < 12.0 < ci["mean_hi"]
    assert ci["rel_sd_lo"] < 0.25 < ci["rel_sd_hi"]
    assert ci["rel_sd"] == pytest.approx(x.std(ddof=1) / x.mean())


def test_energy_distance_matches_direct_formula_and_detects_shift():
    rng = np.random.default_rng(3)
    a, b = table(300, rng), table(250, rng)
    energy, p_same = shape_distance(a, b, rng=0, n_perm=199)
    pooled = np.column_stack([np.log(pd.concat([a, b])["p"]), pd.concat([a, b])["d"],
                              np.log(pd.concat([a, b])["l_ratio"])])
    pooled = (pooled - pooled.mean(axis=0)) / pooled.std(axis=0)
    x, y = pooled[:300], pooled[300:]
    expected = np.sqrt(2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean())
    assert energy == pytest.approx(expected, rel=1e-9)
    assert p_same > 0.01
    shifted = table(250, rng, log_p=1.4)
    far, p_far = shape_distance(a, shifted, rng=0, n_perm=199)
    assert far > 3 * energy and p_far < 0.01


def test_group_fractions():
    fractions = group_fractions([1, 1, 2, 0], [2, 2, 3], names=("x", "y"))
    assert list(fractions.index) == [1, 2, 3]
    np.testing.assert_allclose(fractions["x fraction"], [2 / 3, 1 / 3, 0])
    np.testing.assert_array_equal(fractions["y n"], [0, 2, 1])


def test_compare_populations_table():
    rng = np.random.default_rng(4)
    a, b = table(600, rng), table(500, rng, size_mean=14.0)
    out = compare_populations(a, b, a["group"].to_numpy(), b["group"].to_numpy(),
                              names=("hot", "larp"), rng=0, n_boot=200)
    assert list(out.table.columns) == ["hot", "larp"]
    assert out.table.loc["Particles", "larp"] == 500
    assert out.table.loc["Average size (nm)", "hot"] == pytest.approx(
        a["major_axis_length_nm"].mean())
    assert out.table.loc["Group 2 fraction", "larp"] == pytest.approx((b["group"] == 2).mean())
    assert set(out.tests["test"]) == {"ks", "mann_whitney", "energy_distance"}
    assert out.tests.set_index("test").loc["ks", "p_value"] < 1e-6  # 12 vs 14 nm


@pytest.mark.parametrize("change, match", [
    (lambda a, b: (a, b.assign(major_axis_length_nm=np.nan), ("A", "B")), "pixel size"),
    (lambda a, b: (a, b, ("A", "A")), "two different"),
])
def test_bad_inputs(change, match):
    rng = np.random.default_rng(5)
    a, b, names = change(table(50, rng), table(50, rng))
    with pytest.raises(ParameterError, match=match):
        compare_populations(a, b, a["group"].to_numpy(), b["group"].to_numpy(), names)


@pytest.mark.parametrize("kwargs, match", [
    ({"size": [1.0]}, ">= 2 sizes"), ({"size": [1.0, 2.0], "level": 1.2}, "level"),
])
def test_bad_bootstrap(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        bootstrap_size_ci(**kwargs)


def test_shape_distance_needs_cnn():
    rng = np.random.default_rng(6)
    with pytest.raises(ParameterError, match="CNN columns"):
        shape_distance(table(20, rng).drop(columns="p"), table(20, rng))

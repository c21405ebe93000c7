"""Two-dataset comparison on samples with known distributions, and `tempipe compare`."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs
from scipy.spatial.distance import cdist
from sklearn.metrics import adjusted_rand_score

from tempipe.classifier import ClassifierParams
from tempipe.cli import main
from tempipe.compare import (bootstrap_size_ci, compare_datasets, compare_populations,
                             group_fractions, read_particle_table, shape_distance, size_tests,
                             write_comparison)
from tempipe.errors import InputFileError, ParameterError
from tempipe.features import measure_particles
from tempipe.io import save_micrograph
from tempipe.simulate import ShapeFamily, simulate_micrograph


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


# --- whole datasets: cluster A, classify B, write the tables and the page -------------------

DISC = ShapeFamily("disc", p=(2.0, 2.3), l_ratio=(1.0, 1.05), size_mean_px=22, size_rel_sd=0.1)
ROD = ShapeFamily("rod", p=(3.0, 5.0), l_ratio=(1.8, 2.2), size_mean_px=44, size_rel_sd=0.1)


def truth_table(disc_share, seed, n=160):
    """Features measured on exact labels with the true p, d, l_ratio as the CNN columns."""
    families = (replace(DISC, fraction=disc_share), replace(ROD, fraction=1 - disc_share))
    sim = simulate_micrograph((640, 640), n_particles=n, families=families, pixel_size_nm=0.5,
                              touching_fraction=0.0, rng=seed)
    table = measure_particles(sim.labels, sim.image, pixel_size_nm=0.5)
    truth = sim.particles.set_index("label").loc[table["label"]]
    for col in ("family", "p", "d", "l_ratio"):
        table[col] = truth[col].to_numpy()
    table.insert(0, "image", f"field-{seed}.tif")
    return table[~truth["touches_border"].to_numpy()].reset_index(drop=True)


@pytest.fixture(scope="module")
def datasets():
    return truth_table(0.5, 1), truth_table(0.8, 2)


@pytest.fixture(scope="module")
def compared(datasets):
    return compare_datasets(*datasets, names=("first", "second"), rng=0, n_boot=200,
                            classifier_params=ClassifierParams(n_trials=6, timeout_s=5))


def test_compare_datasets_applies_the_groups_of_a_to_b(datasets, compared):
    a, b = datasets
    assert compared.groups.k == 2 and compared.classifier.test_accuracy >= 0.95
    # groups are numbered by size: 1 = discs, 2 = rods, in both datasets
    assert adjusted_rand_score(a["family"], compared.groups.labels) >= 0.95
    assert adjusted_rand_score(b["family"], compared.labels_b) >= 0.95
    fractions = compared.comparison.fractions
    assert fractions.loc[1, "second fraction"] == pytest.approx((b["family"] == "disc").mean(),
                                                                abs=0.02)
    assert fractions.loc[1, "first fraction"] == pytest.approx((a["family"] == "disc").mean(),
                                                               abs=0.02)


def test_write_comparison_files(compared, tmp_path):
    written = write_comparison(compared, tmp_path / "out")
    assert [p.name for p in written] == ["comparison.csv", "fractions.csv", "tests.csv",
                                         "comparison.html"]
    table = pd.read_csv(written[0], index_col="quantity")
    assert list(table.columns) == ["first", "second"]
    assert table.loc["Particles", "second"] == len(compared.particles_b)
    fractions = pd.read_csv(written[1], index_col="group")
    np.testing.assert_allclose(fractions[["first fraction", "second fraction"]].sum(), 1.0)
    assert set(pd.read_csv(written[2])["test"]) == {"ks", "mann_whitney", "energy_distance"}
    page = written[3].read_text(encoding="utf-8")
    assert page.count(get_plotlyjs()[:300]) == 1  # plotly.js embedded once
    assert page.count("class='figure'") == 4 and "field-2.tif" in page


def test_read_particle_table(datasets, tmp_path):
    a, _ = datasets
    a.to_parquet(tmp_path / "particles.parquet")
    pd.testing.assert_frame_equal(read_particle_table(tmp_path), a)  # analyze output folder
    assert read_particle_table(tmp_path / "particles.parquet") is not None
    assert read_particle_table(tmp_path / "images") is None  # not a table: analyse it
    pd.DataFrame({"x": [1.0]}).to_parquet(tmp_path / "other.parquet")
    with pytest.raises(InputFileError, match="not a particle table"):
        read_particle_table(tmp_path / "other.parquet")
    (tmp_path / "broken.parquet").write_text("not parquet")
    with pytest.raises(InputFileError, match="cannot read it as Parquet"):
        read_particle_table(tmp_path / "broken.parquet")


def test_cli_compare_micrograph_folders_and_tables(datasets, tmp_path, capsys):
    """A: a folder of micrographs analysed by the pipeline; B: a particles.parquet."""
    folder = tmp_path / "hot"
    folder.mkdir()
    for seed in (3, 4):
        sim = simulate_micrograph((512, 512), n_particles=70, families=(DISC, ROD),
                                  pixel_size_nm=0.5, touching_fraction=0.0, rng=seed)
        save_micrograph(folder / f"f{seed}.tif", sim.image, 0.5)
    assert main(["analyze", str(folder), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    out = tmp_path / "cmp"
    assert main(["compare", str(folder), str(tmp_path / "b" / "particles.parquet"), "--out",
                 str(out)]) == 0
    fractions = pd.read_csv(out / "fractions.csv", index_col="group")
    # the same images on both sides: identical groups and shares
    np.testing.assert_allclose(fractions["hot fraction"], fractions["particles fraction"])
    assert fractions["hot fraction"].between(0.3, 0.7).all()  # discs and rods, ~half each
    assert "2 shape groups" in capsys.readouterr().out


def test_cli_compare_needs_two_datasets(tmp_path, capsys):
    assert main(["compare", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "Give two datasets" in capsys.readouterr().err

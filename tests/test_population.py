"""Shape groups against simulated truth; statistics recomputed independently."""

import numpy as np
import pandas as pd
import pytest
from scipy.cluster.hierarchy import cophenet, fcluster, linkage
from scipy.spatial.distance import pdist
from sklearn.metrics import adjusted_rand_score

from tempipe.errors import ParameterError
from tempipe.features import measure_particles
from tempipe.population import (ALGORITHMS, FEATURE_SETS, MORPHOLOGY_FEATURES, ClusterParams,
                                cophenetic_correlation, feature_table, find_shape_groups,
                                group_feature_statistics, group_summary, morphology_columns,
                                population_table, standardized_features)
from tempipe.simulate import ShapeFamily, simulate_micrograph

FAMILIES = (
    ShapeFamily("disc", p=(2.0, 2.3), l_ratio=(1.0, 1.05), size_mean_px=22, size_rel_sd=0.1,
                fraction=0.35),
    ShapeFamily("square", p=(4.0, 8.0), l_ratio=(1.0, 1.1), size_mean_px=36,
                size_rel_sd=0.1, fraction=0.3),
    ShapeFamily("rod", p=(2.5, 5.0), l_ratio=(1.8, 2.2), size_mean_px=44, size_rel_sd=0.1,
                fraction=0.2),
    ShapeFamily("triangle", p=(1.3, 2.0), d=(3,), l_ratio=(1.6, 2.0), size_mean_px=52,
                size_rel_sd=0.1, fraction=0.15),
)
FAST = ClusterParams(k_max=7, n_init=2)


def truth_population(seeds, touching_fraction=0.0):
    """Features measured on exact labels + true (p, d, l_ratio), with the true family."""
    tables = []
    for seed in seeds:
        sim = simulate_micrograph((768, 768), n_particles=170, families=FAMILIES,
                                  pixel_size_nm=0.5, touching_fraction=touching_fraction,
                                  rng=seed)
        table = measure_particles(sim.labels, sim.image, pixel_size_nm=0.5)
        truth = sim.particles.set_index("label").loc[table["label"]]
        table = table[~truth["touches_border"].to_numpy()].copy()
        truth = truth[~truth["touches_border"]]
        for col in ("family", "p", "d", "l_ratio"):
            table[col] = truth[col].to_numpy()
        table.insert(0, "image", f"field-{seed}")
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


@pytest.fixture(scope="module")
def population():
    return truth_population([11, 12, 13])


@pytest.fixture(scope="module")
def groups(population):
    return find_shape_groups(population, rng=0)


def test_default_groups_recover_the_true_families(population, groups):
    assert groups.k == 4
    assert adjusted_rand_score(population["family"], groups.labels) >= 0.95
    assert set(groups.comparison["algorithm"]) == set(ALGORITHMS)
    assert set(groups.comparison["feature_set"]) == set(FEATURE_SETS)
    best = groups.comparison.iloc[0]
    assert (groups.algorithm, groups.feature_set) == (best["algorithm"], best["feature_set"])
    assert groups.comparison["ccc"].is_monotonic_decreasing
    with_cnn = groups.comparison["feature_set"] != "features"
    assert (groups.comparison.loc[with_cnn, "k"] == 4).all()  # every algorithm finds all 4
    # the five morphology descriptors alone: silhouette at K = 4 and 5 within 0.01 (the
    # triangles, p 1.3-2 from concave to rounded, may split in two)
    assert groups.comparison.loc[~with_cnn, "k"].isin([4, 5]).all()
    curves = groups.silhouettes
    assert len(curves) == len(groups.comparison) * 11  # K = 2..12


def test_groups_are_numbered_by_increasing_size(population, groups):
    sizes = [population["major_axis_length_nm"][groups.labels == g].mean()
             for g in range(1, groups.k + 1)]
    assert np.all(np.diff(sizes) > 0)
    # smallest group is the discs, largest the triangles
    assert population["family"][groups.labels == 1].mode()[0] == "disc"
    assert population["family"][groups.labels == 4].mode()[0] == "triangle"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_can_be_forced(population, groups, algorithm):
    forced = find_shape_groups(population, algorithm=algorithm, feature_set="both", k=4,
                               comparison=groups.comparison)
    assert forced.algorithm == algorithm and forced.feature_set == "both"
    assert adjusted_rand_score(population["family"], forced.labels) >= 0.9


def test_user_k_overrides_silhouette(population, groups):
    three = find_shape_groups(population, algorithm="kmeans", k=3,
                              comparison=groups.comparison)
    assert three.k == 3 and set(np.unique(three.labels)) == {1, 2, 3}


def test_ward_on_subsample_labels_every_particle(population):
    params = ClusterParams(k_max=6, subsample=300)
    ward = find_shape_groups(population, algorithm="ward", feature_set="cnn", rng=1,
                             params=params)
    assert len(ward.labels) == len(population) and (ward.labels > 0).all()
    assert adjusted_rand_score(population["family"], ward.labels) >= 0.9


def test_features_only_without_cnn_columns(population):
    table = population.drop(columns=["p", "d", "l_ratio"])
    only = find_shape_groups(table, rng=0, params=FAST)
    assert set(only.comparison["feature_set"]) == {"features"}
    assert only.k in (4, 5) and adjusted_rand_score(population["family"], only.labels) >= 0.9
    with pytest.raises(ParameterError, match="CNN columns"):
        find_shape_groups(table, feature_set="cnn", params=FAST)


def test_feature_sets_hold_one_descriptor_per_property_and_fall_back_to_pixels(population):
    cols = morphology_columns(population)
    assert cols == list(MORPHOLOGY_FEATURES)
    uncalibrated = population.copy()
    uncalibrated["equivalent_diameter_nm"] = np.nan
    assert "equivalent_diameter_px" in morphology_columns(uncalibrated)
    features = feature_table(population, "features")
    np.testing.assert_allclose(features["log_equivalent_diameter_nm"],
                               np.log(population["equivalent_diameter_nm"]))
    np.testing.assert_allclose(features["log_aspect_ratio"], np.log(population["aspect_ratio"]))
    np.testing.assert_array_equal(features["solidity"], population["solidity"])
    cnn = feature_table(population, "cnn")
    assert list(cnn.columns) == ["log_p", "d", "log_l_ratio"]
    np.testing.assert_allclose(cnn["log_p"], np.log(population["p"]))
    X, valid, names = standardized_features(population, "both")
    assert valid.all() and names == [*features.columns, *cnn.columns]
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(X.std(axis=0), 1, rtol=1e-9)
    # standardised log size is unit-free: the uncalibrated table clusters identically
    X_px, _, _ = standardized_features(uncalibrated, "both")
    np.testing.assert_allclose(X_px, X, atol=1e-9)


def test_non_finite_rows_are_left_ungrouped(population, groups):
    table = population.copy()
    table.loc[[3, 10], "p"] = np.nan
    out = find_shape_groups(table, algorithm="kmeans", feature_set="both",
                            comparison=groups.comparison)
    assert (out.labels[[3, 10]] == 0).all() and (np.delete(out.labels, [3, 10]) > 0).all()


def test_ccc_equals_scipy_for_the_average_linkage_split():
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(0, 1, (60, 3)), rng.normal(4, 1, (50, 3))])
    tree = linkage(X, "average")
    labels = fcluster(tree, 2, criterion="maxclust")
    expected = cophenet(tree, pdist(X))[0]
    assert cophenetic_correlation(X, labels) == pytest.approx(expected, rel=1e-10)
    noise = rng.integers(0, 2, len(X))  # a meaningless split represents the data worse
    assert cophenetic_correlation(X, noise) < expected - 0.2


def test_group_summary_recomputed_independently(population, groups):
    summary = group_summary(population, groups.labels)
    by = population.groupby(groups.labels)["major_axis_length_nm"]
    np.testing.assert_array_equal(summary["n"], by.size())
    np.testing.assert_allclose(summary["fraction"], by.size() / len(population))
    np.testing.assert_allclose(summary["size_mean_nm"], by.mean())
    np.testing.assert_allclose(summary["size_rel_sd"], by.std() / by.mean())
    # simulated relative sd is 0.1 for every family
    assert summary["size_rel_sd"].between(0.07, 0.14).all()
    table = population_table(population, groups.labels)
    size = population["major_axis_length_nm"]
    assert table.loc["Average size (nm)", "total"] == pytest.approx(size.mean())
    assert table.loc["Size distribution (σ/d̄)", "total"] == pytest.approx(
        size.std() / size.mean())
    assert list(table.columns) == ["1", "2", "3", "4", "total"]


def test_group_feature_statistics(population, groups):
    stats = group_feature_statistics(population, groups.labels)
    for g in (1, 4):
        part = population[groups.labels == g]
        assert stats.loc["circularity", f"group {g} mean"] == pytest.approx(
            part["circularity"].mean())
        assert stats.loc["p", f"group {g} sd"] == pytest.approx(part["p"].std())
    assert stats.loc["area_nm2", "unit"] == "nm^2"
    assert stats.loc["area_nm2", "all mean"] == pytest.approx(population["area_nm2"].mean())
    assert "family" not in stats.index and "l_ratio" in stats.index


@pytest.mark.parametrize("kwargs, match", [
    ({"algorithm": "dbscan"}, "algorithm"),
    ({"feature_set": "pixels"}, "feature_set"),
    ({"k": 1}, "k=1"),
    ({"k": 2.5}, "k=2.5"),
    ({"rng": "seed"}, "rng"),
])
def test_bad_arguments(population, groups, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        find_shape_groups(population, comparison=groups.comparison, **kwargs)


@pytest.mark.parametrize("particles, labels, match", [
    ("not a table", None, "DataFrame"),
    (pd.DataFrame({"major_axis_length_nm": [1.0, 2.0]}), [1], "one group per row"),
    (pd.DataFrame({"major_axis_length_nm": [1.0, 2.0]}), [1.0, 2.0], "integer"),
    (pd.DataFrame({"major_axis_length_nm": [1.0, 2.0]}), [-1, 2], ">= 0"),
])
def test_bad_labels(particles, labels, match):
    with pytest.raises(ParameterError, match=match):
        group_summary(particles, labels)


def test_too_few_particles(population):
    with pytest.raises(ParameterError, match="at least"):
        find_shape_groups(population.iloc[:3])


def test_full_pipeline_with_the_shipped_cnn():
    """Micrographs -> analyze_micrograph (shipped CNN) -> groups match the true families."""
    from tempipe.io import Micrograph
    from tempipe.pipeline import analyze_micrograph
    from tempipe.shape_model import DEFAULT_WEIGHTS
    if not DEFAULT_WEIGHTS.exists():
        pytest.skip("models/shape_cnn.pt is not present")
    tables, families = [], []
    for seed in (31, 32):
        sim = simulate_micrograph((768, 768), n_particles=150, families=FAMILIES[::3],
                                  pixel_size_nm=0.5, touching_fraction=0.0, rng=seed)
        table = analyze_micrograph(Micrograph(sim.image, 0.5, f"f{seed}", {})).particles
        under = sim.labels[np.rint(table["centroid_row"]).astype(int),
                           np.rint(table["centroid_col"]).astype(int)]
        families.append(sim.particles.set_index("label")["family"].reindex(under).to_numpy())
        tables.append(table)
    table, family = pd.concat(tables, ignore_index=True), np.concatenate(families)
    assert {"p", "d", "l_ratio"} <= set(table.columns)
    groups = find_shape_groups(table, rng=0, params=FAST)
    assert groups.k == 2
    assert adjusted_rand_score(family.astype(str), groups.labels) >= 0.9

"""The shape-group SVM against simulated truth: accuracy, transfer, ablation, bad input."""

import numpy as np
import pandas as pd
import pytest

from tempipe.classifier import ClassifierParams, classifier_ablation, train_classifier
from tempipe.errors import ParameterError
from tempipe.features import measure_particles
from tempipe.population import ClassifierResult as ReExported
from tempipe.simulate import ShapeFamily, simulate_micrograph

FAMILIES = (
    ShapeFamily("disc", p=(2.0, 2.3), l_ratio=(1.0, 1.05), size_mean_px=24, size_rel_sd=0.1),
    ShapeFamily("square", p=(4.0, 8.0), l_ratio=(1.0, 1.1), size_mean_px=34, size_rel_sd=0.1),
    ShapeFamily("rod", p=(2.5, 5.0), l_ratio=(1.8, 2.2), size_mean_px=40, size_rel_sd=0.1),
)
FAST = ClassifierParams(n_trials=6, timeout_s=10, search_max=400, cv_max=600)
GROUP = {"disc": 1, "square": 2, "rod": 3}


def truth_table(seed):
    """Features of exact labels + true CNN parameters; ``group`` is the true family."""
    sim = simulate_micrograph((768, 768), n_particles=150, families=FAMILIES,
                              pixel_size_nm=0.5, touching_fraction=0.0, rng=seed)
    table = measure_particles(sim.labels, sim.image, pixel_size_nm=0.5)
    truth = sim.particles.set_index("label").loc[table["label"]]
    for col in ("p", "d", "l_ratio"):
        table[col] = truth[col].to_numpy()
    table["group"] = truth["family"].map(GROUP).to_numpy()
    return table


@pytest.fixture(scope="module")
def train():
    return pd.concat([truth_table(s) for s in (21, 22, 23)], ignore_index=True)


@pytest.fixture(scope="module")
def result(train):
    return train_classifier(train, train["group"].to_numpy(), rng=0, params=FAST)


def test_accuracy_and_confusion(train, result):
    assert isinstance(result, ReExported)
    assert result.test_accuracy >= 0.98 and result.cv_accuracy >= 0.97
    counts = result.confusion.to_numpy()
    assert counts.sum() == result.n_test == round(0.2 * len(train))
    assert np.trace(counts) / counts.sum() == pytest.approx(result.test_accuracy)
    # stratified split: test counts per group follow the population's shares
    shares = train["group"].value_counts(normalize=True).sort_index().to_numpy()
    np.testing.assert_allclose(counts.sum(axis=1) / counts.sum(), shares, atol=0.01)
    assert result.best_params["kernel"] in ("rbf", "linear", "poly")
    assert 1 <= result.n_trials <= FAST.n_trials


def test_classifier_labels_another_dataset(result):
    other = truth_table(99)
    predicted = result.predict(other)
    assert predicted.shape == (len(other),)
    assert np.mean(predicted == other["group"].to_numpy()) >= 0.97


def test_non_finite_rows_predict_zero(result):
    other = truth_table(98).copy()
    other.loc[[0, 5], "l_ratio"] = np.nan
    predicted = result.predict(other)
    assert (predicted[[0, 5]] == 0).all() and (np.delete(predicted, [0, 5]) > 0).all()


def test_predict_needs_the_training_variables(result, train):
    with pytest.raises(ParameterError, match="CNN columns"):
        result.predict(train.drop(columns=["p", "d", "l_ratio"]))
    uncalibrated = train.copy()
    uncalibrated["equivalent_diameter_nm"] = np.nan  # falls back to _px: not what was trained on
    with pytest.raises(ParameterError, match="equivalent_diameter_nm"):
        result.predict(uncalibrated)


def test_ablation_table(train):
    table = classifier_ablation(train, train["group"].to_numpy(), rng=0, params=FAST)
    assert list(table["feature_set"]) == ["both", "features", "cnn"]
    assert list(table["n_variables"]) == [8, 5, 3]  # 5 descriptors + log p, d, log L
    np.testing.assert_allclose(table["gap"], table["test_accuracy"].iloc[0]
                               - table["test_accuracy"])
    assert (table["test_accuracy"] >= 0.95).all()  # three well-separated families


def test_both_falls_back_to_features_without_cnn(train):
    table = train.drop(columns=["p", "d", "l_ratio"])
    res = train_classifier(table, train["group"].to_numpy(), params=FAST)
    assert res.feature_set == "features" and res.test_accuracy >= 0.95


def test_groups_too_small_to_learn_are_left_out(train, result):
    labels = train["group"].to_numpy().copy()
    odd = np.flatnonzero(labels == 3)[:3]
    labels[odd] = 4  # three rods set apart, as a clustering of a small batch may do
    res = train_classifier(train, labels, rng=0, params=FAST)
    assert res.left_out == {4: 3} and result.left_out == {}
    assert res.n_train + res.n_test == len(train) - 3
    assert list(res.confusion.index) == [1, 2, 3]
    predicted = res.predict(train)
    assert set(np.unique(predicted)) == {1, 2, 3}  # never the left-out group
    assert np.mean(predicted == train["group"].to_numpy()) >= 0.98


@pytest.mark.parametrize("labels, match", [
    (lambda t: np.ones(len(t), int), "two groups"),
    (lambda t: np.r_[np.ones(len(t) - 3, int), 2, 2, 2], ">= 5 particles"),
    (lambda t: np.ones(len(t) - 1, int), "one group per row"),
])
def test_bad_labels(train, labels, match):
    with pytest.raises(ParameterError, match=match):
        train_classifier(train, labels(train), params=FAST)


@pytest.mark.parametrize("kwargs", [{"test_fraction": 1.5}, {"cv_folds": 1}, {"n_trials": 0}])
def test_bad_params(kwargs):
    with pytest.raises(ParameterError, match="ClassifierParams"):
        ClassifierParams(**kwargs)


def test_bad_feature_set(train):
    with pytest.raises(ParameterError, match="feature"):
        train_classifier(train, train["group"].to_numpy(), feature_set="pixels", params=FAST)

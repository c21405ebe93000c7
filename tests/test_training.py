"""Training set and a tiny end-to-end training run."""

import numpy as np
import pytest
import torch

from tempipe.errors import ParameterError
from tempipe.fit import TrainConfig, train_shape_model
from tempipe.shape_model import ShapeModel
from tempipe.training import TRAINING_DISTRIBUTIONS as DIST, make_training_set


def test_training_set_is_deterministic_and_in_range():
    crops, params = make_training_set(150, rng=5, size=40)
    again, params2 = make_training_set(150, rng=5, size=40)
    assert crops.shape == (150, 40, 40) and crops.dtype == np.float32
    np.testing.assert_array_equal(crops, again)
    assert params.equals(params2)
    assert params["p"].between(np.exp(DIST.log_p[0]), np.exp(DIST.log_p[1])).all()
    assert set(params["d"]) <= set(map(float, DIST.d_values))
    assert params["l_ratio"].between(*DIST.l_ratio).all()
    # crops are masked: the crop's border rows are background (exactly 0)
    assert np.all(crops[:, 0, :] == 0) and np.all(crops[:, :, 0] == 0)
    # and each particle is ~1 inside after normalisation
    inside = np.array([np.median(c[c > 0.5]) for c in crops])
    assert np.all(np.abs(inside - 1) < 0.35)


def test_particle_fill_fraction_matches_crop_convention():
    crops, params = make_training_set(100, rng=1, size=48)
    extent = np.array([max(np.ptp(np.nonzero(c > 0)[0]), np.ptp(np.nonzero(c > 0)[1])) + 1
                       for c in crops])
    # the particle's bounding box spans size / (1 + 2 * margin) = 36.9 px of 48, plus up to
    # ~1.5 px of anti-aliasing spill each side
    assert extent.min() >= 36 and extent.max() <= 41


def test_bad_n():
    with pytest.raises(ParameterError, match="positive integer"):
        make_training_set(0)


def test_tiny_training_run_round_trips(tmp_path):
    config = TrainConfig(n_samples=300, max_epochs=1, n_jobs=1, batch_size=64)
    model, (test_crops, test_params) = train_shape_model(config)
    card = model.card
    assert card["epochs_run"] == 1 and card["sizes"] == {"train": 210, "validation": 30, "test": 60}
    assert np.isfinite(card["history"][0]["val_loss"])
    assert set(card["test"]) >= {"round_d_accuracy", "rmse_log_p", "rmse_l_ratio", "rmse_log_p_by_d"}
    path = model.save(tmp_path / "m.pt")
    loaded = ShapeModel.load(path)
    pd_a, pd_b = model.predict(test_crops), loaded.predict(test_crops)
    np.testing.assert_allclose(pd_a.to_numpy(), pd_b.to_numpy(), rtol=1e-5)
    state = torch.load(path, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())

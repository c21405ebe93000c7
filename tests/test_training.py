"""Training set, canonical labels and a tiny end-to-end training run."""

import numpy as np
import pandas as pd
import pytest
import torch

from tempipe.errors import ParameterError
from tempipe.fit import TrainConfig, train_shape_model
from tempipe.shape_model import ShapeModel, ShapeNetConfig
from tempipe._render import coverage_patch, max_radius
from tempipe.simulate import particle_coverage
from tempipe.training import (FOLD_L_RATIO, MOSAIC_GAP_PX, MOSAIC_WIDTH_PX,
                              TRAINING_DISTRIBUTIONS as DIST, canonical_parameters,
                              make_training_set, mosaic_layout, particle_extents,
                              sample_parameters)


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
    # ~1.5 px of anti-aliasing spill each side; small particles are enlarged (more spill),
    # faint edge pixels normalise to 0 (less)
    assert 37 <= np.median(extent) <= 40
    assert np.mean((extent >= 35) & (extent <= 42)) >= 0.95


def test_particle_extents_hold_every_covered_pixel():
    params = sample_parameters(600, np.random.default_rng(4))
    r_max, extents = particle_extents(params)
    slack = []
    np.testing.assert_allclose(r_max, max_radius(params["p"], params["d"], params["l_ratio"]),
                               rtol=2e-5)
    for i, row in enumerate(params.itertuples(index=False)):
        centre = (50.3, 50.7)
        patch, (r0, c0) = coverage_patch((row.p, row.d, row.l_ratio, row.phi), row.radius_px,
                                         centre, 3, r_max=float(r_max[i]))
        rows, cols = np.nonzero(patch > 0)
        d_row, d_col = rows + r0 - centre[0], cols + c0 - centre[1]
        lo_r, hi_r, lo_c, hi_c = extents[i]
        assert lo_r <= d_row.min() and d_row.max() <= hi_r
        assert lo_c <= d_col.min() and d_col.max() <= hi_c
        slack.append(max(d_row.min() - lo_r, hi_r - d_row.max(),
                         d_col.min() - lo_c, hi_c - d_col.max()))
    # and the boxes are tight: the 1-px growth plus pixel steps (sub-pixel spike tips that
    # cover no pixel leave more)
    assert np.median(slack) <= 2.0 and np.percentile(slack, 90) <= 3.0


def test_mosaic_layout_keeps_particles_apart_and_inside():
    rng = np.random.default_rng(3)
    for _ in range(20):
        params = sample_parameters(144, rng)
        extents = particle_extents(params)[1]
        centres, shape = mosaic_layout(extents, rng)
        assert shape[1] == MOSAIC_WIDTH_PX and shape[0] < MOSAIC_WIDTH_PX
        top, bottom = centres[:, 0] + extents[:, 0], centres[:, 0] + extents[:, 1]
        left, right = centres[:, 1] + extents[:, 2], centres[:, 1] + extents[:, 3]
        # every particle's box lies >= 6 px inside the mosaic (half gaps less the jitter)
        assert min(top.min(), left.min()) >= MOSAIC_GAP_PX - 2 - 1e-9
        assert shape[0] - bottom.max() >= MOSAIC_GAP_PX - 2 - 1e-9
        assert shape[1] - right.max() >= MOSAIC_GAP_PX - 2 - 1e-9
        # neighbours' boxes stay apart by the gap less both jitters (2 px per axis)
        apart_rows = np.maximum(top[:, None] - bottom[None], top[None] - bottom[:, None])
        apart_cols = np.maximum(left[:, None] - right[None], left[None] - right[:, None])
        apart = np.maximum(apart_rows, apart_cols)
        np.fill_diagonal(apart, np.inf)
        assert apart.min() >= MOSAIC_GAP_PX - 4 - 1e-9
        # packed: far fewer pixels than equal cells of the largest particle
        assert np.prod(shape) < 0.6 * 144 * (2 * DIST.radius_px[1] + 8) ** 2


def _silhouette(p, d, phi, area_px=None):
    """Pixel mask of an l_ratio = 1 shape (max radius 60 px), or scaled to ``area_px``."""
    mask = particle_coverage(p, d, 1.0, phi, 60.0, (150, 150), (75.0, 75.0), 1) >= 0.5
    if area_px is None:
        return mask
    radius = 60.0 * np.sqrt(area_px / mask.sum())
    return particle_coverage(p, d, 1.0, phi, radius, (150, 150), (75.0, 75.0), 1) >= 0.5


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


@pytest.mark.parametrize("p, d", [(1.1, 2), (1.3, 4), (1.6, 3)])
def test_canonical_twin_is_the_same_silhouette(p, d):
    twin = float(canonical_parameters(pd.DataFrame({"p": [p], "l_ratio": [1.0]}))["p"][0])
    assert twin == pytest.approx(p / (p - 1))
    a = _silhouette(p, d, 0.0)
    turned = np.pi / (2 * d)
    b = _silhouette(twin, d, turned, area_px=a.sum())  # the twin turned by pi / (2 d)
    assert _iou(a, b) > 0.97  # two ~120 px shapes, boundaries within ~1 px
    # while p itself at the same turn, or the twin unturned, is clearly another shape
    assert _iou(a, _silhouette(p, d, turned)) < 0.93
    assert _iou(a, _silhouette(twin, d, 0.0, area_px=a.sum())) < 0.93


def test_canonical_parameters_fold_only_near_square_twins():
    params = pd.DataFrame({"p": [1.2, 1.2, 0.8, 3.0, 1.01], "l_ratio": [1.05, 1.3, 1.0, 1.0, 1.0],
                           "d": [2.0, 2.0, 4.0, 2.0, 3.0]})
    out = canonical_parameters(params)
    np.testing.assert_allclose(out["p"], [6.0, 1.2, 0.8, 3.0, np.exp(DIST.log_p[1])])
    assert out["l_ratio"].equals(params["l_ratio"]) and out["d"].equals(params["d"])
    assert params["p"][0] == 1.2 and FOLD_L_RATIO == pytest.approx(1.1)  # input not modified


def test_bad_n():
    with pytest.raises(ParameterError, match="positive integer"):
        make_training_set(0)


def test_tiny_training_run_round_trips(tmp_path):
    arch = ShapeNetConfig(channels=(8, 16, 16), stem_stride=2, members=2, hidden=16)
    config = TrainConfig(n_samples=300, max_epochs=1, n_jobs=1, batch_size=64, architecture=arch)
    model, (test_crops, test_params) = train_shape_model(config)
    card = model.card
    assert card["epochs_run"] == 1 and card["sizes"] == {"train": 210, "validation": 30, "test": 60}
    assert np.isfinite(card["history"][0]["val_loss"])
    assert set(card["test"]) >= {"round_d_accuracy", "rmse_log_p", "rmse_l_ratio",
                                 "rmse_log_p_by_d", "rmse_log_p_canonical"}
    path = model.save(tmp_path / "m.pt")
    loaded = ShapeModel.load(path)
    assert loaded.net.config == arch
    pd_a, pd_b = model.predict(test_crops), loaded.predict(test_crops)
    np.testing.assert_allclose(pd_a.to_numpy(), pd_b.to_numpy(), rtol=1e-5)
    state = torch.load(path, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    with torch.no_grad():  # weights changed in place: predict must not reuse the old fused net
        loaded.net.members[0].head[2].bias[0] += 1.0
    assert np.all(loaded.predict(test_crops)["p"] > pd_b["p"])

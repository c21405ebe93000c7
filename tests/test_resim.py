"""Re-simulation Jaccard against shapes whose parameters are known."""

import numpy as np
import pytest

from tempipe.crops import crop_masks
from tempipe.errors import ParameterError
from tempipe.resim import resim_jaccard
from tempipe.simulate import simulate_micrograph


def test_true_parameters_resimulate_their_particles():
    sim = simulate_micrograph((512, 512), n_particles=40, rng=4)
    t = sim.particles[~sim.particles["touches_border"]]
    masks = crop_masks(sim.labels, 32, label_ids=t["label"].to_numpy())
    j = resim_jaccard(masks, t["p"], t["d"], t["l_ratio"])
    assert j.mean() > 0.94 and j.min() > 0.85


def test_wrong_parameters_score_lower():
    sim = simulate_micrograph((512, 512), n_particles=40, rng=4)
    t = sim.particles[~sim.particles["touches_border"] & (sim.particles["family"] == "rod")]
    masks = crop_masks(sim.labels, 32, label_ids=t["label"].to_numpy())
    right = resim_jaccard(masks, t["p"], t["d"], t["l_ratio"])
    circle = resim_jaccard(masks, np.full(len(t), 2.0), np.full(len(t), 2.0), np.ones(len(t)))
    assert np.all(circle < right - 0.1)


@pytest.mark.parametrize("args, match", [
    ((np.zeros((2, 8, 8)), [2.0], [2.0], [1.0]), "N parameters"),
    ((np.zeros((1, 8, 8)), [-1.0], [2.0], [1.0]), "p > 0"),
])
def test_bad_input(args, match):
    with pytest.raises(ParameterError, match=match):
        resim_jaccard(*args)


def _reference_jaccard(mask, p, d, l_ratio):
    """The definition, one rotation at a time: polar test of every pixel with eq. 1."""
    from tempipe.resim import N_ROTATIONS, _unit_shape_moments
    from tempipe.simulate import superformula_radius
    inside_mask = mask > 0.5
    rows, cols = np.nonzero(inside_mask)
    area_unit, cx, cy = (float(v[0]) for v in _unit_shape_moments(
        np.array([p]), int(d), np.array([l_ratio])))
    scale = np.sqrt(inside_mask.sum() / area_unit)
    grid_r, grid_c = np.mgrid[0:mask.shape[0], 0:mask.shape[1]].astype(float)
    best = 0.0
    for k in range(N_ROTATIONS):
        phi = k * 2 * np.pi / d / N_ROTATIONS
        off_x = scale * (cx * np.cos(phi) + cy * np.sin(phi))
        off_y = scale * (cy * np.cos(phi) - cx * np.sin(phi))
        d_row, d_col = grid_r - (rows.mean() + off_y), grid_c - (cols.mean() - off_x)
        theta = np.arctan2(-d_row, d_col)
        shape = np.hypot(d_row, d_col) <= scale * superformula_radius(theta, p, d, l_ratio, phi)
        best = max(best, (shape & inside_mask).sum() / (shape | inside_mask).sum())
    return best


def test_matches_the_polar_definition_for_every_symmetry():
    sim = simulate_micrograph((512, 512), n_particles=40, rng=5)
    t = sim.particles[~sim.particles["touches_border"]].iloc[:12]
    masks = crop_masks(sim.labels, 32, label_ids=t["label"].to_numpy())
    rng = np.random.default_rng(6)
    for d in (1, 2, 3, 4, 5, 6):
        p = np.exp(rng.uniform(np.log(0.6), np.log(25), len(t)))
        l_ratio = rng.uniform(1.0, 2.5, len(t))
        got = resim_jaccard(masks, p, np.full(len(t), float(d)), l_ratio)
        want = [_reference_jaccard(m, pi, d, li) for m, pi, li in zip(masks, p, l_ratio)]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)

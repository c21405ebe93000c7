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

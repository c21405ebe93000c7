"""The renderer's fast paths agree with the exact ones they stand in for."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from tempipe._render import _mixed_3x3, coverage_patch, form_image, smooth_noise
from tempipe.errors import ParameterError
from tempipe.training import sample_parameters


def test_box_sum_boundary_is_the_morphological_one():
    square = np.ones((3, 3), bool)
    rng = np.random.default_rng(0)
    params = sample_parameters(300, rng)
    for row in params.itertuples(index=False):
        patch, _ = coverage_patch((row.p, row.d, row.l_ratio, row.phi), row.radius_px,
                                  rng.uniform(0, 50, 2), supersample=1)
        inside = patch > 0.5
        expected = ndi.binary_dilation(inside, square) & ~ndi.binary_erosion(inside, square)
        np.testing.assert_array_equal(_mixed_3x3(inside), expected)


@pytest.mark.parametrize("level, dose", [(0.9, 40.0), (0.15, 40.0), (0.6, 600.0)])
def test_fast_shot_noise_has_poisson_mean_and_variance(level, dose):
    mass = np.full((400, 400), 1.0 - level, np.float32)  # dark polarity: signal = level
    out = {}
    for fast in (False, True):
        image = form_image(mass, np.random.default_rng(1), dose=dose, blur_px=0.0,
                           texture=0.0, illumination=0.0, fast_noise=fast)
        out[fast] = (image.mean(), image.var())
    for mean, var in out.values():
        assert mean == pytest.approx(level, rel=0.01)
        assert var == pytest.approx(level / dose, rel=0.03)


def test_uniform_texture_has_unit_sd_and_the_same_correlation():
    rng = np.random.default_rng(2)
    for sigma in (0.8, 1.0, 1.5):
        fields = {w: smooth_noise((600, 600), rng, sigma, white=w) for w in ("normal", "uniform")}
        lag = {w: np.corrcoef(f[:, :-2].ravel(), f[:, 2:].ravel())[0, 1]
               for w, f in fields.items()}
        for field in fields.values():
            assert field.std() == pytest.approx(1.0, abs=0.03)
        assert lag["uniform"] == pytest.approx(lag["normal"], abs=0.02)
    with pytest.raises(ParameterError, match="white"):
        smooth_noise((8, 8), rng, 1.0, white="pink")

"""Scale-bar finding on drawn bars of known length."""

import numpy as np
import pytest

from tempipe.errors import ParameterError
from tempipe.scalebar import find_scale_bar
from tempipe.simulate import draw_scale_bar, simulate_micrograph


@pytest.mark.parametrize("corner", ["bottom-right", "bottom-left", "top-left", "top-right"])
@pytest.mark.parametrize("color", ["white", "black"])
def test_drawn_bar_length_is_exact(corner, color):
    base = simulate_micrograph((512, 512), n_particles=30, rng=11).image
    image, truth = draw_scale_bar(base, 0.5, corner=corner, color=color, rng=1)
    bar = find_scale_bar(image)
    assert bar is not None
    assert bar.length_px == pytest.approx(truth.length_px, abs=2)
    assert bar.bbox[0] >= truth.label_bbox[0] - 1 and bar.bbox[2] <= truth.label_bbox[2] + 1


def test_no_bar_on_plain_fields():
    found = [find_scale_bar(simulate_micrograph((512, 512), n_particles=40, rng=s).image)
             for s in range(5)]
    assert found == [None] * 5


@pytest.mark.parametrize("bad", [np.zeros((3, 4, 5)), np.array([["a"]])])
def test_bad_input(bad):
    with pytest.raises(ParameterError, match="2-D numeric image"):
        find_scale_bar(bad)

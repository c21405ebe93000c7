"""Shared fixtures: simulated micrographs with exact truth, and the EMPS data when present."""

from pathlib import Path

import pytest

from tempipe.simulate import simulate_micrograph

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
EMPS = SHARED / "data" / "emps-train"


@pytest.fixture(scope="session", autouse=True)
def tempipe_home(tmp_path_factory):
    """Every test (and every process it starts) stores datasets under a temporary
    TEMPIPE_HOME, never in the real ~/.tempipe."""
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("tempipe_home")
        patch.setenv("TEMPIPE_HOME", str(home))
        yield home


@pytest.fixture(scope="session")
def field():
    """A calibrated 512² dark-on-bright field with touching pairs (0.5 nm/px) and a scale bar."""
    return simulate_micrograph((512, 512), n_particles=50, pixel_size_nm=0.5, scale_bar=True,
                               rng=7)


@pytest.fixture(scope="session")
def emps_dir():
    if not (EMPS / "images").is_dir():
        pytest.skip("../shared/data/emps-train is not present")
    return EMPS

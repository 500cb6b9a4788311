import pytest

from .analytic import make_cube


@pytest.fixture(scope="module")
def small_case():
    """A 16x16x40 two-component cube with smooth known truth (about 300 counts per pixel)."""
    return make_cube(16, 16, 40, counts=300.0, seed=0)

"""Power law, interstellar absorption (cross sections vs published values) and composite models."""

import numpy as np
import pytest

from napari_sushi.core.physics import (
    ABUNDANCES,
    Absorption,
    PhysicsError,
    PowerLaw,
    Thermal,
    cross_section,
    powerlaw,
    thermal,
    transmission,
)


def test_powerlaw_integral_and_index():
    edges = np.array([1.0, 2.0, 4.0])
    f = powerlaw(edges, [2.0, 1.0], norm=[3.0, 1.0])
    assert f[0] == pytest.approx(3.0 * np.array([0.5, 0.25]))
    assert f[1] == pytest.approx(np.log([2.0, 2.0]))
    # slope of the density recovers the index
    e = np.geomspace(1, 8, 50)
    d = powerlaw(e, 2.7)[0] / np.diff(e)
    c = np.sqrt(e[1:] * e[:-1])
    assert -np.polyfit(np.log(c), np.log(d), 1)[0] == pytest.approx(2.7, rel=1e-3)


def test_powerlaw_cutoff():
    e = np.linspace(1, 10, 91)
    plain, cut = powerlaw(e, 2.0)[0], powerlaw(e, 2.0, e_cut=5.0)[0]
    c = 0.5 * (e[1:] + e[:-1])
    assert np.allclose(cut / plain, np.exp(-c / 5.0), rtol=2e-3)


@pytest.mark.parametrize("table, published", [("angr", 2.4e-22), ("wilm", 1.7e-22)])
def test_transmission_at_1kev_matches_published_cross_section(table, published):
    # N_H = 1e22 cm-2 (nH = 1 in units of 1e22)
    edges = np.array([0.999, 1.001])
    t = transmission(edges, 1.0, table)[0, 0]
    sigma = cross_section(1.0, table)[0]
    assert t == pytest.approx(np.exp(-1e22 * sigma), rel=1e-3)
    assert sigma == pytest.approx(published, rel=0.10)


def test_absorption_tables_differ_as_expected():
    assert ABUNDANCES["angr"]["O"] > ABUNDANCES["wilm"]["O"]
    e = np.array([0.5, 2.0, 7.0])
    assert np.all(cross_section(e, "angr") > cross_section(e, "wilm"))
    # cross section falls roughly as E^-2.5 between edges
    assert cross_section(2.0)[0] / cross_section(4.0)[0] == pytest.approx(2**2.5, rel=0.35)
    assert transmission(np.array([1.0, 1.1]), 0.0)[0, 0] == 1.0


def test_bad_absorption_inputs():
    with pytest.raises(PhysicsError, match="nH"):
        transmission(np.array([1.0, 2.0]), -0.1)
    with pytest.raises(PhysicsError, match="abundance table"):
        transmission(np.array([1.0, 2.0]), 0.1, "lodd")


def test_composite_models():
    e = np.linspace(0.5, 8.0, 301)
    model = Absorption("wilm") * (Thermal() + PowerLaw(prefix="pl_"))
    p = {"kT": [1.0, 3.0], "velocity": 0.0, "norm": 1.0, "pl_index": [2.0, 3.0], "pl_norm": 0.5, "nH": 0.5}
    out = model(e, p)
    expect = transmission(e, 0.5) * (thermal(e, [1.0, 3.0]) + powerlaw(e, [2.0, 3.0], 0.5))
    assert np.allclose(out, expect)
    assert set(model.names()) >= {"kT", "pl_index", "nH"}
    with pytest.raises(PhysicsError, match="pl_index"):
        model(e, {"kT": 1.0, "nH": 0.1})

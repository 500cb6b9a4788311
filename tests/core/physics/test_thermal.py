"""Thermal plasma: continuum temperature, line list, Doppler shift, vectorisation, bad input."""

import numpy as np
import pytest
from scipy.optimize import curve_fit

from napari_sushi.core.physics import C_KMS, LINES, PhysicsError, bremsstrahlung, gaunt_ff, thermal
from napari_sushi.core.response import gaussian_response


@pytest.mark.parametrize("kt", [1.0, 2.0, 4.0])
def test_continuum_exponential_cutoff_returns_kT(kt):
    # 4.3-6.3 keV holds no line of the list: fit A E^-g exp(-E/kT) to the full thermal model there
    edges = np.linspace(4.3, 6.3, 201)
    assert not any(4.3 < ln.energy < 6.3 for ln in LINES)
    centres = 0.5 * (edges[1:] + edges[:-1])
    density = thermal(edges, kt)[0] / np.diff(edges)
    p, _ = curve_fit(lambda e, a, g, k: a - g * np.log(e) - e / k, centres, np.log(density), p0=[0.0, 1.0, 1.5])
    assert p[2] == pytest.approx(kt, rel=0.05)


def test_gaunt_factor_limits():
    # u << 1: (sqrt3/pi) ln(2.25/u); u >> 1: (sqrt3/pi) sqrt(pi/u)
    assert gaunt_ff(1e-4) == pytest.approx(np.sqrt(3) / np.pi * np.log(2.25 / 1e-4), rel=0.01)
    assert gaunt_ff(400.0) == pytest.approx(np.sqrt(3) / np.pi * np.sqrt(np.pi / 400.0), rel=0.01)


def test_line_list_has_the_main_k_shell_lines():
    energies = {(ln.ion, ln.transition): ln.energy for ln in LINES}
    assert energies[("Fe XXV", "He-alpha r")] == pytest.approx(6.700, abs=0.002)
    assert energies[("Fe XXVI", "Ly-alpha")] == pytest.approx(6.966, abs=0.005)
    for ion in ["Mg XI", "Si XIII", "S XV", "Ar XVII", "Ca XIX", "O VII", "Ne IX"]:
        assert (ion, "He-alpha r") in energies
    for ion in ["Mg XII", "Si XIV", "S XVI", "Ar XVIII", "Ca XX", "O VIII", "Ne X"]:
        assert (ion, "Ly-alpha") in energies
    assert any(ln.ion.startswith("Fe XV") or ln.ion.startswith("Fe XX") for ln in LINES if ln.energy < 1.2)


def test_line_emissivity_follows_ionisation_balance():
    # Fe XXVI / Fe XXV rises with temperature; lines scale with abundance, continuum does not
    edges = np.linspace(6.0, 7.5, 1501)
    cont = thermal(edges, [1.5, 3.0, 6.0], lines=False)
    full = thermal(edges, [1.5, 3.0, 6.0])
    e = 0.5 * (edges[1:] + edges[:-1])
    he, h = (e > 6.6) & (e < 6.72), (e > 6.93) & (e < 7.0)
    ratio = [(full[i, h] - cont[i, h]).sum() / (full[i, he] - cont[i, he]).sum() for i in range(3)]
    assert ratio[0] < ratio[1] < ratio[2]
    half = thermal(edges, 3.0, abundance=0.5)[0] - cont[1]
    assert half.sum() == pytest.approx(0.5 * (full[1] - cont[1]).sum(), rel=1e-9)
    assert np.allclose(thermal(edges, 3.0, abundance=0.0)[0], cont[1])


@pytest.mark.parametrize("v", [3000.0, -3000.0])
def test_fe_xxv_centroid_moves_by_doppler_shift(v):
    resp = gaussian_response(fwhm=0.005, fwhm_power=0.0, emin=6.3, emax=7.2, channel_width=0.001, area=100.0)

    def centroid(vel):
        line = thermal(resp.energy_edges, 4.0, vel) - thermal(resp.energy_edges, 4.0, vel, lines=False)
        counts = resp.fold(line)[0]
        c = resp.channel_centers
        win = (c > 6.55) & (c < 6.80)  # Fe XXV triplet, shifted by <= 0.07 keV
        return (counts[win] * c[win]).sum() / counts[win].sum()

    c0, c1 = centroid(0.0), centroid(v)
    expected = -c0 * v / C_KMS  # positive v = receding = lower energy
    assert abs(expected) > 0.06
    assert (c1 - c0) == pytest.approx(expected, rel=0.10)


def test_broadening_widens_lines_and_conserves_flux():
    edges = np.linspace(6.2, 7.4, 2401)
    narrow = thermal(edges, 4.0)[0] - thermal(edges, 4.0, lines=False)[0]
    broad = thermal(edges, 4.0, sigma_v=1500.0)[0] - thermal(edges, 4.0, lines=False)[0]
    assert broad.sum() == pytest.approx(narrow.sum(), rel=1e-6)
    assert broad.max() < 0.5 * narrow.max()


def test_vectorised_matches_loop():
    edges = np.linspace(2.0, 9.0, 301)
    kt = np.array([0.8, 2.0, 3.5])
    v = np.array([-4000.0, 0.0, 2500.0])
    batch = thermal(edges, kt, v)
    for i in range(3):
        assert np.allclose(batch[i], thermal(edges, kt[i], v[i])[0], rtol=1e-12)


def test_continuum_doppler_shift():
    edges = np.linspace(3.0, 8.0, 501)
    rest = bremsstrahlung(edges, 2.0)[0]
    moving = bremsstrahlung(edges, 2.0, velocity=3000.0)[0]
    # receding: spectrum compressed to lower energies -> fewer photons above a fixed energy
    assert moving.sum() < rest.sum()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kT": -1.0}, "kT"),
        ({"kT": 0.0}, "kT"),
        ({"kT": 2.0, "abundance": -0.1}, "abundance"),
        ({"kT": 2.0, "sigma_v": -5.0}, "sigma_v"),
        ({"kT": np.nan}, "kT"),
        ({"kT": 2.0, "velocity": 1e5}, "velocity"),
        ({"kT": [1.0, 2.0], "velocity": [0.0, 1.0, 2.0]}, "lengths"),
    ],
)
def test_bad_parameters_raise_clear_errors(kwargs, match):
    with pytest.raises(PhysicsError, match=match):
        thermal(np.linspace(1, 2, 11), **kwargs)


@pytest.mark.parametrize("edges", [[1.0, 3.0, 2.0], [1.0, 1.0, 2.0], [0.0, 1.0], [1.0], [1.0, np.inf]])
def test_bad_energy_grid(edges):
    with pytest.raises(PhysicsError, match="energy grid"):
        thermal(np.array(edges), 2.0)

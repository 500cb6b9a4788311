"""APEC spectra from the nnapec emulator's weights (optional extra): known APEC facts, exact Doppler
shift, the package's own outputs, and a tiny model trained from them. Without the extra, a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_sushi.core.physics import apec as A
from napari_sushi.core.simulate import SimulationError, component_model, customise_preset

needs_apec = pytest.mark.skipif(not A.available(), reason="APEC extra not installed (pip install 'napari-sushi[apec]')")
EDGES = np.linspace(0.5, 8.0, 1501)
CENTRES = 0.5 * (EDGES[1:] + EDGES[:-1])
REFERENCE = Path(__file__).parent / "data" / "nnapec_reference.npz"


def _lines(kT, **kw):
    """Metal emission (abundance 1 minus abundance 0) per bin."""
    return A.apec(EDGES, kT, abundance=1.0, **kw)[0] - A.apec(EDGES, kT, abundance=0.0, **kw)[0]


def _centroid(f, lo, hi):
    w = (CENTRES > lo) & (CENTRES < hi)
    return float((CENTRES[w] * f[w]).sum() / f[w].sum())


@needs_apec
def test_line_centroids_and_fe_ratio_follow_apec():
    f = _lines(5.0)
    assert _centroid(f, 6.55, 6.8) == pytest.approx(6.68, abs=0.02)  # Fe XXV triplet blend
    assert _centroid(f, 6.85, 7.1) == pytest.approx(6.966, abs=0.01)  # Fe XXVI Ly-alpha
    assert _centroid(_lines(1.0), 1.80, 1.90) == pytest.approx(1.86, abs=0.01)  # Si XIII
    ratio = []
    for kt in (2.0, 4.0, 8.0, 16.0):
        g = _lines(kt)
        ratio.append(g[(CENTRES > 6.85) & (CENTRES < 7.1)].sum() / g[(CENTRES > 6.55) & (CENTRES < 6.8)].sum())
    assert np.all(np.diff(ratio) > 0) and ratio[0] < 0.1 < 1.0 < ratio[-1]


@needs_apec
def test_doppler_shift_is_exact_and_conserves_photons():
    wide = np.geomspace(0.3, 12.0, 3001)
    rest = A.apec(wide, 3.0)[0]
    moved = A.apec(wide, 3.0, velocity=4000.0)[0]
    s = 1 - 4000.0 / 299792.458
    # the observed band holds the rest-frame photons of the band / s: none created or lost
    assert moved.sum() == pytest.approx(A.apec(wide / s, 3.0)[0].sum(), rel=1e-9)
    # shifting the grid by the Doppler factor gives back the rest-frame spectrum bin by bin
    again = A.apec(wide * s, 3.0, velocity=4000.0)[0]
    np.testing.assert_allclose(again, rest, rtol=1e-9, atol=1e-12 * rest.max())
    broad = A.apec(wide, 3.0, sigma_v=3000.0)[0]
    assert broad.sum() == pytest.approx(rest.sum(), rel=1e-3) and broad.max() < rest.max()


@needs_apec
@pytest.mark.skipif(not REFERENCE.exists(), reason="no reference outputs of nnapec recorded")
def test_matches_the_packages_own_outputs():
    ref = np.load(REFERENCE, allow_pickle=False)
    emu = A.emulator()
    lo, hi = int(ref["index_lo"]), int(ref["index_hi"])
    np.testing.assert_allclose(emu.energies[lo:hi], ref["energies"], rtol=1e-6)
    ours = emu.density(ref["kT"], ref["abundance"])[:, lo:hi]
    # the network outputs log10 of the flux in float32; its matrix products round differently with the CPU's
    # kernels (measured on this CPU with numpy 2.4 / torch 2.13: up to 1.0e-4 dex, 2.3e-4 relative, in the
    # faint tail), so the comparison is in dex, at twice that
    np.testing.assert_allclose(np.log10(ours), np.log10(ref["spectra"]), rtol=0, atol=2e-4)


@needs_apec
def test_tiny_apec_model_trains_and_records_its_physics():
    from napari_sushi.core.spectral.training import train_model

    pre = customise_preset("wide", "thermal", physics="apec", fixed={"velocity": 0.0})
    model = train_model("emulator", pre, "thermal", quick=True, progress=False)
    assert model.meta.extra["physics"] == "apec" and "APEC" in model.meta.description
    theta = np.array([[0.7], [2.0], [4.0]])
    want = pre.folded_spectra("thermal", {"kT": theta[:, 0]})
    want /= want.sum(1, keepdims=True)
    import torch

    got = model.spectrum(torch.as_tensor(theta, dtype=torch.float64)).detach().numpy()
    assert np.max(np.abs(got - want).sum(1) / np.abs(want).sum(1)) < 0.02


def test_missing_extra_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(A.WEIGHTS_ENV, str(tmp_path / "nowhere.h5"))
    assert not A.available()
    with pytest.raises(SimulationError, match="APEC"):
        component_model("thermal", "apec")
    with pytest.raises(SimulationError, match="physics"):
        component_model("powerlaw", "apec")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all")
    monkeypatch.setenv(A.WEIGHTS_ENV, str(bad))
    pytest.importorskip("h5py")
    with pytest.raises(A.ApecUnavailable, match="bad.h5"):
        A.ApecEmulator(bad)

"""Spectral libraries (FITS / NPZ) -> models, and matching a model's grid to a cube."""

from __future__ import annotations

import numpy as np
import pytest

import standin
from napari_sushi.core.cube import HyperCube
from napari_sushi.core.spectral.base import ModelGridError
from napari_sushi.core.spectral.emulator import grid_nodes
from napari_sushi.core.spectral.library import LibraryError, SpectralLibrary, read_library, write_library
from napari_sushi.core.spectral.matching import match_model_to_cube
from napari_sushi.core.spectral.training import random_draws, spectral_errors, train_model


def _grid_library(n_kt=13, n_v=17, shuffle=True):
    kt = grid_nodes(0.5, 5.0, n_kt - 1, "log")[1:-1]
    v = np.linspace(-6000, 6000, n_v)
    th = np.stack(np.meshgrid(kt, v, indexing="ij"), -1).reshape(-1, 2)
    if shuffle:
        th = th[np.random.default_rng(0).permutation(len(th))]
    return SpectralLibrary(
        standin.EDGES,
        th,
        standin.thermal(th),
        ["kT", "velocity"],
        ["keV", "km/s"],
        th.min(0),
        th.max(0),
        channels=np.arange(205, 580),
        component="thermal",
        response_id="standin",
    )


@pytest.mark.parametrize("suffix", [".npz", ".fits"])
def test_library_roundtrip_and_emulator(suffix, tmp_path):
    lib = _grid_library()
    p = write_library(lib, tmp_path / f"lib{suffix}")
    back = read_library(p)
    assert back.names == ["kT", "velocity"] and back.units == ["keV", "km/s"]
    assert np.allclose(back.params, lib.params) and np.allclose(back.spectra, lib.spectra)
    assert np.array_equal(back.channels, lib.channels) and back.component == "thermal"
    model = train_model("emulator", library=str(p))
    assert model.param_names == ["kT", "velocity"] and model.meta.response_id == "standin"
    th = random_draws(model.meta, 200, 3)
    err = spectral_errors(model, th, standin.thermal(th))
    assert np.median(err) < 0.005 and np.percentile(err, 99) < 0.02
    val = model.meta.extra["loss_curve"][0]
    assert val["method"].startswith("every-other-node") and val["val_p99"] > 0


def test_scattered_library_refused_for_emulator_but_trains_iae(tmp_path):
    th = random_draws(standin.meta("thermal"), 120, 1)
    lib = SpectralLibrary(
        standin.EDGES, th, standin.thermal(th), ["kT", "velocity"], ["keV", "km/s"], th.min(0), th.max(0)
    )
    p = write_library(lib, tmp_path / "scatter.npz")
    with pytest.raises(LibraryError, match="full grid"):
        train_model("emulator", library=str(p))
    m = train_model("iae", library=str(p), max_epochs=2, progress=False, width=16, latent=4, head_width=8)
    tr = m.meta.extra["training"]
    assert tr["n_train"] + tr["n_val"] == 120 and tr["n_val"] == 12 and len(m.meta.extra["loss_curve"]) == 2


def test_bad_libraries(tmp_path):
    p = tmp_path / "bad.npz"
    np.savez(p, energy_edges=standin.EDGES, params=np.zeros((10, 1)))
    with pytest.raises(LibraryError, match="lacks"):
        read_library(p)
    q = tmp_path / "obj.npz"
    np.savez(
        q,
        energy_edges=standin.EDGES,
        params=np.zeros((10, 1)),
        spectra=np.ones((10, 375)),
        param_names=np.array([{"a": 1}], dtype=object),
        param_units=np.array([""]),
    )
    with pytest.raises(LibraryError, match="pickle"):
        read_library(q)
    with pytest.raises(LibraryError, match="shape"):
        SpectralLibrary(standin.EDGES, np.zeros((10, 1)), np.ones((10, 300)), ["a"], [""], [0], [1])


def _cube(edges, channels=None):
    return HyperCube(np.ones((len(edges) - 1, 3, 3)), edges, channels=channels)


def test_match_same_grid(thermal_emulator):
    cube = _cube(standin.EDGES, np.arange(205, 580))
    out, msg = match_model_to_cube(thermal_emulator, cube)
    assert out is cube and msg is None


def test_match_selects_band(thermal_emulator):
    d = standin.EDGES[1] - standin.EDGES[0]
    edges = np.concatenate(
        [standin.EDGES[0] - d * np.arange(20, 0, -1), standin.EDGES, standin.EDGES[-1] + d * np.arange(1, 11)]
    )
    cube = _cube(edges, np.arange(185, 185 + len(edges) - 1))
    out, msg = match_model_to_cube(thermal_emulator, cube)
    assert out.n_energy == 375 and np.allclose(out.energy_edges, standin.EDGES)
    assert np.array_equal(out.channels, np.arange(205, 580))
    assert "restricted" in msg and "30 bins" in msg


def test_match_refuses_other_grids(thermal_emulator):
    with pytest.raises(ModelGridError, match=r"375 bins 3\.0000-8\.4800 keV.*cube has 200 bins"):
        match_model_to_cube(thermal_emulator, _cube(np.linspace(3, 8.48, 201)))
    # same energies but other channel numbers: refused too
    with pytest.raises(ModelGridError, match="channels 1-375"):
        match_model_to_cube(thermal_emulator, _cube(standin.EDGES, np.arange(1, 376)))


def test_damaged_fits_library_is_a_library_error(tmp_path):
    from astropy.io import fits

    rng = np.random.default_rng(0)
    lib = SpectralLibrary(
        np.linspace(1.0, 5.0, 9),
        rng.uniform(1, 3, (6, 1)),
        rng.uniform(0.1, 1, (6, 8)),
        ["kT"],
        ["keV"],
        np.array([1.0]),
        np.array([3.0]),
    )
    good = write_library(lib, tmp_path / "lib.fits")
    raw = good.read_bytes()
    cut = tmp_path / "cut.fits"
    cut.write_bytes(raw[: len(raw) - 2000])
    with pytest.raises(LibraryError, match="cut.fits"):
        read_library(cut)
    with fits.open(good) as h:
        hdul = fits.HDUList([x.copy() for x in h])
    cols = [c for c in hdul["EBOUNDS"].columns if c.name != "E_MIN"]
    hdul["EBOUNDS"] = fits.BinTableHDU.from_columns(cols, name="EBOUNDS")
    hdul.writeto(tmp_path / "noemin.fits")
    with pytest.raises(LibraryError, match="E_MIN"):
        read_library(tmp_path / "noemin.fits")

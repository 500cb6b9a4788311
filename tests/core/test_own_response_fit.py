"""A model pair trained on any OGIP response (here a Gaussian one written to RMF/ARF files) saves,
reloads by name from the user model folder and fits a cube simulated through the same response."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sushi.core.response import gaussian_response, write_arf, write_rmf
from napari_sushi.core.simulate import response_preset, simulate_from_maps
from napari_sushi.core.solver.settings import Component, FitSettings
from napari_sushi.core.solver.sushi import fit
from napari_sushi.core.spectral.matching import match_model_to_cube
from napari_sushi.core.spectral.registry import load_model
from napari_sushi.core.spectral.training import train_model
from napari_sushi.core.spectral.user_models import save_user_model


def test_gaussian_response_models_reload_and_fit(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_SUSHI_MODEL_DIR", str(tmp_path / "models"))
    resp = gaussian_response(0.13, 0.5, 0.3, 9.0, channel_width=0.04, name="ccd")
    rmf, arf = write_rmf(resp, tmp_path / "ccd.rmf"), write_arf(resp, tmp_path / "ccd.arf")
    pre = response_preset(rmf, arf, band=(1.0, 7.0), group=2, nH=0.5, fixed={"velocity": 0.0})
    for comp in ("thermal", "powerlaw"):
        save_user_model(train_model("emulator", pre, comp, quick=True, progress=False), f"ccd-{comp}")
    models = {c: load_model(f"ccd-{c}") for c in ("thermal", "powerlaw")}
    ny = nx = 12
    yy, xx = np.mgrid[0:ny, 0:nx] / (ny - 1)
    truth = {
        "thermal amplitude": np.full((ny, nx), 600.0),
        "thermal kT": 1.0 + 2.0 * xx,
        "powerlaw amplitude": np.full((ny, nx), 600.0),
        "powerlaw index": 1.8 + 1.2 * yy,
    }
    sim = simulate_from_maps(pre, truth, seed=2)
    cube = sim.cube
    for m in models.values():
        assert match_model_to_cube(m, cube)[1] is None  # same channels, no band cut
    res = fit(cube, [Component(c, models[c]) for c in ("thermal", "powerlaw")], FitSettings(max_iter=60))
    for key in ("thermal kT", "powerlaw index"):
        err = res.params[key] - truth[key]
        const = truth[key] - np.median(truth[key])
        assert np.sqrt(np.mean(err**2)) < 0.6 * np.sqrt(np.mean(const**2)), key
    total = res.amplitudes["thermal"] + res.amplitudes["powerlaw"]
    assert total.mean() == pytest.approx(1200.0, rel=0.05)

"""Helpers for the app tests: small analytic spectral models and a small Poisson cube with truth."""

from __future__ import annotations

import numpy as np
import torch

from napari_sushi.core.cube import HyperCube
from napari_sushi.core.spectral.base import ModelMeta, ParameterInfo, SpectralModel

EDGES = np.linspace(3.0, 8.0, 41)  # 40 channels, 0.125 keV
C_KMS = 299792.458


class LineModel(SpectralModel):
    """Continuum exp(-E/kT) plus a 6.7 keV line Doppler-shifted by the velocity (unit sum)."""

    def __init__(self, edges: np.ndarray = EDGES, band: tuple[float, float] | None = None) -> None:
        meta = ModelMeta(
            component="thermal",
            family="analytic",
            parameters=[
                ParameterInfo("kT", "keV", 0.5, 8.0, 2.0, "plasma temperature"),
                ParameterInfo("velocity", "km/s", -8000.0, 8000.0, 0.0, "line-of-sight velocity"),
            ],
            energy_edges=np.asarray(edges, float),
            band=band or (float(edges[0]), float(edges[-1])),
            response_id="test",
        )
        super().__init__(meta)
        self.register_buffer("centres", torch.as_tensor(0.5 * (edges[1:] + edges[:-1])))

    def _spectrum(self, theta: torch.Tensor) -> torch.Tensor:
        e = self.centres.to(theta.dtype)
        kT, v = theta[:, :1], theta[:, 1:2]
        cont = torch.exp(-e[None, :] / kT)
        line = 0.3 * torch.exp(-0.5 * ((e[None, :] - 6.7 * (1 - v / C_KMS)) / 0.15) ** 2)
        s = cont / cont.sum(1, keepdim=True) + line
        return s / s.sum(1, keepdim=True)


class PowerLawModel(SpectralModel):
    """E^-index (unit sum)."""

    def __init__(self, edges: np.ndarray = EDGES) -> None:
        meta = ModelMeta(
            component="powerlaw",
            family="analytic",
            parameters=[ParameterInfo("index", "", 1.0, 4.0, 2.5, "photon index")],
            energy_edges=np.asarray(edges, float),
            band=(float(edges[0]), float(edges[-1])),
            response_id="test",
        )
        super().__init__(meta)
        self.register_buffer("centres", torch.as_tensor(0.5 * (edges[1:] + edges[:-1])))

    def _spectrum(self, theta: torch.Tensor) -> torch.Tensor:
        e = self.centres.to(theta.dtype)
        s = e[None, :] ** (-theta[:, :1])
        return s / s.sum(1, keepdim=True)


def make_cube(ny: int = 16, nx: int = 16, seed: int = 0) -> tuple[HyperCube, dict[str, np.ndarray]]:
    """A small Poisson cube of thermal + power law with smooth truth maps."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ny, 0:nx] / max(ny, nx)
    truth = {
        "thermal amplitude": 300 * np.exp(-((yy - 0.5) ** 2 + (xx - 0.5) ** 2) / 0.1),
        "thermal kT": 1.5 + 2.0 * xx,
        "thermal velocity": 3000.0 * (yy - 0.5) * 2,
        "powerlaw amplitude": 100.0 + 0 * xx,
        "powerlaw index": 2.0 + yy,
    }
    th = (
        LineModel()
        .spectrum(torch.as_tensor(np.stack([truth["thermal kT"].ravel(), truth["thermal velocity"].ravel()], 1)))
        .numpy()
    )
    pl = PowerLawModel().spectrum(torch.as_tensor(truth["powerlaw index"].reshape(-1, 1))).numpy()
    lam = truth["thermal amplitude"].reshape(-1, 1) * th + truth["powerlaw amplitude"].reshape(-1, 1) * pl
    counts = rng.poisson(lam.T.reshape(len(EDGES) - 1, ny, nx)).astype(np.float32)
    return HyperCube(counts, EDGES, name="testcube"), truth


def analytic_fit_dock(viewer, **settings):
    """A SUSHI fit dock docked in ``viewer`` with the two analytic models and fast settings.

    ``settings``: max_iter (6), tol (0), snapshot_every (2), binning (1), kmad (1.0).
    """
    from napari_sushi._napari import fit_dock as fd

    dock = fd.SushiFitDock(viewer)
    viewer.window.add_dock_widget(dock, name="SUSHI fit")
    for e in list(dock.editors):
        dock.remove_component(e)
    dock.add_component(LineModel())
    dock.add_component(PowerLawModel())
    dock.max_iter.setValue(settings.get("max_iter", 6))
    dock.tol.setText(str(settings.get("tol", 0.0)))
    dock.snapshot_every.setValue(settings.get("snapshot_every", 2))
    dock.binning.setValue(settings.get("binning", 1))
    dock.kmad.setValue(settings.get("kmad", 1.0))
    return dock


def run_fit(qtbot, dock, method: str = "sushi", timeout: int = 60_000):
    """Start a fit in ``dock`` and wait for it to finish; returns the job."""
    job = dock.start(method)
    assert job is not None, "the dock refused to start"
    qtbot.waitUntil(lambda: dock.job is None, timeout=timeout)
    return job


def capture_notifications(monkeypatch, *modules) -> dict[str, list[str]]:
    """Replace show_error/show_warning/show_info in ``modules`` by lists of their messages, by kind."""
    got: dict[str, list[str]] = {"error": [], "warning": [], "info": []}
    for mod in modules:
        for kind, messages in got.items():
            monkeypatch.setattr(mod, f"show_{kind}", lambda m, messages=messages: messages.append(str(m)))
    return got

"""Small analytic spectral models and cubes with known truth, for solver tests (no training needed)."""

from __future__ import annotations

import numpy as np
import torch

from napari_sushi.core.cube import HyperCube
from napari_sushi.core.spectral.base import ModelMeta, ParameterInfo, SpectralModel

C_KMS = 299792.458


def edges(n: int = 40, lo: float = 5.0, hi: float = 8.0) -> np.ndarray:
    return np.linspace(lo, hi, n + 1)


class LineModel(SpectralModel):
    """Thermal-like: exp(-E/kT) continuum plus a Gaussian line at 6.7 keV shifted by the velocity."""

    def __init__(self, e: np.ndarray, nan_above: float | None = None) -> None:
        super().__init__(
            ModelMeta(
                component="thermal",
                family="analytic",
                parameters=[
                    ParameterInfo("kT", "keV", 1.0, 4.0, 2.0),
                    ParameterInfo("velocity", "km/s", -5000.0, 5000.0, 0.0),
                ],
                energy_edges=e,
                response_id="test",
            )
        )
        self.register_buffer("ec", torch.tensor(0.5 * (e[1:] + e[:-1]), dtype=torch.float32))
        self.nan_above = nan_above

    def _spectrum(self, theta: torch.Tensor) -> torch.Tensor:
        kT, v = theta[:, :1], theta[:, 1:2]
        cont = torch.exp(-self.ec / kT)
        cont = cont / cont.sum(dim=1, keepdim=True)
        centre = 6.7 * (1.0 + v / C_KMS)
        width = 0.06 + 0.02 * kT
        line = torch.exp(-0.5 * ((self.ec - centre) / width) ** 2)
        line = line / line.sum(dim=1, keepdim=True)
        s = 0.5 * cont + 0.5 * line
        if self.nan_above is not None:  # a model that breaks down in part of its box (divergence test)
            s = torch.where(kT > self.nan_above, torch.full_like(s, float("nan")), s)
        return s


class PowerLawModel(SpectralModel):
    """Unit-sum power law E^-index."""

    def __init__(self, e: np.ndarray) -> None:
        super().__init__(
            ModelMeta(
                component="powerlaw",
                family="analytic",
                parameters=[ParameterInfo("index", "", 1.0, 4.0, 2.5)],
                energy_edges=e,
                response_id="test",
            )
        )
        self.register_buffer("ec", torch.tensor(0.5 * (e[1:] + e[:-1]), dtype=torch.float32))

    def _spectrum(self, theta: torch.Tensor) -> torch.Tensor:
        s = self.ec ** (-theta[:, :1])
        return s / s.sum(dim=1, keepdim=True)


def smooth_field(ny: int, nx: int, lo: float, hi: float, phase: float) -> np.ndarray:
    y, x = np.mgrid[0:ny, 0:nx] / max(ny, nx)
    f = 0.5 + 0.5 * np.sin(2.2 * x + phase) * np.cos(1.7 * y - phase)
    return lo + (hi - lo) * f


def make_cube(
    ny: int = 16, nx: int = 16, n_e: int = 40, counts: float = 300.0, seed: int = 0, with_powerlaw: bool = True
):
    """A Poisson cube from smooth truth maps: returns (cube, truth dict, models)."""
    e = edges(n_e)
    th = LineModel(e)
    pl = PowerLawModel(e)
    truth = {
        "thermal kT": smooth_field(ny, nx, 1.5, 3.5, 0.3),
        "thermal velocity": smooth_field(ny, nx, -3000, 3000, 1.1),
        "thermal amplitude": np.full((ny, nx), counts * (0.6 if with_powerlaw else 1.0)),
    }
    theta = np.stack([truth["thermal kT"].ravel(), truth["thermal velocity"].ravel()], 1)
    with torch.no_grad():
        mu = (
            truth["thermal amplitude"].ravel()[:, None]
            * th.spectrum(torch.tensor(theta, dtype=torch.float32)).double().numpy()
        )
        if with_powerlaw:
            truth["powerlaw index"] = smooth_field(ny, nx, 1.8, 3.2, 2.0)
            truth["powerlaw amplitude"] = np.full((ny, nx), counts * 0.4)
            mu = (
                mu
                + truth["powerlaw amplitude"].ravel()[:, None]
                * pl.spectrum(torch.tensor(truth["powerlaw index"].ravel()[:, None], dtype=torch.float32))
                .double()
                .numpy()
            )
    rng = np.random.default_rng(seed)
    counts_arr = rng.poisson(mu).T.reshape(n_e, ny, nx).astype(np.float32)
    cube = HyperCube(counts_arr, e, name="analytic")
    models = {"thermal": th, "powerlaw": pl}
    return cube, truth, models, mu.T.reshape(n_e, ny, nx)

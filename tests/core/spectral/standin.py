"""A small synthetic stand-in for the physics simulator: lines + continuum folded by a Gaussian.

Used only by the unit tests of the model machinery so they do not depend on the physics module;
it has the same shape of problem (375 channels, 3-8.48 keV, Doppler-shifted lines, power law).
"""

from __future__ import annotations

import numpy as np

from napari_sushi.core.spectral.base import ModelMeta, ParameterInfo

C_KMS = 299792.458
EDGES = np.linspace(3.0, 8.48, 376)  # 375 channels of 14.6 eV
CENTERS = 0.5 * (EDGES[:-1] + EDGES[1:])
_FINE = np.linspace(2.5, 9.0, 2601)
_SIG = 0.055 * np.sqrt(CENTERS / 6.0)
_KERNEL = np.exp(-0.5 * ((CENTERS[:, None] - _FINE[None, :]) / _SIG[:, None]) ** 2)
_KERNEL *= np.gradient(_FINE)[None, :] / (np.sqrt(2 * np.pi) * _SIG[:, None])
_AREA = 400 * np.exp(-0.5 * ((_FINE - 4.0) / 3.0) ** 2)
_LINES = np.array([[3.14, 0.6, 2.0], [3.89, 0.5, 2.5], [6.70, 3.0, 5.0], [6.97, 1.5, 8.0]])


def thermal(theta: np.ndarray) -> np.ndarray:
    """Folded thermal stand-in; theta columns: kT (keV), velocity (km/s)."""
    kT, v = np.asarray(theta, float).T
    E = _FINE[None, :]
    cont = np.exp(-E / kT[:, None]) * E**-0.3 / np.sqrt(kT[:, None])
    shift = 1.0 - v[:, None] / C_KMS
    lines = np.zeros_like(cont)
    for e0, amp, t0 in _LINES:
        emis = amp * np.exp(-t0 / kT) * kT**-0.5
        lines += emis[:, None] * np.exp(-0.5 * ((E - e0 * shift) / 0.004) ** 2) / (0.004 * 2.5066)
    return ((cont + lines) * _AREA) @ _KERNEL.T


def powerlaw(theta: np.ndarray) -> np.ndarray:
    """Folded power-law stand-in; theta column: photon index."""
    g = np.asarray(theta, float)[:, 0]
    return (_FINE[None, :] ** -g[:, None] * _AREA) @ _KERNEL.T


def meta(component: str) -> ModelMeta:
    if component == "thermal":
        params = [ParameterInfo("kT", "keV", 0.5, 5.0, 2.0), ParameterInfo("velocity", "km/s", -6000, 6000, 0.0)]
    else:
        params = [ParameterInfo("index", "", 1.5, 4.0, 2.5)]
    return ModelMeta(
        component=component,
        family="emulator",
        parameters=params,
        energy_edges=EDGES.copy(),
        channels=np.arange(205, 580),
        response_id="standin-gauss55",
        band=(3.0, 8.48),
    )


def generator(component: str):
    return thermal if component == "thermal" else powerlaw

"""APEC thermal spectra from the neural emulator of the ``nnapec`` package, evaluated by our own code.

APEC (AtomDB's collisional-ionisation-equilibrium plasma model) is what astronomers mean by "the
temperature" of a remnant's plasma, but its atomic tables cannot be fetched here. The PyPI package
``nnapec`` (J. M. Burgess; GPL-2.0-or-later) ships a neural network trained on APEC spectra
(AG89 abundances): inputs (abundance, kT), kT 0.08-64 keV, abundance 0-5 solar; output the
log10 photon flux density on 2000 log-spaced energies 0.01-50 keV (0.43 % spacing, i.e. about
28 eV at 6.7 keV and 1280 km/s per point). The package itself does not import on Python 3.11 (a
dependency fails), so we read only its weight file (HDF5: plain arrays, no code) and evaluate the
network here in torch: 6 dense layers of 512 GELU units and a linear output whose first 2000 values
are the mean log-spectrum (the other 2000 are the network's uncertainty, unused).

What we add, as for the built-in physics (:mod:`thermal`):
- the Doppler shift E_obs = E_rest (1 - v/c), applied exactly to the photon-conserving cumulative
  spectrum (each bin receives the rest-frame photons of [E_lo, E_hi] / (1 - v/c));
- optional Gaussian broadening sigma_v (km/s), a convolution in ln E;
- absorption (:mod:`absorption`) and the instrument response are applied by the caller
  (``Absorption() * Apec()``, then the response fold), as for every model.

Within one emulator point the density is taken as constant, so structure narrower than ~0.43 % of
E (a microcalorimeter's 5 eV) is not resolved: this source suits CCD spectra. Install with
``pip install 'napari-sushi[apec]'`` (pulls ``nnapec`` and ``h5py``), or point
``$NAPARI_SUSHI_APEC_WEIGHTS`` at an ``nn_apec.h5`` file.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from napari_sushi.core.physics.grid import C_KMS, PhysicsError, check_edges, doppler_factor
from napari_sushi.core.physics.rebin import shifted_bins
from napari_sushi.core.physics.thermal import plasma_parameters

WEIGHTS_ENV = "NAPARI_SUSHI_APEC_WEIGHTS"
INSTALL_HINT = "install the APEC extra (pip install 'napari-sushi[apec]') or set $NAPARI_SUSHI_APEC_WEIGHTS"
LICENCE = "nnapec (APEC emulator weights) is GPL-2.0-or-later; it is an optional extra, never bundled"


class ApecUnavailable(PhysicsError):
    """The APEC emulator's weights cannot be found or read (the optional extra is missing)."""


def weights_path() -> Path:
    """Where ``nn_apec.h5`` is: ``$NAPARI_SUSHI_APEC_WEIGHTS``, else inside the installed ``nnapec``.

    The package is located without importing it (its import fails on Python 3.11).
    """
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise ApecUnavailable(f"${WEIGHTS_ENV} = {env!r} is not a file; give the path of nn_apec.h5.")
        return p
    spec = importlib.util.find_spec("nnapec")
    if spec is None or not spec.submodule_search_locations:
        raise ApecUnavailable(f"the APEC emulator (package nnapec) is not installed; {INSTALL_HINT}.")
    for root in spec.submodule_search_locations:
        p = Path(root) / "data" / "nn_apec.h5"
        if p.is_file():
            return p
    raise ApecUnavailable(f"nnapec is installed but its weight file data/nn_apec.h5 is missing; {INSTALL_HINT}.")


def available() -> bool:
    """True when the APEC emulator can be evaluated here (weights found and h5py importable)."""
    try:
        weights_path()
        import h5py  # noqa: F401
    except (ApecUnavailable, ImportError):
        return False
    return True


class ApecEmulator:
    """The nnapec network as plain tensors: ``density(kT, abundance) -> (n, 2000)`` photons/keV."""

    def __init__(self, path: str | os.PathLike) -> None:
        try:
            import h5py
        except ImportError:
            raise ApecUnavailable(f"reading the APEC weights needs h5py; {INSTALL_HINT}.") from None
        self.path = Path(path)
        try:
            with h5py.File(self.path, "r") as f:
                attrs = dict(f.attrs)
                t = f["transformer"]
                names = [str(t.attrs[f"par_{i}"]) for i in range(int(attrs["n_parameters"]))]
                self.energies = np.asarray(t["energies"][()], float)
                shift, scale = (np.asarray(t[k][()], np.float32) for k in ("param_shift", "param_scale"))
                self.param_min = np.asarray(t["param_min"][()], float)
                self.param_max = np.asarray(t["param_max"][()], float)
                v_shift, v_scale = (np.asarray(t[k][()], float) for k in ("value_shift", "value_scale"))
                log10 = bool(t.attrs.get("use_log10", False))
                vfv = bool(t.attrs.get("use_vFv", False))
                sd = f["state_dict"]
                idx = sorted({int(k.split(".")[2]) for k in sd.keys()})
                layers = [
                    (np.asarray(sd[f"layers.layers.{i}.weight"][()]), np.asarray(sd[f"layers.layers.{i}.bias"][()]))
                    for i in idx
                ]
        except (OSError, KeyError, ValueError, IndexError) as exc:
            raise ApecUnavailable(
                f"{self.path} is not a readable nnapec weight file ({exc}); {INSTALL_HINT}."
            ) from None
        n_e = int(attrs.get("n_energies", 0))
        if (
            names != ["abund", "kT"]
            or str(attrs.get("activation_function")) != "gelu"
            or not log10
            or vfv
            or n_e != self.energies.size
            or layers[0][0].shape[1] != 2
            or layers[-1][0].shape[0] not in (n_e, 2 * n_e)
        ):
            raise ApecUnavailable(
                f"{self.path}: unexpected emulator layout (parameters {names}, activation "
                f"{attrs.get('activation_function')}, log10 {log10}); this reader knows nnapec 0.1.x."
            )
        self.n_energies = n_e
        self._shift, self._scale = torch.from_numpy(shift), torch.from_numpy(scale)
        self._layers = [
            (torch.from_numpy(w.astype(np.float32)), torch.from_numpy(b.astype(np.float32))) for w, b in layers
        ]
        self._v_shift = torch.from_numpy(v_shift[:n_e])
        self._v_scale = torch.from_numpy(v_scale[:n_e])
        ln_e = np.log(self.energies)
        half = 0.5 * np.diff(ln_e)
        self.ln_edges = np.concatenate([[ln_e[0] - half[0]], ln_e[:-1] + half, [ln_e[-1] + half[-1]]])
        self.energy_edges = np.exp(self.ln_edges)  # keV, cell edges around the emulator's points
        self.cell_width = np.diff(self.energy_edges)

    @property
    def kt_range(self) -> tuple[float, float]:
        return float(self.param_min[1]), float(self.param_max[1])

    @property
    def abundance_range(self) -> tuple[float, float]:
        return float(self.param_min[0]), float(self.param_max[0])

    @torch.no_grad()
    def density(self, kT: np.ndarray, abundance: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """Photon flux density (n, 2000) [photons/keV, APEC norm 1 up to a constant] at ``energies``."""
        kt = np.asarray(kT, float).ravel()
        ab = np.asarray(abundance, float).ravel()
        lo_k, hi_k = self.kt_range
        if np.any(kt < lo_k * (1 - 1e-6)) or np.any(kt > hi_k * (1 + 1e-6)):
            raise PhysicsError(
                f"APEC kT must lie in {lo_k:.3g}-{hi_k:.3g} keV (the emulator's range); got "
                f"{kt.min():.3g}-{kt.max():.3g}."
            )
        if np.any(ab > self.param_max[0] * (1 + 1e-6)):
            raise PhysicsError(f"APEC abundance must be <= {self.param_max[0]:.3g} solar; got {ab.max():.3g}.")
        ab = np.maximum(ab, self.param_min[0])
        x = torch.from_numpy(np.stack([ab, kt], axis=1).astype(np.float32))
        out = np.empty((x.shape[0], self.n_energies))
        for i0 in range(0, x.shape[0], chunk):
            h = (x[i0 : i0 + chunk] - self._shift) / self._scale
            for k, (w, b) in enumerate(self._layers):
                h = torch.nn.functional.linear(h, w, b)
                if k < len(self._layers) - 1:
                    h = torch.nn.functional.gelu(h)
            mean = h[:, : self.n_energies].double() * self._v_scale + self._v_shift
            out[i0 : i0 + chunk] = torch.pow(10.0, mean).numpy()
        return out


@lru_cache(maxsize=2)
def _emulator(path: str) -> ApecEmulator:
    return ApecEmulator(path)


def emulator() -> ApecEmulator:
    """The APEC emulator, read once per process."""
    return _emulator(str(weights_path()))


def _broaden(cells: np.ndarray, sigma_ln: np.ndarray, step: float) -> np.ndarray:
    """Gaussian smoothing in ln E (per row width ``sigma_ln``) of photons per emulator cell."""
    out = cells.copy()
    for s in np.unique(sigma_ln):
        if s * 4 < step:  # narrower than a quarter of a cell: nothing to resolve
            continue
        rows = sigma_ln == s
        half = int(np.ceil(5 * s / step))
        k = np.exp(-0.5 * (np.arange(-half, half + 1) * step / s) ** 2)
        k /= k.sum()
        padded = np.pad(cells[rows], ((0, 0), (half, half)))
        out[rows] = np.stack([np.convolve(r, k, mode="valid") for r in padded])
    return out


def apec(
    edges: np.ndarray,
    kT: float | np.ndarray,
    velocity: float | np.ndarray = 0.0,
    abundance: float | np.ndarray = 1.0,
    sigma_v: float | np.ndarray = 0.0,
    norm: float | np.ndarray = 1.0,
) -> np.ndarray:
    """Photon flux per bin (n, E) of an APEC plasma on the keV ``edges`` (same parameters as
    :func:`thermal.thermal`; ``norm`` scales the emulator's spectrum for APEC norm 1)."""
    edges = check_edges(edges)
    kt, v, ab, sv, nm = plasma_parameters(kT, velocity, abundance, sigma_v, norm)
    s = doppler_factor(v)
    emu = emulator()
    cells = emu.density(kt, ab) * emu.cell_width  # photons per emulator cell
    step = float(np.mean(np.diff(emu.ln_edges)))
    if np.any(sv > 0):
        cells = _broaden(cells, sv / C_KMS, step)
    return nm[:, None] * shifted_bins(emu.energy_edges, cells, edges, s)

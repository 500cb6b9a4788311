"""A morphology zoo: varied remnant truth maps from a seed, to measure fits on skies they were not tuned on.

The presets' own morphology (:func:`napari_sushi.core.simulate.remnant_maps`) is one shell with rim
filaments, a temperature gradient, one expanding-shell velocity pattern and a smooth index. A fit
whose settings were chosen on it may only suit it. :func:`zoo_maps` draws, from a seed:

- thermal brightness: an elliptical shell of random radius, thickness, centre and orientation (or two
  overlapping shells), knots, radial filaments, an optional jet, all modulated by a multiscale
  log-normal Gaussian random field;
- synchrotron brightness, one of: bipolar rim arcs (SN 1006-like), a central nebula with a jet
  (pulsar wind nebula), thin filaments scattered over the shell, or a diffuse patchy field;
- kT, one of: following the synchrotron fraction, running against it, a gradient with a random field,
  hot centre / cool rim; within the preset's ``kt_range`` (toy: 1-4 keV);
- velocity, one of: an expanding shell (front/back sides), bipolar sectors with sharp edges, a smooth
  gradient; amplitudes 1500-5000 km/s;
- photon index, one of: a gradient, blobs, steepening with radius, constant plus a random field;
  within 2-3.5;
- counts: the brightest pixel's expected counts = ``counts_scale`` x the preset's ``peak_counts``.

Every map is finite and inside the preset's validity boxes, so :func:`simulate_from_maps` takes it.
Deterministic per (seed, shape, counts_scale).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from napari_sushi.core.simulate import Preset, SimulatedRemnant, get_preset, simulate_from_maps

THERMAL_KINDS = ("shell", "double shell")
SYNCHROTRON_KINDS = ("bipolar rims", "nebula and jet", "filaments", "diffuse")
KT_KINDS = ("follows synchrotron", "against synchrotron", "gradient", "hot centre")
VELOCITY_KINDS = ("expanding shell", "bipolar sectors", "gradient")
INDEX_KINDS = ("gradient", "blobs", "radial", "patchy")


@dataclass(frozen=True)
class ZooCase:
    """One zoo cube: the morphology seed, the image size and the counts relative to the preset."""

    seed: int
    counts_scale: float = 1.0
    shape: tuple[int, int] = (64, 64)
    preset: str = "toy"

    @property
    def name(self) -> str:
        return f"zoo{self.seed}-{self.counts_scale:g}x-{self.shape[0]}x{self.shape[1]}"


def _grf(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean unit-std Gaussian random field smoothed on ``sigma`` pixels."""
    from scipy.ndimage import gaussian_filter

    f = gaussian_filter(rng.standard_normal(shape), max(sigma, 0.5), mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)


def _multiscale(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """A sum of random fields on 3 scales with random weights (unit std)."""
    f = cast(np.ndarray, sum(rng.uniform(0.3, 1.0) * _grf(rng, shape, s * scale) for s in (1.5, 4.0, 10.0)))
    return f / (f.std() + 1e-12)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _normalise(m: np.ndarray) -> np.ndarray:
    """m rescaled to 0..1 (a constant map becomes 0.5)."""
    lo, hi = float(m.min()), float(m.max())
    return np.full_like(m, 0.5) if hi - lo < 1e-12 else (m - lo) / (hi - lo)


class _Geometry:
    """Pixel grid, a random centre and an elliptical radius of the remnant."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, int]) -> None:
        ny, nx = shape
        self.shape = shape
        self.size = min(ny, nx)
        self.y, self.x = np.mgrid[0:ny, 0:nx].astype(float)
        self.cy = (ny - 1) / 2.0 + rng.uniform(-0.08, 0.08) * ny
        self.cx = (nx - 1) / 2.0 + rng.uniform(-0.08, 0.08) * nx
        self.radius = rng.uniform(0.28, 0.44) * self.size
        self.axis_ratio = rng.uniform(0.7, 1.0)
        self.rot = rng.uniform(0, np.pi)
        dx, dy = self.x - self.cx, self.y - self.cy
        c, s = np.cos(self.rot), np.sin(self.rot)
        u, v = dx * c + dy * s, (-dx * s + dy * c) / self.axis_ratio
        self.dx, self.dy = dx, dy
        self.r = np.hypot(u, v)  # elliptical radius in pixels
        self.theta = np.arctan2(dy, dx)

    def shell(self, r_in: float, r_out: float, r: np.ndarray | None = None) -> np.ndarray:
        r = self.r if r is None else r
        outer = np.sqrt(np.clip(r_out**2 - r**2, 0.0, None))
        inner = np.sqrt(np.clip(r_in**2 - r**2, 0.0, None))
        return 2.0 * (outer - inner) / max(r_out, 1e-9)

    def blob(self, y0: float, x0: float, width: float) -> np.ndarray:
        return np.exp(-((self.x - x0) ** 2 + (self.y - y0) ** 2) / (2 * width**2))


def _thermal_brightness(rng, g: _Geometry, kind: str) -> np.ndarray:
    R = g.radius
    thick = rng.uniform(0.1, 0.4)
    amp = g.shell((1 - thick) * R, R)
    if kind == "double shell":  # a second, offset shell (two explosions / a blow-out)
        off = rng.uniform(0.3, 0.7) * R
        ang = rng.uniform(0, 2 * np.pi)
        r2 = np.hypot(g.x - g.cx - off * np.cos(ang), g.y - g.cy - off * np.sin(ang))
        R2 = rng.uniform(0.5, 0.8) * R
        amp = amp + rng.uniform(0.5, 1.0) * g.shell((1 - rng.uniform(0.15, 0.4)) * R2, R2, r2)
    amp = amp * (1.0 + rng.uniform(0.0, 0.5) * np.cos(g.theta - rng.uniform(0, 2 * np.pi)))
    for _ in range(int(rng.integers(0, 16))):  # knots
        kr, ka = R * rng.uniform(0.3, 1.0), rng.uniform(0, 2 * np.pi)
        amp = amp + rng.uniform(0.3, 1.5) * g.blob(
            g.cy + kr * np.sin(ka), g.cx + kr * np.cos(ka), rng.uniform(0.015, 0.05) * g.size
        )
    for _ in range(int(rng.integers(0, 4))):  # radial filaments (fingers)
        ang = rng.uniform(0, 2 * np.pi)
        across = np.abs(-g.dx * np.sin(ang) + g.dy * np.cos(ang))
        along = g.dx * np.cos(ang) + g.dy * np.sin(ang)
        amp = amp + rng.uniform(0.3, 0.8) * np.exp(-0.5 * (across / (0.012 * g.size + 0.5)) ** 2) * (
            (along > 0.4 * R) & (along < 1.05 * R)
        )
    if rng.uniform() < 0.3:  # a jet of ejecta breaking out of the shell
        ang = rng.uniform(0, 2 * np.pi)
        across = np.abs(-g.dx * np.sin(ang) + g.dy * np.cos(ang))
        along = g.dx * np.cos(ang) + g.dy * np.sin(ang)
        amp = amp + 0.6 * np.exp(-0.5 * (across / (0.025 * g.size)) ** 2) * ((along > 0.6 * R) & (along < 1.3 * R))
    amp = amp * np.exp(rng.uniform(0.2, 0.6) * _multiscale(rng, g.shape, g.size / 94.0))
    return amp * (g.r < 1.35 * R)


def _synchrotron_brightness(rng, g: _Geometry, kind: str) -> np.ndarray:
    R = g.radius
    if kind == "bipolar rims":
        axis = rng.uniform(0, np.pi)
        r_fil = R * (1.02 + 0.02 * np.sin(3 * g.theta + rng.uniform(0, 2 * np.pi)))
        amp = np.exp(-0.5 * ((g.r - r_fil) / (0.015 * g.size + 0.4)) ** 2) * np.cos(g.theta - axis) ** 6
    elif kind == "nebula and jet":
        amp = g.blob(g.cy, g.cx, rng.uniform(0.05, 0.12) * g.size) * 1.5
        ang = rng.uniform(0, 2 * np.pi)
        across = np.abs(-g.dx * np.sin(ang) + g.dy * np.cos(ang))
        along = g.dx * np.cos(ang) + g.dy * np.sin(ang)
        amp = amp + np.exp(-0.5 * (across / (0.02 * g.size + 0.4)) ** 2) * np.exp(-np.abs(along) / (0.4 * R))
    elif kind == "filaments":
        amp = np.zeros(g.shape)
        for _ in range(int(rng.integers(3, 8))):
            a0 = rng.uniform(0, 2 * np.pi)
            span = rng.uniform(0.3, 1.0)
            rr = R * rng.uniform(0.6, 1.05)
            dtheta = np.angle(np.exp(1j * (g.theta - a0)))
            amp = amp + rng.uniform(0.5, 1.0) * np.exp(-0.5 * ((g.r - rr) / (0.012 * g.size + 0.4)) ** 2) * (
                np.abs(dtheta) < span
            )
    else:  # diffuse, patchy synchrotron over the whole remnant
        amp = np.exp(0.8 * _grf(rng, g.shape, 0.08 * g.size)) * (g.r < 1.1 * R)
    amp = amp + rng.uniform(0.0, 0.08) * g.shell(0.7 * R, R)  # a faint projected shell
    return amp * np.exp(0.25 * _grf(rng, g.shape, 0.03 * g.size))


def _kt_map(rng, g: _Geometry, kind: str, sync_fraction: np.ndarray, lo: float, hi: float) -> np.ndarray:
    noise = 0.5 * _multiscale(rng, g.shape, g.size / 94.0)
    if kind == "follows synchrotron":
        z = 4.0 * (sync_fraction - 0.3) + noise
    elif kind == "against synchrotron":
        z = -4.0 * (sync_fraction - 0.3) + noise
    elif kind == "gradient":
        ang = rng.uniform(0, 2 * np.pi)
        z = 2.0 * (g.dx * np.cos(ang) + g.dy * np.sin(ang)) / g.radius + noise
    else:  # hot centre, cool rim (reverse-shock heated interior)
        z = 3.0 * (0.6 - g.r / g.radius) + noise
    return lo + (hi - lo) * _sigmoid(z)


def _velocity_map(rng, g: _Geometry, kind: str) -> np.ndarray:
    vmax = rng.uniform(1500.0, 5000.0)
    R = g.radius
    depth = np.sqrt(np.clip(1.0 - (g.r / R) ** 2, 0.0, None))
    if kind == "expanding shell":  # one side of the shell dominates each half of the remnant
        ang = rng.uniform(0, 2 * np.pi)
        side = np.tanh((g.dx * np.cos(ang) + g.dy * np.sin(ang)) / (0.08 * R))
        v = vmax * depth * side
    elif kind == "bipolar sectors":  # two opposite sectors with sharp edges, receding and approaching
        ang = rng.uniform(0, 2 * np.pi)
        half = rng.uniform(0.3, 0.8)
        d = np.angle(np.exp(1j * (g.theta - ang)))
        v = vmax * ((np.abs(d) < half).astype(float) - (np.abs(np.angle(np.exp(1j * (d - np.pi)))) < half))
        v = v * (g.r < 1.3 * R)
    else:  # smooth gradient across the field
        ang = rng.uniform(0, 2 * np.pi)
        v = vmax * np.tanh((g.dx * np.cos(ang) + g.dy * np.sin(ang)) / R)
    v = v + 200.0 * _grf(rng, g.shape, 0.05 * g.size)
    return np.clip(v, -5000.0, 5000.0)


def _index_map(rng, g: _Geometry, kind: str) -> np.ndarray:
    lo, hi = 2.0, 3.5
    if kind == "gradient":
        ang = rng.uniform(0, 2 * np.pi)
        z = 1.5 * (g.dx * np.cos(ang) + g.dy * np.sin(ang)) / g.radius
    elif kind == "blobs":
        z = np.full(g.shape, -1.0)
        for _ in range(int(rng.integers(2, 6))):
            kr, ka = g.radius * rng.uniform(0, 1.0), rng.uniform(0, 2 * np.pi)
            z = z + rng.choice([-2.0, 2.5]) * g.blob(
                g.cy + kr * np.sin(ka), g.cx + kr * np.cos(ka), rng.uniform(0.06, 0.15) * g.size
            )
    elif kind == "radial":  # steepening away from the centre (synchrotron cooling)
        z = 3.0 * (g.r / g.radius - 0.5)
    else:
        z = rng.uniform(-1.0, 1.0) + 0.8 * _grf(rng, g.shape, 0.1 * g.size)
    return lo + (hi - lo) * _sigmoid(z + 0.3 * _grf(rng, g.shape, 0.06 * g.size))


def zoo_maps(
    seed: int, shape: tuple[int, int] = (64, 64), counts_scale: float = 1.0, preset: str | Preset = "toy"
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Truth maps of one zoo remnant and the kinds drawn (a dict naming each map's morphology).

    The brightest pixel holds ``counts_scale x preset.peak_counts`` expected counts; the synchrotron
    share of the total counts is drawn between 15 % and 45 %.
    """
    pre = get_preset(preset)
    rng = np.random.default_rng([int(seed), 20261201])
    ny, nx = shape
    g = _Geometry(rng, (int(ny), int(nx)))
    kinds = {
        "thermal": THERMAL_KINDS[int(rng.integers(len(THERMAL_KINDS)))],
        "synchrotron": SYNCHROTRON_KINDS[int(rng.integers(len(SYNCHROTRON_KINDS)))],
        "kT": KT_KINDS[int(rng.integers(len(KT_KINDS)))],
        "velocity": VELOCITY_KINDS[int(rng.integers(len(VELOCITY_KINDS)))],
        "index": INDEX_KINDS[int(rng.integers(len(INDEX_KINDS)))],
    }
    th = _thermal_brightness(rng, g, kinds["thermal"])
    pl = _synchrotron_brightness(rng, g, kinds["synchrotron"])
    share = rng.uniform(0.15, 0.45)
    th = th / th.sum() * (1 - share)
    pl = pl / pl.sum() * share
    frac = pl / np.maximum(th + pl, 1e-300)
    frac = np.where(th + pl > 1e-6 * (th + pl).max(), frac, 0.0)
    from scipy.ndimage import gaussian_filter

    frac = gaussian_filter(frac, 0.03 * g.size)  # plasma conditions vary more smoothly than brightness
    k_lo, k_hi = pre.kt_range
    kt = _kt_map(rng, g, kinds["kT"], frac, k_lo, k_hi)
    vel = _velocity_map(rng, g, kinds["velocity"])
    idx = _index_map(rng, g, kinds["index"])
    norm = counts_scale * pre.peak_counts / (th + pl).max()
    th_amp, pl_amp = th * norm, pl * norm
    tiny = 1e-6 * max(th_amp.max(), pl_amp.max())
    maps = {
        "thermal amplitude": np.where(th_amp > tiny, th_amp, 0.0),
        "thermal kT": kt,
        "thermal velocity": vel,
        "powerlaw amplitude": np.where(pl_amp > tiny, pl_amp, 0.0),
        "powerlaw index": idx,
    }
    return maps, kinds


def simulate_zoo(case: ZooCase) -> tuple[SimulatedRemnant, dict[str, str]]:
    """The Poisson cube of a zoo case (noise drawn from a generator of the case's seed) and its kinds."""
    maps, kinds = zoo_maps(case.seed, case.shape, case.counts_scale, case.preset)
    noise_seed = np.random.default_rng([int(case.seed), int(round(case.counts_scale * 1000)), 7])
    sim = simulate_from_maps(case.preset, maps, noise_seed, name=case.name)
    return sim, kinds


def zoo_cases(
    n_seeds: int = 6, scales: tuple[float, ...] = (1.0, 0.1), extra: int = 2, shape: tuple[int, int] = (64, 64)
) -> list[ZooCase]:
    """The benchmark's cases: seeds 0..n_seeds-1 at every scale of ``scales``, plus ``extra`` more
    seeds each at 3x and 0.3x the toy's counts."""
    cases = [ZooCase(s, c, shape) for c in scales for s in range(n_seeds)]
    for i in range(extra):
        cases += [ZooCase(n_seeds + i, 3.0, shape), ZooCase(n_seeds + extra + i, 0.3, shape)]
    return cases


__all__ = ["ZooCase", "simulate_zoo", "zoo_cases", "zoo_maps"]

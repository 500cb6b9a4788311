"""Energy grids and parameter arrays shared by the emission models (validation in one place).

Every model is evaluated on bin *edges* in keV and returns the photon flux integrated over each bin,
shape (n, E) for n parameter sets, so narrow lines are conserved whatever the bin width.
"""

from __future__ import annotations

import numpy as np

C_KMS = 299_792.458  # speed of light, km/s
AMU_KEV = 931_494.10242  # atomic mass unit, keV / c^2
K_PER_KEV = 1.160_451_812e7  # kelvin per keV (1 keV / k_B)


class PhysicsError(ValueError):
    """Bad input to an emission model (message says which value and what is allowed)."""


def check_edges(edges: np.ndarray) -> np.ndarray:
    """Return ``edges`` as a float array after checking they form a valid energy grid (keV)."""
    e = np.asarray(edges, dtype=float).ravel()
    if e.size < 2:
        raise PhysicsError(f"an energy grid needs at least 2 edges (1 bin); got {e.size}.")
    if not np.all(np.isfinite(e)):
        raise PhysicsError("energy grid edges must be finite numbers (keV).")
    if not np.all(np.diff(e) > 0):
        bad = int(np.argmin(np.diff(e)))
        raise PhysicsError(
            f"energy grid edges must be strictly increasing; edge {bad + 1} ({e[bad + 1]:g} keV) is not "
            f"larger than edge {bad} ({e[bad]:g} keV). Sort the grid and remove duplicates."
        )
    if e[0] <= 0:
        raise PhysicsError(f"energy grid must start above 0 keV; got a first edge of {e[0]:g} keV.")
    return e


def as_param(
    value: float | np.ndarray,
    name: str,
    n: int | None = None,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
) -> np.ndarray:
    """A parameter as a 1-D float array (length ``n`` when given), checked against [low, high]."""
    a = np.atleast_1d(np.asarray(value, dtype=float))
    if a.ndim != 1:
        raise PhysicsError(f"parameter {name!r} must be a scalar or a 1-D array; got shape {a.shape}.")
    if n is not None and a.size not in (1, n):
        raise PhysicsError(f"parameter {name!r} has {a.size} values; expected 1 or {n} (one per parameter set).")
    if not np.all(np.isfinite(a)):
        raise PhysicsError(f"parameter {name!r} contains NaN or infinite values.")
    if low is not None:
        bad = a < low if low_inclusive else a <= low
        if bad.any():
            op = ">=" if low_inclusive else ">"
            raise PhysicsError(f"parameter {name!r} must be {op} {low:g}; got {a[bad][0]:g}.")
    if high is not None and (a > high).any():
        raise PhysicsError(f"parameter {name!r} must be <= {high:g}; got {a[a > high][0]:g}.")
    if n is not None and a.size == 1 and n != 1:
        a = np.full(n, a[0])
    return a


def batch_size(*values: float | np.ndarray | None) -> int:
    """Number of parameter sets implied by scalar/1-D parameters (all non-scalars must agree)."""
    sizes = {np.size(v) for v in values if v is not None and np.size(v) != 1}
    if len(sizes) > 1:
        raise PhysicsError(f"parameter arrays have different lengths {sorted(sizes)}; give one value per set.")
    return sizes.pop() if sizes else 1


def simpson_bins(edges: np.ndarray, density) -> np.ndarray:
    """Integrate ``density(E) -> (n, len(E))`` over each bin with Simpson's rule (edges + centres)."""
    mid = 0.5 * (edges[:-1] + edges[1:])
    f_edges = density(edges)
    f_mid = density(mid)
    width = np.diff(edges)
    return width / 6.0 * (f_edges[..., :-1] + 4.0 * f_mid + f_edges[..., 1:])


def doppler_factor(velocity_kms: float | np.ndarray) -> np.ndarray:
    """E_obs / E_rest = 1 - v/c for line-of-sight velocity v (km/s), positive = receding (redshift)."""
    v = np.asarray(velocity_kms, dtype=float)
    if np.any(np.abs(v) >= 0.1 * C_KMS):
        raise PhysicsError(
            f"velocity must be within +-{0.1 * C_KMS:.0f} km/s (the first-order Doppler formula used here); "
            f"got {v[np.abs(v) >= 0.1 * C_KMS].ravel()[0]:g} km/s."
        )
    return 1.0 - v / C_KMS

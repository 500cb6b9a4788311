"""What a fit returns: physical maps with uncertainties, goodness of fit, model cubes, provenance."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from astropy.wcs import WCS


@dataclass
class FitResult:
    """Result of a SUSHI fit or of the per-pixel fit (same fields for both).

    Map keys follow the layer names of the app:
      amplitudes: component -> (Y, X) expected counts of that component in the band
      params:     "<component> <parameter>" -> (Y, X) map in physical units
      sigmas:     same keys as params and amplitudes ("<component> amplitude") -> 1-sigma maps
                  (per-pixel Fisher / Cramer-Rao at the solution; ignores the regulariser)
      units:      key -> unit string (e.g. "keV", "km/s", "counts")
    """

    method: str  # "sushi" or "pixelfit"
    amplitudes: dict[str, np.ndarray]
    params: dict[str, np.ndarray]
    sigmas: dict[str, np.ndarray]
    units: dict[str, str]
    gof: np.ndarray  # (Y, X) C-stat (or chi2) per degree of freedom
    gof_name: str  # "cstat/dof" or "chi2/dof"
    model_cubes: dict[str, np.ndarray]  # component -> (E, Y, X)
    model_total: np.ndarray  # (E, Y, X), background included
    residual: np.ndarray  # (E, Y, X) data - model
    energy_edges: np.ndarray
    cost_history: np.ndarray
    n_iter: int
    stop_reason: str  # "converged", "max_iter", "cancelled", ...
    wall_time: float
    device: str
    provenance: dict = field(default_factory=dict)  # settings, model hashes, package version
    wcs: WCS | None = None
    mask: np.ndarray | None = None

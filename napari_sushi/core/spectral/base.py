"""The one interface every spectral model family implements (emulator, IAE, analytic).

A spectral model maps physical parameters ``theta`` (n, P) to unit-sum spectra (n, C) on the
instrument channels it was built for (already folded through the response), differentiably, so the
solver can take gradients through it. Its identity (content hash) is recorded in every output.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch


class ModelGridError(ValueError):
    """A spectral model and a cube do not share an energy grid (message names both grids)."""


@dataclass(frozen=True)
class ParameterInfo:
    """One physical parameter of a spectral model."""

    name: str  # e.g. "kT", "velocity", "index"
    unit: str  # e.g. "keV", "km/s", "" (dimensionless)
    low: float  # lower end of the validity box
    high: float  # upper end of the validity box
    default: float  # default initial value
    description: str = ""


@dataclass
class ModelMeta:
    """What a model was built for: component, parameters, grid, response and training provenance."""

    component: str  # emission component, e.g. "thermal", "powerlaw"
    family: str  # "emulator", "iae", "analytic", ...
    parameters: list[ParameterInfo]
    energy_edges: np.ndarray  # channel edges in keV, length C + 1
    channels: np.ndarray | None = None  # instrument channel numbers (e.g. PI), length C
    response_id: str = ""  # e.g. "chandra-acis-i-cy0", "gaussian-fwhm130eV", "my.rmf+my.arf" (always a string)
    band: tuple[float, float] | None = None  # analysed band (keV)
    description: str = ""
    extra: dict = field(default_factory=dict)  # training provenance etc. (JSON-serialisable)

    def __post_init__(self) -> None:
        # the identity is hashed from to_json(): keep every field in the form from_json() restores, so a
        # saved model hashes the same when loaded (a response given as (rmf, arf) paths becomes a string)
        if isinstance(self.response_id, (tuple, list)):
            self.response_id = "+".join(Path(str(r)).name for r in self.response_id if r is not None)
        else:
            self.response_id = str(self.response_id or "")
        if self.band is not None:
            self.band = (float(self.band[0]), float(self.band[1]))

    @property
    def n_channels(self) -> int:
        return len(self.energy_edges) - 1

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def to_json(self) -> dict:
        return {
            "component": self.component,
            "family": self.family,
            "parameters": [p.__dict__ for p in self.parameters],
            "energy_edges": [float(e) for e in self.energy_edges],
            "channels": None if self.channels is None else [int(c) for c in self.channels],
            "response_id": self.response_id,
            "band": None if self.band is None else [float(b) for b in self.band],
            "description": self.description,
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, d: dict) -> "ModelMeta":
        return cls(
            component=str(d["component"]),
            family=str(d["family"]),
            parameters=[ParameterInfo(**p) for p in d["parameters"]],
            energy_edges=np.asarray(d["energy_edges"], dtype=float),
            channels=None if d.get("channels") is None else np.asarray(d["channels"], dtype=np.int64),
            response_id=str(d.get("response_id", "")),
            band=None if d.get("band") is None else tuple(d["band"]),
            description=str(d.get("description", "")),
            extra=dict(d.get("extra", {})),
        )


class SpectralModel(torch.nn.Module):
    """Base class: ``spectrum(theta)`` -> unit-sum spectra; subclasses implement ``_spectrum``.

    ``theta`` is (n, P) in physical units in the order of ``meta.parameters``. Values outside the
    validity box are the caller's responsibility (the solver projects into the box).
    """

    def __init__(self, meta: ModelMeta) -> None:
        super().__init__()
        self.meta = meta

    # -- interface ---------------------------------------------------------------------------
    def _spectrum(self, theta: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def config(self) -> dict:  # pragma: no cover - abstract
        """The constructor arguments besides ``meta`` (JSON), saved in the model file's header."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, meta: ModelMeta, config: dict) -> "SpectralModel":  # pragma: no cover - abstract
        """A model of this family with untrained tensors, built from ``meta`` and :meth:`config`."""
        raise NotImplementedError

    # a model that differentiates its own spectra (exactly, cheaper than autodiff) sets this and
    # implements spectrum_and_tangents (the solver's derivative "auto" then uses it)
    exact_tangents = False

    def spectrum_and_tangents(
        self, theta: torch.Tensor, cols: list[int], scales: list[float]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Spectra (n, C) and their derivatives along parameter columns ``cols`` times ``scales`` (q, n, C)."""
        raise NotImplementedError(f"{type(self).__name__} has no derivatives of its own; use autodiff")

    def spectrum(self, theta: torch.Tensor) -> torch.Tensor:
        """Unit-sum spectra (n, C) for parameters theta (n, P); differentiable in theta."""
        if theta.ndim != 2 or theta.shape[1] != self.n_params:
            raise ValueError(
                f"theta must have shape (n, {self.n_params}) for parameters {self.meta.param_names}; "
                f"got {tuple(theta.shape)}"
            )
        return self._spectrum(theta)

    def forward(self, theta: torch.Tensor) -> torch.Tensor:
        return self.spectrum(theta)

    # -- descriptive properties ------------------------------------------------------------
    @property
    def n_params(self) -> int:
        return len(self.meta.parameters)

    @property
    def param_names(self) -> list[str]:
        return self.meta.param_names

    @property
    def param_units(self) -> list[str]:
        return [p.unit for p in self.meta.parameters]

    @property
    def bounds(self) -> np.ndarray:
        """(P, 2) validity box."""
        return np.array([[p.low, p.high] for p in self.meta.parameters], dtype=float)

    @property
    def defaults(self) -> np.ndarray:
        return np.array([p.default for p in self.meta.parameters], dtype=float)

    @property
    def energy_edges(self) -> np.ndarray:
        return self.meta.energy_edges

    @property
    def n_channels(self) -> int:
        return self.meta.n_channels

    @property
    def component(self) -> str:
        return self.meta.component

    def identity(self) -> str:
        """Content hash (sha256, 16 hex digits) of metadata and every tensor: the model's identity."""
        h = hashlib.sha256()
        h.update(json.dumps(self.meta.to_json(), sort_keys=True).encode())
        for name, t in sorted(self.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> str:
        ps = ", ".join(f"{p.name} [{p.unit or '-'}] {p.low:g}..{p.high:g}" for p in self.meta.parameters)
        e = self.meta.energy_edges
        return (
            f"{self.meta.component} ({self.meta.family}); {ps}; {self.n_channels} channels "
            f"{e[0]:.3f}-{e[-1]:.3f} keV; response {self.meta.response_id or '?'}"
        )

"""Composable emission models: additive components, multiplicative absorption, sums and products.

A model maps (energy edges keV, parameters dict name -> scalar or (n,) array) to the photon flux per
bin (n, E) [photons/cm2/s]. ``a + b`` adds two models, ``m * b`` multiplies (e.g.
``Absorption() * (Thermal() + PowerLaw(prefix="pl_"))`` is an absorbed thermal + power law). All
members read the same parameter dict, so a shared parameter (e.g. ``nH``) is given once; ``prefix``
keeps two members' parameters apart (``pl_norm`` vs ``norm``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from napari_sushi.core.physics.absorption import DEFAULT_TABLE, transmission
from napari_sushi.core.physics.grid import PhysicsError, check_edges
from napari_sushi.core.physics.powerlaw import powerlaw
from napari_sushi.core.physics.thermal import thermal

Params = Mapping[str, float | np.ndarray]


class Model:
    """Base class: ``model(edges, params) -> (n, E)``; ``param_names`` and ``defaults`` describe it."""

    param_names: tuple[str, ...] = ()
    defaults: dict[str, float] = {}

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def _get(self, params: Params, name: str) -> float | np.ndarray:
        key = self.prefix + name
        if key in params:
            return params[key]
        if name in self.defaults:
            return self.defaults[name]
        raise PhysicsError(f"{type(self).__name__} needs parameter {key!r}; given {sorted(params)}.")

    def names(self) -> list[str]:
        """Parameter keys this model reads (with its prefix)."""
        return [self.prefix + p for p in self.param_names]

    def __call__(self, edges: np.ndarray, params: Params) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __add__(self, other: "Model") -> "Model":
        return Sum(self, other)

    def __mul__(self, other: "Model") -> "Model":
        return Product(self, other)


class Thermal(Model):
    """Thermal plasma (:func:`thermal.thermal`): kT, velocity, abundance, sigma_v, norm."""

    param_names = ("kT", "velocity", "abundance", "sigma_v", "norm")
    defaults = {"velocity": 0.0, "abundance": 1.0, "sigma_v": 0.0, "norm": 1.0}

    def __call__(self, edges: np.ndarray, params: Params) -> np.ndarray:
        g = lambda k: self._get(params, k)  # noqa: E731
        return thermal(edges, g("kT"), g("velocity"), g("abundance"), g("sigma_v"), g("norm"))


class Apec(Thermal):
    """APEC plasma from the optional emulator (:func:`apec.apec`): the same parameters as :class:`Thermal`."""

    def __call__(self, edges: np.ndarray, params: Params) -> np.ndarray:
        from napari_sushi.core.physics.apec import apec

        g = lambda k: self._get(params, k)  # noqa: E731
        return apec(edges, g("kT"), g("velocity"), g("abundance"), g("sigma_v"), g("norm"))


class PowerLaw(Model):
    """Power law (:func:`powerlaw.powerlaw`): index, norm, optional e_cut (keV; <= 0 or absent: none)."""

    param_names = ("index", "norm", "e_cut")
    defaults = {"norm": 1.0, "e_cut": 0.0}

    def __call__(self, edges: np.ndarray, params: Params) -> np.ndarray:
        ec = np.asarray(self._get(params, "e_cut"), dtype=float)
        if np.any(ec > 0) and not np.all(ec > 0):
            raise PhysicsError("e_cut must be > 0 for every parameter set, or 0 (no cut-off) for all.")
        e_cut = ec if np.all(ec > 0) else None
        return powerlaw(edges, self._get(params, "index"), self._get(params, "norm"), e_cut)


class Absorption(Model):
    """Multiplicative photoelectric absorption exp(-nH sigma(E)), nH in 1e22 cm-2."""

    param_names = ("nH",)

    def __init__(self, table: str = DEFAULT_TABLE, prefix: str = "") -> None:
        super().__init__(prefix)
        self.table = table

    def __call__(self, edges: np.ndarray, params: Params) -> np.ndarray:
        return transmission(edges, self._get(params, "nH"), self.table)


class _Binary(Model):
    """Two models on the same parameters, combined bin by bin with ``_op``."""

    def __init__(self, a: Model, b: Model) -> None:
        super().__init__("")
        self.a, self.b = a, b

    def names(self) -> list[str]:
        return list(dict.fromkeys(self.a.names() + self.b.names()))

    @staticmethod
    def _op(x: np.ndarray, y: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, edges: np.ndarray, params: Params) -> np.ndarray:
        edges = check_edges(edges)
        return self._op(self.a(edges, params), self.b(edges, params))


class Sum(_Binary):
    """a + b on the same parameters."""

    @staticmethod
    def _op(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.add(x, y)


class Product(_Binary):
    """a * b on the same parameters (e.g. absorption times emission)."""

    @staticmethod
    def _op(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.multiply(x, y)

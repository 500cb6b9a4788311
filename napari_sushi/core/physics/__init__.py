"""Approximate X-ray emission physics (no plasma code): continuum, lines, power law, absorption.

All models take energy bin edges in keV and return the photon flux integrated over each bin,
shape (n, E), vectorised over n parameter sets. See each module's docstring for the formulas and
the facts they rest on.
"""

from napari_sushi.core.physics.absorption import ABUNDANCES, cross_section, transmission
from napari_sushi.core.physics.continuum import bremsstrahlung, gaunt_ff
from napari_sushi.core.physics.grid import C_KMS, PhysicsError, check_edges
from napari_sushi.core.physics.lines import LINES, Line
from napari_sushi.core.physics.models import Absorption, Apec, Model, PowerLaw, Product, Sum, Thermal
from napari_sushi.core.physics.powerlaw import powerlaw
from napari_sushi.core.physics.thermal import thermal

__all__ = [
    "ABUNDANCES",
    "C_KMS",
    "LINES",
    "Absorption",
    "Apec",
    "Line",
    "Model",
    "PhysicsError",
    "PowerLaw",
    "Product",
    "Sum",
    "Thermal",
    "bremsstrahlung",
    "check_edges",
    "cross_section",
    "gaunt_ff",
    "powerlaw",
    "thermal",
    "transmission",
]

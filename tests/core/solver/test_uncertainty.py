"""Fisher covariance: unconstrained directions get a large (not zero) variance and do not shrink others."""

import math

import pytest
import torch

from napari_sushi.core.solver.uncertainty import covariance


def test_dead_variable_gets_infinite_variance_and_leaves_others_alone():
    # variables [A1, A2, u2]: the second component has zero amplitude, so its parameter u2 has no information
    F_live = torch.tensor([[4.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    F = torch.zeros(2, 3, 3, dtype=torch.float64)
    F[0, :2, :2] = F_live
    F[1] = torch.tensor([[4.0, 1.0, 0.5], [1.0, 2.0, 0.3], [0.5, 0.3, 1.0]])  # a healthy pixel: u2 has information
    cov = covariance(F)
    assert math.isinf(float(cov[0, 2, 2]))  # a pseudo-inverse would say 0 here
    assert torch.allclose(cov[0, :2, :2], torch.linalg.inv(F_live))
    assert torch.allclose(cov[1], torch.linalg.inv(F[1]))


def test_nearly_flat_direction_is_large_not_dropped():
    # two almost degenerate variables: the pseudo-inverse used to drop the flat direction (tiny variance)
    eps = 1e-13
    F = torch.tensor([[[1.0, 1.0 - eps], [1.0 - eps, 1.0]]], dtype=torch.float64)
    var = torch.diagonal(covariance(F), dim1=1, dim2=2)
    assert bool((var > 1e6).all())


def test_parameters_of_zero_amplitude_components_go_to_box_centre():
    from types import SimpleNamespace

    from napari_sushi.core.solver.pixelfit import unidentified_to_centre

    # free maps: 0 = thermal kT, 1 = velocity linked between both components, 2 = power-law index
    comps = [
        SimpleNamespace(sources=[("free", 0), ("free", 1)]),
        SimpleNamespace(sources=[("free", 1), ("fixed", torch.tensor(0.0)), ("free", 2)]),
    ]
    A = torch.tensor([[5.0, 0.0, 0.0], [0.0, 3.0, 0.0]])  # pixel 0: thermal only, 1: power law only, 2: nothing
    U = torch.full((3, 3), 0.1)
    V = unidentified_to_centre(SimpleNamespace(comps=comps, n_free=3), A, U)
    assert V[:, 0].tolist() == pytest.approx([0.1, 0.1, 0.5])  # index unidentified
    assert V[:, 1].tolist() == pytest.approx([0.5, 0.1, 0.1])  # kT unidentified, linked velocity still used
    assert V[:, 2].tolist() == pytest.approx([0.5, 0.5, 0.5])

"""Regions -> masks from napari Shapes/Labels layers (the geometry and ds9 files: tests/core/test_regions.py)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sushi._napari import regions
from napari_sushi._napari.regions import RegionError, labels_to_mask, shapes_to_mask
from napari_sushi.core import regions as core_regions


class _Layer:
    """The parts of a napari layer the region code reads."""

    def __init__(self, data=None, shape_type=None, scale=(1, 1), translate=(0, 0), name="l"):
        self.data, self.shape_type, self.name = data, shape_type, name
        self.scale, self.translate = np.asarray(scale, float), np.asarray(translate, float)
        n = len(scale)
        self.rotate, self.shear = np.eye(n), np.zeros(n * (n - 1) // 2)

        class _A:
            affine_matrix = np.eye(n + 1)

        self.affine = _A()


def test_shapes_ellipse_and_rectangle_through_scales():
    cube = _Layer(scale=(5.0, 2.0, 2.0), translate=(3.0, 10.0, 10.0))
    # ellipse bounding box in world coords: centre pixel (6, 8), half-axes 3 (y) and 4 (x) pixels
    cy, cx = 10 + 2 * 6, 10 + 2 * 8
    ell = np.array([[cy - 6, cx - 8], [cy + 6, cx - 8], [cy + 6, cx + 8], [cy - 6, cx + 8]], float)
    shapes = _Layer(data=[ell], shape_type=["ellipse"])
    m = shapes_to_mask(shapes, cube, (14, 18))
    yy, xx = np.mgrid[0:14, 0:18]
    np.testing.assert_array_equal(m, ((yy - 6) / 3.0) ** 2 + ((xx - 8) / 4.0) ** 2 <= 1)
    line = _Layer(data=[np.array([[0.0, 0.0], [5.0, 5.0]])], shape_type=["line"])
    with pytest.raises(RegionError, match="no polygon"):
        shapes_to_mask(line, cube, (14, 18))


def test_labels_shape_must_match():
    lab = _Layer(data=np.zeros((5, 5), int), name="lab")
    with pytest.raises(RegionError, match="shape"):
        labels_to_mask(lab, (6, 6))


def test_ds9_reader_and_error_are_the_core_ones():
    # the fit dock reads ds9 files and catches RegionError through this module: same objects as core
    assert regions.ds9_to_mask is core_regions.ds9_to_mask
    assert RegionError is core_regions.RegionError

"""Regions -> masks: ds9 files (image and sky coordinates) and napari Shapes/Labels layers."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS

from napari_sushi._napari.regions import RegionError, ds9_to_mask, labels_to_mask, shapes_to_mask


def _loop_circle(shape, cy, cx, r):
    return np.array([[(y - cy) ** 2 + (x - cx) ** 2 <= r * r for x in range(shape[1])] for y in range(shape[0])])


def test_ds9_image_circle_box_polygon_and_exclusion(tmp_path):
    reg = tmp_path / "r.reg"
    reg.write_text(
        "# Region file format: DS9\nglobal color=green\nimage\n"
        "circle(11,9,4.5)\n-box(11,9,3,3,0)\npolygon(1,1,4,1,4,3,1,3) # text={p}\n"
    )
    m = ds9_to_mask(reg, (20, 24))
    core = _loop_circle((20, 24), 8, 10, 4.5)  # ds9 pixels are 1-based: (11, 9) is 0-based (8, 10)
    core[7:10, 9:12] = False  # the 3x3 box centred there is excluded
    # polygon edges pass through pixel centres (ambiguous); its interior pixels are in
    assert m[1, 1] and m[1, 2] and not m[1, 5]
    np.testing.assert_array_equal(m[4:20], core[4:20])
    assert not m[8, 10] and m[8, 14]


def test_ds9_sky_circle_uses_the_wcs(tmp_path):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [228.5, -59.1]
    w.wcs.crpix = [16.0, 11.0]  # 1-based: pixel (x=15, y=10) 0-based
    w.wcs.cdelt = [-1.0 / 3600, 1.0 / 3600]  # 1 arcsec pixels
    reg = tmp_path / "sky.reg"
    reg.write_text('fk5\ncircle(228.5,-59.1,3.3")\n')
    m = ds9_to_mask(reg, (24, 32), w)
    np.testing.assert_array_equal(m, _loop_circle((24, 32), 10, 15, 3.3))
    with pytest.raises(RegionError, match="no WCS"):
        ds9_to_mask(reg, (24, 32), None)


def test_ds9_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        ds9_to_mask(tmp_path / "missing.reg", (4, 4))
    empty = tmp_path / "e.reg"
    empty.write_text("image\npoint(1,1)\n")
    with pytest.raises(RegionError, match="no circle"):
        ds9_to_mask(empty, (4, 4))


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

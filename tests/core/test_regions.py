"""Regions -> pixel masks in core: polygon/ellipse geometry and ds9 files (image and sky coordinates)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS

from napari_sushi.core.regions import (
    Ds9Region,
    RegionError,
    ds9_region_mask,
    ds9_to_mask,
    ellipse_mask,
    parse_ds9,
    polygon_mask,
)


def _loop_circle(shape, cy, cx, r):
    return np.array([[(y - cy) ** 2 + (x - cx) ** 2 <= r * r for x in range(shape[1])] for y in range(shape[0])])


def test_polygon_and_ellipse_masks_use_pixel_centres():
    square = np.array([[0.5, 0.5], [0.5, 3.5], [3.5, 3.5], [3.5, 0.5]])  # (y, x) around centres 1..3
    m = polygon_mask(square, (5, 6))
    expected = np.zeros((5, 6), bool)
    expected[1:4, 1:4] = True
    np.testing.assert_array_equal(m, expected)
    # ellipse with half-axes 2 along y and 3 along x, centred on pixel (4, 5)
    e = ellipse_mask(np.array([4.0, 5.0]), np.array([2.0, 0.0]), np.array([0.0, 3.0]), (9, 11))
    yy, xx = np.mgrid[0:9, 0:11]
    np.testing.assert_array_equal(e, ((yy - 4) / 2.0) ** 2 + ((xx - 5) / 3.0) ** 2 <= 1)


def test_parse_ds9_reads_systems_signs_comments_and_several_regions_per_line():
    text = (
        "# Region file format: DS9\nglobal color=green\n"
        "image; circle(1,2,3) # text={a}\n"
        "-box(4, 5, 6, 7, 30);point(1,1)\n"
        "fk5\npolygon(1,2,3,4,5,6)\n+ellipse(10,20,1\",2\",45)\n"
    )
    regs = parse_ds9(text)
    assert [(r.kind, r.system, r.exclude) for r in regs] == [
        ("circle", "image", False), ("box", "image", True), ("polygon", "fk5", False), ("ellipse", "fk5", False),
    ]
    assert regs[1].args == ("4", "5", "6", "7", "30")
    assert regs[3].args == ("10", "20", '1"', '2"', "45") and regs[3].sky and not regs[0].sky
    assert parse_ds9("# only a comment\npoint(3,3)\n") == []


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


def test_rotated_box_and_ellipse():
    shape = (21, 21)
    yy, xx = np.mgrid[0:21, 0:21]
    dy, dx = yy - 10.0, xx - 10.0  # centre 0-based (10, 10) = ds9 (11, 11)
    # rotated by 90 degrees a box 11 wide (x) and 3 high (y) stands upright
    box = ds9_region_mask(Ds9Region("box", ("11", "11", "11", "3", "90"), "image", False, "box"), shape)
    np.testing.assert_array_equal(box, (np.abs(dy) < 5.5) & (np.abs(dx) < 1.5))
    # at 30 degrees, counter-clockwise from +x (ds9's convention): compare with the rotated frame
    ang = np.deg2rad(30.0)
    along, across = dx * np.cos(ang) + dy * np.sin(ang), -dx * np.sin(ang) + dy * np.cos(ang)
    box30 = ds9_region_mask(Ds9Region("box", ("11", "11", "11", "3", "30"), "image", False, "box"), shape)
    np.testing.assert_array_equal(box30, (np.abs(along) < 5.5) & (np.abs(across) < 1.5))
    ell = ds9_region_mask(Ds9Region("ellipse", ("11", "11", "6.5", "2.5", "30"), "image", False, "e"), shape)
    np.testing.assert_array_equal(ell, (along / 6.5) ** 2 + (across / 2.5) ** 2 <= 1)
    assert box30.sum() > 20 and ell.sum() > 30


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
    # the same radius in arcmin and degrees
    for size in ("0.055'", f"{3.3 / 3600!r}d"):
        reg.write_text(f"fk5\ncircle(228.5,-59.1,{size})\n")
        np.testing.assert_array_equal(ds9_to_mask(reg, (24, 32), w), m)
    with pytest.raises(RegionError, match="no WCS"):
        ds9_to_mask(reg, (24, 32), None)


def test_ds9_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        ds9_to_mask(tmp_path / "missing.reg", (4, 4))
    empty = tmp_path / "e.reg"
    empty.write_text("image\npoint(1,1)\n")
    with pytest.raises(RegionError, match="no circle"):
        ds9_to_mask(empty, (4, 4))
    bad = tmp_path / "b.reg"
    bad.write_text("image\ncircle(1,2)\n")
    with pytest.raises(RegionError, match=r"b.reg: cannot read region 'circle\(1,2\)'"):
        ds9_to_mask(bad, (4, 4))
    bad.write_text("image\nbox(1,2,x,3)\n")
    with pytest.raises(RegionError, match="cannot read region"):
        ds9_to_mask(bad, (4, 4))

"""Regions -> pixel masks in core: polygon/ellipse geometry and ds9 files through astropy's ``regions``
(image, physical and sky coordinates: fk5 degrees and sexagesimal, galactic; annuli; exclusions)."""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from regions import CircleAnnulusSkyRegion, CircleSkyRegion

from napari_sushi.core.regions import (
    RegionError,
    ds9_region_mask,
    ds9_string_to_mask,
    ds9_to_mask,
    ellipse_mask,
    parse_ds9,
    polygon_mask,
    sky_to_image,
)

MSH = Path("/work/shared/data/chandra_msh1552/msh1552_acis_evt2_filtered.fits")


def _loop_circle(shape, cy, cx, r):
    return np.array([[(y - cy) ** 2 + (x - cx) ** 2 <= r * r for x in range(shape[1])] for y in range(shape[0])])


def _within_one_boundary_pixel(a: np.ndarray, b: np.ndarray) -> None:
    """a and b differ only in pixels next to b's boundary (one pixel of slack), and agree in size."""
    from scipy.ndimage import binary_dilation, binary_erosion

    diff = a ^ b
    boundary = binary_dilation(b) & ~binary_erosion(b)
    assert not (diff & ~boundary).any(), f"{int((diff & ~boundary).sum())} pixels differ away from the edge"
    assert abs(int(a.sum()) - int(b.sum())) <= max(2, 0.15 * b.sum())


# ------------------------------------------------------------------------------------- geometry
def test_polygon_and_ellipse_masks_use_pixel_centres():
    square = np.array([[0.5, 0.5], [0.5, 3.5], [3.5, 3.5], [3.5, 0.5]])  # (y, x) around centres 1..3
    m = polygon_mask(square, (5, 6))
    expected = np.zeros((5, 6), bool)
    expected[1:4, 1:4] = True
    np.testing.assert_array_equal(m, expected)
    e = ellipse_mask(np.array([4.0, 5.0]), np.array([2.0, 0.0]), np.array([0.0, 3.0]), (9, 11))
    yy, xx = np.mgrid[0:9, 0:11]
    np.testing.assert_array_equal(e, ((yy - 4) / 2.0) ** 2 + ((xx - 5) / 3.0) ** 2 <= 1)


# ------------------------------------------------------------------------------------- parsing / image
def test_parse_ds9_reads_systems_signs_comments_and_several_regions_per_line():
    text = (
        "# Region file format: DS9\nglobal color=green\n"
        "image; circle(1,2,3) # text={a}\n"
        "-box(4, 5, 6, 7, 30);annulus(3,3,1,2)\n"
        'fk5\npolygon(1,2,3,4,5,6)\n+ellipse(10,20,1",2",45)\n'
        'circle(15:14:27.0,-59:16:18,30")\n'
    )
    regs = parse_ds9(text)
    assert [(r.kind, r.system, r.exclude) for r in regs] == [
        ("circle", "image", False),
        ("box", "image", True),
        ("annulus", "image", False),
        ("polygon", "fk5", False),
        ("ellipse", "fk5", False),
        ("circle", "fk5", False),
    ]
    assert regs[4].sky and not regs[0].sky
    c = regs[5].region.center
    assert c.ra.deg == pytest.approx(15 * (15 + 14 / 60 + 27 / 3600)) and c.dec.deg == pytest.approx(
        -(59 + 16 / 60 + 18 / 3600)
    )
    assert regs[0].region.center.x == 0.0 and regs[0].region.center.y == 1.0  # 1-based in the file
    assert parse_ds9("circle(1,2,3)\n")[0].system == "physical"  # ds9's default system


def test_ds9_image_circle_box_polygon_and_exclusion(tmp_path):
    reg = tmp_path / "r.reg"
    reg.write_text(
        "# Region file format: DS9\nglobal color=green\nimage\n"
        "circle(11,9,4.5)\n-box(11,9,3,3,0)\npolygon(1,1,4,1,4,3,1,3) # text={p}\n"
    )
    m = ds9_to_mask(reg, (20, 24))
    core = _loop_circle((20, 24), 8, 10, 4.5)  # ds9 pixels are 1-based: (11, 9) is 0-based (8, 10)
    core[7:10, 9:12] = False  # the 3x3 box centred there is excluded
    np.testing.assert_array_equal(m[4:20], core[4:20])
    assert m[1, 1] and m[1, 2] and not m[1, 5]
    assert not m[8, 10] and m[8, 14]
    # only excluded regions: everything but them
    only = ds9_string_to_mask("image\n-circle(11,9,4.5)\n", (20, 24))
    np.testing.assert_array_equal(only, ~_loop_circle((20, 24), 8, 10, 4.5))


def test_rotated_box_and_ellipse():
    shape = (21, 21)
    yy, xx = np.mgrid[0:21, 0:21]
    dy, dx = yy - 10.0, xx - 10.0  # centre 0-based (10, 10) = ds9 (11, 11)

    def one(text):
        return ds9_region_mask(parse_ds9("image\n" + text)[0], shape)

    np.testing.assert_array_equal(one("box(11,11,11,3,90)"), (np.abs(dy) < 5.5) & (np.abs(dx) < 1.5))
    ang = np.deg2rad(30.0)  # counter-clockwise from +x (ds9's convention)
    along, across = dx * np.cos(ang) + dy * np.sin(ang), -dx * np.sin(ang) + dy * np.cos(ang)
    box30 = one("box(11,11,11,3,30)")
    ell = one("ellipse(11,11,6.5,2.5,30)")
    inside_box = (np.abs(along) < 5.5) & (np.abs(across) < 1.5)
    _within_one_boundary_pixel(box30, inside_box)
    _within_one_boundary_pixel(ell, (along / 6.5) ** 2 + (across / 2.5) ** 2 <= 1)
    assert box30.sum() > 20 and ell.sum() > 30
    ann = one("annulus(11,11,3.2,5.8)")
    r2 = dx**2 + dy**2
    np.testing.assert_array_equal(ann, (r2 >= 3.2**2) & (r2 <= 5.8**2))


# ------------------------------------------------------------------------------------- sky / physical
def _synthetic(binning=16):
    """Sky-pixel WCS of an event list (Chandra-like, 0.492"/pixel) and the binned cube's WCS + header,
    as bin_events makes them."""
    sky = WCS(naxis=2)
    sky.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    sky.wcs.crval = [228.53, -59.16]
    sky.wcs.crpix = [4096.5, 4096.5]
    sky.wcs.cdelt = [-0.492 / 3600, 0.492 / 3600]
    sky.wcs.radesys = "ICRS"
    sky.wcs.set()
    x0, y0, n = 3300.0, 3400.0, 96
    img = sky.deepcopy()
    img.wcs.crpix = [(4096.5 - x0) / binning + 0.5, (4096.5 - y0) / binning + 0.5]
    img.wcs.cdelt = np.asarray(sky.wcs.cdelt) * binning
    img.wcs.set()
    header = fits.Header({"SPBIN": binning, "FIELDX0": x0, "FIELDY0": y0})
    return sky, img, header, (n, n)


def _msh(binning=16):
    if not MSH.is_file():
        pytest.skip(f"{MSH} not available")
    from napari_sushi.core.io import bin_events
    from napari_sushi.core.io.events import open_event_table

    cube = bin_events(MSH, native=True, binning=binning)
    sky = open_event_table(MSH).wcs
    return sky, cube.wcs.celestial, cube.header, cube.counts.shape[-2:]


@pytest.mark.parametrize("which", ["synthetic", "msh1552"])
def test_fk5_sexagesimal_galactic_and_physical_circles_select_the_same_pixels(which):
    sky, img, header, shape = _synthetic() if which == "synthetic" else _msh()
    ny, nx = shape
    centre = SkyCoord(*img.all_pix2world(0.45 * nx, 0.55 * ny, 0), unit="deg", frame="icrs")
    radius = 0.12 * min(nx, ny) * abs(img.wcs.cdelt[0]) * 3600 * u.arcsec
    reference = CircleSkyRegion(centre, radius).to_pixel(img).to_mask(mode="center").to_image(shape) > 0
    assert reference.sum() > 50

    c5 = centre.fk5
    ra_s = c5.ra.to_string(unit=u.hourangle, sep=":", precision=4)
    dec_s = c5.dec.to_string(unit=u.deg, sep=":", precision=3, alwayssign=True)
    g = centre.galactic
    px, py = sky.all_world2pix(centre.ra.deg, centre.dec.deg, 1)  # physical = 1-based sky pixels
    r_phys = radius.to_value(u.deg) / abs(sky.wcs.cdelt[0])
    texts = {
        "fk5 degrees": f'fk5\ncircle({c5.ra.deg:.7f},{c5.dec.deg:.7f},{radius.value:.4f}")',
        "fk5 sexagesimal": f"fk5\ncircle({ra_s},{dec_s},{radius.value / 60:.5f}')",
        "icrs": f"icrs;circle({centre.ra.deg:.7f},{centre.dec.deg:.7f},{radius.to_value(u.deg):.7f}d)",
        "galactic": f'galactic\ncircle({g.l.deg:.7f},{g.b.deg:.7f},{radius.value:.4f}")',
        "physical": f"physical\ncircle({float(px):.3f},{float(py):.3f},{r_phys:.3f})",
    }
    for name, text in texts.items():
        m = ds9_string_to_mask(text, shape, img, header)
        _within_one_boundary_pixel(m, reference)
        assert m.sum() > 0.8 * reference.sum(), name
    # without the binning record a physical region is refused, never read as cube pixels
    with pytest.raises(RegionError, match="physical coordinates.*no\\s+sky-pixel binning"):
        ds9_string_to_mask(texts["physical"], shape, img, None)


def test_sky_annulus_and_exclude(tmp_path):
    sky, img, header, shape = _synthetic()
    centre = SkyCoord(*img.all_pix2world(48, 48, 0), unit="deg")
    ann_ref = CircleAnnulusSkyRegion(centre, 40 * u.arcsec, 80 * u.arcsec).to_pixel(img)
    ann_ref = ann_ref.to_mask(mode="center").to_image(shape) > 0
    reg = tmp_path / "a.reg"
    reg.write_text(f'# Region file format: DS9\nfk5\nannulus({centre.ra.deg},{centre.dec.deg},40",80")\n')
    ann = ds9_to_mask(reg, shape, img, header)
    _within_one_boundary_pixel(ann, ann_ref)
    assert not ann[48, 48] and ann.sum() > 50
    # a circle minus a smaller one is the annulus too
    reg.write_text(
        f'fk5\ncircle({centre.ra.deg},{centre.dec.deg},80")\n-circle({centre.ra.deg},{centre.dec.deg},40")\n'
    )
    _within_one_boundary_pixel(ds9_to_mask(reg, shape, img, header), ann_ref)


def test_sky_to_image_from_field_keywords_and_ltm_ltv():
    # image pixel i covers sky pixels x0 + i b .. x0 + (i+1) b: centre of pixel 0 is at x0 + b / 2
    sx, ox, sy, oy = sky_to_image(fits.Header({"SPBIN": 4, "FIELDX0": 100.0, "FIELDY0": 200.0}))
    assert sx * (102.0 - 1) + ox == pytest.approx(0.0) and sy * (206.0 - 1) + oy == pytest.approx(1.0)
    # the same binning as IRAF keywords (image = LTM * physical + LTV, 1-based): LTM 1/4, LTV 0.5 - x0/4
    sx2, ox2, sy2, oy2 = sky_to_image(fits.Header({"LTM1_1": 0.25, "LTM2_2": 0.25, "LTV1": 0.5 - 25, "LTV2": 0.5 - 50}))
    assert (sx2, ox2, sy2, oy2) == pytest.approx((sx, ox, sy, oy))
    assert sky_to_image(fits.Header()) is None and sky_to_image(None) is None


def test_sky_circle_uses_the_wcs(tmp_path):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [228.5, -59.1]
    w.wcs.crpix = [16.0, 11.0]  # 1-based: pixel (x=15, y=10) 0-based
    w.wcs.cdelt = [-1.0 / 3600, 1.0 / 3600]
    reg = tmp_path / "sky.reg"
    reg.write_text('fk5\ncircle(228.5,-59.1,3.3")\n')
    m = ds9_to_mask(reg, (24, 32), w)
    _within_one_boundary_pixel(m, _loop_circle((24, 32), 10, 15, 3.3))
    for size in ("0.055'", f"{3.3 / 3600!r}d"):
        reg.write_text(f"fk5\ncircle(228.5,-59.1,{size})\n")
        np.testing.assert_array_equal(ds9_to_mask(reg, (24, 32), w), m)
    with pytest.raises(RegionError, match="no WCS"):
        ds9_to_mask(reg, (24, 32), None)


# ------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "text, match",
    [
        ("image\npoint(1,1)\n", "point, which encloses no area"),
        ("image\ntext(3,3) # text={a}\n", "text, which encloses no area"),
        ("image\nline(1,1,3,3)\n", "line, which encloses no area"),
        ("image\nruler(1,1,2,2)\n", r"cannot use region 'ruler\(1,1,2,2\)' \(ruler\)"),
        ("linear\ncircle(1,1,1)\n", "'linear' coordinates"),
        ("amplifier\ncircle(1,1,1)\n", "'amplifier' coordinates"),
        ("foo\ncircle(1,1,1)\n", "not a ds9 region or coordinate system"),
        ("image\ncircle(1,2)\n", r"cannot read region 'circle\(1,2\)'"),
        ("image\nbox(1,2,x,3)\n", "cannot read region"),
        ("image\ncircle(500,500,3)\n", "outside"),
        ("# only a comment\n", "no circle"),
        ("physical\ncircle(10,10,3)\n", "physical coordinates"),
    ],
)
def test_unsupported_or_empty_is_a_clear_error(text, match):
    with pytest.raises(RegionError, match=match):
        ds9_string_to_mask(text, (8, 8))


def test_ds9_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        ds9_to_mask(tmp_path / "missing.reg", (4, 4))
    bad = tmp_path / "b.reg"
    bad.write_text("image\ncircle(1,2)\n")
    with pytest.raises(RegionError, match=r"b.reg: cannot read region 'circle\(1,2\)'"):
        ds9_to_mask(bad, (4, 4))
    bad.write_text('fk5\ncircle(228.5,-59.1,3")\n')
    with pytest.raises(RegionError, match="b.reg uses sky coordinates"):
        ds9_to_mask(bad, (4, 4))

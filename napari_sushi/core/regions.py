"""Regions as pixel masks on a cube's image: polygon and ellipse geometry, and ds9 region files.

Geometry only: a pixel belongs to a region when its centre lies inside. Pixel coordinates are
0-based (y, x) of the cube's image plane. ds9 files are read by astropy's ``regions`` package in
two steps: :func:`parse_ds9` turns the text into :class:`Ds9Region` records (the ``regions``
object, coordinate system, include or exclude) and :func:`ds9_region_mask` turns one record into a
mask (``to_mask(mode='center')``): sky regions (fk5, icrs, galactic, ...) through the cube's
celestial WCS, physical ones (for Chandra: sky pixels) through the binning the cube records
(LTM/LTV or FIELDX0/FIELDY0/SPBIN keywords). Anything that cannot become a mask is a
:class:`RegionError`, never a silently empty mask. The napari side (Shapes and Labels layers)
lives in ``napari_sushi._napari.regions`` and uses the geometry here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.path import Path as MplPath


class RegionError(ValueError):
    """A region cannot be turned into a mask on the cube (message says what to do)."""


# ------------------------------------------------------------------------------------- geometry
def pixel_centres(shape: tuple[int, int]) -> np.ndarray:
    """(Y*X, 2) array of the (y, x) centres of the pixels of an image of ``shape``, row-major."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return np.column_stack([yy.ravel(), xx.ravel()]).astype(float)


def polygon_mask(vertices_yx: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean (Y, X) mask of the pixels whose centre lies inside the polygon ``vertices_yx`` (n, 2)."""
    path = MplPath(np.asarray(vertices_yx, dtype=float))
    return path.contains_points(pixel_centres(shape)).reshape(shape)


def ellipse_mask(centre: np.ndarray, u: np.ndarray, w: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels inside the ellipse centre + a*u + b*w with a^2 + b^2 <= 1 (u, w: orthogonal half-axes, y x)."""
    d = pixel_centres(shape) - np.asarray(centre, dtype=float)
    u, w = np.asarray(u, dtype=float), np.asarray(w, dtype=float)
    a = d @ u / max(float(u @ u), 1e-12)
    b = d @ w / max(float(w @ w), 1e-12)
    return (a * a + b * b <= 1.0).reshape(shape)


# ------------------------------------------------------------------------------------- ds9
# ds9 files are parsed by astropy's ``regions`` package, one region at a time so that each mask
# knows its coordinate system. ``regions`` has no ``physical`` system: those regions are parsed as
# ``image`` ones and moved through the cube's sky-pixel -> image transform (see sky_to_image).
_SKY_SYSTEMS = {"fk5", "icrs", "j2000", "fk4", "b1950", "galactic", "ecliptic"}
_PIXEL_SYSTEMS = {"image", "physical"}
_OTHER_SYSTEMS = {"linear", "amplifier", "detector", "wcs", "wcsa"}  # ds9 knows them; we cannot map them
_MASK_SHAPES = {
    "CirclePixelRegion": "circle",
    "EllipsePixelRegion": "ellipse",
    "RectanglePixelRegion": "box",
    "PolygonPixelRegion": "polygon",
    "CircleAnnulusPixelRegion": "annulus",
    "EllipseAnnulusPixelRegion": "elliptical annulus",
    "RectangleAnnulusPixelRegion": "box annulus",
}
_SHAPE_WORD = re.compile(r"^\s*([+-]?)\s*([A-Za-z]+)\s*\(")
_SUPPORTED = "circle, ellipse, box, polygon and annulus"


@dataclass(frozen=True)
class Ds9Region:
    """One shape of a ds9 region file, parsed by ``regions``.

    region:  the ``regions`` object (a PixelRegion for image/physical, a SkyRegion otherwise;
             image/physical pixel coordinates already 0-based as ``regions`` makes them).
    system:  the coordinate system in force where it was written ("physical" until a file says,
             as in ds9).
    exclude: True for a '-' (excluded) region.
    text:    the region as written, for messages.
    """

    region: Any
    system: str
    exclude: bool
    text: str

    @property
    def kind(self) -> str:
        return _MASK_SHAPES.get(type(self.region).__name__.replace("Sky", "Pixel"), type(self.region).__name__)

    @property
    def sky(self) -> bool:
        """Whether the coordinates are on the sky (need the cube's WCS) rather than pixels."""
        return self.system not in _PIXEL_SYSTEMS


def _split_ds9(text: str) -> list[tuple[str, str, str]]:
    """(system, region text with its comment, global line) for every shape of ds9 text, in order."""
    system, glob = "physical", ""
    out: list[tuple[str, str, str]] = []
    for raw in text.splitlines():
        code, _, comment = raw.partition("#")
        code = code.strip()
        if not code:
            continue
        if code.lower().startswith("global"):
            glob = code
            continue
        parts = [p.strip() for p in code.split(";") if p.strip()]
        for i, part in enumerate(parts):
            low = part.lower()
            if low in _SKY_SYSTEMS | _PIXEL_SYSTEMS | _OTHER_SYSTEMS or re.fullmatch(r"wcs[a-z]", low):
                system = low
                continue
            if _SHAPE_WORD.match(part) is None:
                raise RegionError(f"cannot read '{part}': not a ds9 region or coordinate system.")
            out.append((system, part + (f" #{comment}" if comment and i == len(parts) - 1 else ""), glob))
    return out


def parse_ds9(text: str, source: str = "region text") -> list[Ds9Region]:
    """The regions of ds9 region-file text, in file order, parsed by astropy's ``regions``.

    Comments (``#``) are skipped; several regions may share a line separated by ``;``; a
    coordinate-system line applies to what follows (ds9's default is ``physical``). Any shape or
    system that cannot become a mask raises :class:`RegionError` naming it (never skipped).
    """
    import warnings

    from regions import Regions

    out: list[Ds9Region] = []
    try:
        split = _split_ds9(text)
    except RegionError as exc:
        raise RegionError(f"{source}: {exc}") from None
    for system, part, glob in split:
        m = _SHAPE_WORD.match(part)
        shape_word = m.group(2).lower() if m else part
        written = part.split(" #", 1)[0]
        if system not in _SKY_SYSTEMS | _PIXEL_SYSTEMS:
            raise RegionError(
                f"{source}: region '{written}' is in '{system}' coordinates, which cannot be mapped onto the "
                "cube; save it in fk5, icrs, galactic, image or physical coordinates."
            )
        frame = "image" if system == "physical" else system
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                regs = Regions.parse(f"{glob}\n{frame}\n{part}\n", format="ds9")
            except Exception as exc:  # regions raises TypeError/ValueError/... on bad arguments
                raise RegionError(f"{source}: cannot read region '{written}': {exc}") from exc
        if len(regs) != 1:
            why = "; ".join(str(w.message) for w in caught) or "nothing was read"
            raise RegionError(
                f"{source}: cannot use region '{written}' ({shape_word}): {why}. Only {_SUPPORTED} regions "
                "make a mask; replace it by one of these."
            )
        reg = regs[0]
        pix_name = type(reg).__name__.replace("Sky", "Pixel")
        if pix_name not in _MASK_SHAPES:
            raise RegionError(
                f"{source}: region '{written}' is a {shape_word}, which encloses no area; only {_SUPPORTED} "
                "regions make a mask. Replace it by one of these."
            )
        out.append(Ds9Region(reg, system, int(reg.meta.get("include", 1)) == 0, written))
    return out


def sky_to_image(header: Any) -> tuple[float, float, float, float] | None:
    """(sx, ox, sy, oy) with image x (0-based) = sx * (sky x - 1) + ox, and the same for y, where sky
    x - 1 is a 0-based physical (sky-pixel) coordinate; None when the header records no binning.

    From LTM1_1/LTM2_2/LTV1/LTV2 (IRAF's physical -> image: image = LTM * physical + LTV, 1-based)
    or from this project's FIELDX0/FIELDY0/SPBIN (image pixel i covers sky pixels
    FIELDX0 + i*SPBIN .. FIELDX0 + (i+1)*SPBIN, see ``bin_events``).
    """
    if header is None:
        return None
    get = header.get
    if get("LTM1_1") is not None or get("LTV1") is not None:
        if float(get("LTM1_2", 0.0) or 0.0) != 0.0 or float(get("LTM2_1", 0.0) or 0.0) != 0.0:
            raise RegionError(
                "the cube's LTM keywords rotate the physical frame; physical regions cannot be mapped. Save "
                "the region in fk5 or image coordinates."
            )
        m1, m2 = float(get("LTM1_1", 1.0)), float(get("LTM2_2", 1.0))
        v1, v2 = float(get("LTV1", 0.0)), float(get("LTV2", 0.0))
        # image0 = m * phys + v - 1 and phys = p0 + 1
        return m1, m1 + v1 - 1.0, m2, m2 + v2 - 1.0
    if get("SPBIN") is not None and get("FIELDX0") is not None and get("FIELDY0") is not None:
        b = float(get("SPBIN"))
        if not b > 0:
            raise RegionError(f"the cube's SPBIN keyword is {b}; physical regions need a positive binning.")
        x0, y0 = float(get("FIELDX0")), float(get("FIELDY0"))
        # image0 centre of pixel i is sky x0 + (i + 0.5) b, so i = (phys - x0) / b - 0.5, phys = p0 + 1
        return 1.0 / b, (1.0 - x0) / b - 0.5, 1.0 / b, (1.0 - y0) / b - 0.5
    return None


def _move_pixel_region(region: Any, t: tuple[float, float, float, float]) -> Any:
    """A copy of a pixel region moved by the affine ``t`` of :func:`sky_to_image` (sizes scaled)."""
    import copy

    from regions import PixCoord

    sx, ox, sy, oy = t
    if not np.isclose(sx, sy):
        raise RegionError(
            "the cube's physical -> image scale differs in x and y; save the region in image coordinates."
        )
    out = copy.deepcopy(region)
    for name in region._params:
        value = getattr(region, name)
        if isinstance(value, PixCoord):
            setattr(out, name, PixCoord(np.asarray(value.x) * sx + ox, np.asarray(value.y) * sy + oy))
        elif name == "angle":
            continue
        else:
            setattr(out, name, value * sx)
    return out


def _pixel_region(region: Ds9Region, wcs: Any, header: Any, source: str) -> Any:
    if region.system == "image":
        return region.region
    if region.system == "physical":
        t = sky_to_image(header)
        if t is None:
            raise RegionError(
                f"{source}: region '{region.text}' is in physical coordinates but the cube records no "
                "sky-pixel binning (no LTM/LTV or FIELDX0/FIELDY0/SPBIN keywords); save the region in fk5 "
                "or image coordinates, or bin the event list with napari-sushi."
            )
        return _move_pixel_region(region.region, t)
    if wcs is None:
        raise RegionError(
            f"{source} uses sky coordinates ({region.system}) but the cube has no WCS; save the region in "
            "image coordinates."
        )
    w = wcs.celestial if getattr(wcs, "naxis", 2) > 2 else wcs
    try:
        return region.region.to_pixel(w)
    except Exception as exc:
        raise RegionError(f"{source}: cannot place region '{region.text}' on the cube's WCS: {exc}") from exc


def ds9_region_mask(
    region: Ds9Region, shape: tuple[int, int], wcs: Any = None, source: str = "region file", header: Any = None
) -> np.ndarray:
    """Boolean (Y, X) mask of the pixels whose centre is inside ``region`` (whether it is excluded is
    the caller's business). Sky regions need the cube's celestial ``wcs``; physical ones the cube's
    ``header`` (its sky-pixel binning); ``source`` names the file in messages."""
    pix = _pixel_region(region, wcs, header, source)
    try:
        image = pix.to_mask(mode="center").to_image(tuple(shape))
    except Exception as exc:
        raise RegionError(f"{source}: cannot rasterise region '{region.text}': {exc}") from exc
    if image is None:
        return np.zeros(shape, dtype=bool)
    return np.asarray(image) > 0


def regions_to_mask(
    regions: list[Ds9Region],
    shape: tuple[int, int],
    wcs: Any = None,
    header: Any = None,
    source: str = "region file",
) -> np.ndarray:
    """Union of the included regions minus the excluded ones (everything minus them when all are
    excluded); an empty result is a :class:`RegionError`."""
    if not regions:
        raise RegionError(f"{source} has no {_SUPPORTED} region.")
    include = np.zeros(shape, dtype=bool)
    exclude = np.zeros(shape, dtype=bool)
    for region in regions:
        m = ds9_region_mask(region, shape, wcs, source=source, header=header)
        if region.exclude:
            exclude |= m
        else:
            include |= m
    if not any(not r.exclude for r in regions):
        include[:] = True
    mask = include & ~exclude
    if not mask.any():
        raise RegionError(
            f"{source}: the regions select no pixel of the {shape[0]}x{shape[1]} image (they fall outside "
            "it, or the excluded regions cover the included ones); check the coordinates and system."
        )
    return mask


def ds9_string_to_mask(text: str, shape: tuple[int, int], wcs: Any = None, header: Any = None) -> np.ndarray:
    """Boolean (Y, X) mask from ds9 region text (see :func:`ds9_to_mask`)."""
    return regions_to_mask(parse_ds9(text), shape, wcs, header, source="region text")


def ds9_to_mask(path: str | Path, shape: tuple[int, int], wcs: Any = None, header: Any = None) -> np.ndarray:
    """Boolean (Y, X) mask from a ds9 region file: circle, ellipse, box, polygon, annulus (and
    elliptical/box annuli) in fk5/icrs/galactic/ecliptic (degrees or sexagesimal, sizes in
    degrees, ' or "), image or physical coordinates; '-' shapes are removed from the union of the
    others. Sky regions go through the cube's ``wcs``; physical ones through the sky-pixel binning
    in the cube's ``header`` (LTM/LTV or FIELDX0/FIELDY0/SPBIN)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"region file {path} not found; pick an existing ds9 .reg file.")
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise RegionError(f"cannot read region file {path}: {exc}") from exc
    return regions_to_mask(parse_ds9(text, source=path.name), shape, wcs, header, source=path.name)

"""Regions as pixel masks on a cube's image: polygon and ellipse geometry, and ds9 region files.

Geometry only: a pixel belongs to a region when its centre lies inside. Pixel coordinates are
0-based (y, x) of the cube's image plane. ds9 files are read in two steps: :func:`parse_ds9` turns
the text into :class:`Ds9Region` records (shape, arguments as written, coordinate system, include or
exclude) and :func:`ds9_region_mask` turns one record into a mask through the cube's WCS. The
napari side (Shapes and Labels layers) lives in ``napari_sushi._napari.regions`` and uses the
geometry here.
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
_SHAPE_RE = re.compile(r"^\s*([+-]?)\s*(circle|box|ellipse|polygon)\s*\(([^)]*)\)", re.IGNORECASE)
_COORD_SYSTEMS = {"image", "physical", "fk5", "icrs", "j2000", "fk4", "galactic", "ecliptic", "linear"}
_PIXEL_SYSTEMS = {"image", "physical", "linear"}


@dataclass(frozen=True)
class Ds9Region:
    """One shape of a ds9 region file, before any coordinate conversion.

    kind:    "circle", "box", "ellipse" or "polygon".
    args:    its arguments as written (units such as '"' or 'd' kept: their meaning depends on
             ``system``).
    system:  the coordinate system in force where it was written ("physical" until a file says).
    exclude: True for a '-' (excluded) region.
    text:    the region as written, for messages.
    """

    kind: str
    args: tuple[str, ...]
    system: str
    exclude: bool
    text: str

    @property
    def sky(self) -> bool:
        """Whether the coordinates are on the sky (need the cube's WCS) rather than image pixels."""
        return self.system not in _PIXEL_SYSTEMS


def parse_ds9(text: str) -> list[Ds9Region]:
    """The circle, box, ellipse and polygon regions of ds9 region-file text, in file order.

    Comments (``#``) and shapes other than these four (points, text, ...) are skipped; several
    regions may share a line separated by ``;``; a coordinate-system line applies to what follows.
    """
    system = "physical"
    out: list[Ds9Region] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        for part in line.split(";"):
            part = part.strip()
            if part.lower() in _COORD_SYSTEMS:
                system = part.lower()
                continue
            m = _SHAPE_RE.match(part)
            if not m:
                continue
            args = tuple(a.strip() for a in m.group(3).split(","))
            out.append(Ds9Region(m.group(2).lower(), args, system, m.group(1) == "-", part))
    return out


def _to_deg_or_pix(token: str) -> float:
    return float(token.rstrip('"\'dr'))


def _size(token: str, pix_per_deg: float | None) -> float:
    """A ds9 size in pixels: plain numbers are pixels in image coords, or degrees/'/" in sky coords."""
    t = token.strip()
    if pix_per_deg is None:
        return float(t.rstrip("idp"))
    if t.endswith('"'):
        return float(t[:-1]) / 3600.0 * pix_per_deg
    if t.endswith("'"):
        return float(t[:-1]) / 60.0 * pix_per_deg
    return float(t.rstrip("d")) * pix_per_deg


def ds9_region_mask(
    region: Ds9Region, shape: tuple[int, int], wcs: Any = None, source: str = "region file"
) -> np.ndarray:
    """Boolean (Y, X) mask of the pixels inside ``region`` (whether it is excluded is the caller's
    business). Sky regions need the cube's celestial ``wcs``; ``source`` names the file in messages."""
    if region.sky and wcs is None:
        raise RegionError(
            f"{source} uses sky coordinates ({region.system}) but the cube has no WCS; save the "
            "region in image coordinates."
        )
    pix_per_deg = None
    if region.sky:
        from astropy.wcs.utils import proj_plane_pixel_scales

        pix_per_deg = 1.0 / float(np.mean(proj_plane_pixel_scales(wcs.celestial)))

    def to_pix(xs: tuple[str, ...], ys: tuple[str, ...]) -> np.ndarray:
        x = np.array([_to_deg_or_pix(v) for v in xs])
        y = np.array([_to_deg_or_pix(v) for v in ys])
        if region.sky:
            px, py = wcs.celestial.all_world2pix(x, y, 0)
            return np.column_stack([py, px])
        return np.column_stack([y - 1.0, x - 1.0])  # ds9 image pixels are 1-based

    kind, args = region.kind, region.args
    try:
        if kind == "polygon":
            return polygon_mask(to_pix(args[0::2], args[1::2]), shape)
        c = to_pix((args[0],), (args[1],))[0]
        if kind == "circle":
            r = _size(args[2], pix_per_deg)
            return ellipse_mask(c, np.array([r, 0.0]), np.array([0.0, r]), shape)
        w_, h_ = _size(args[2], pix_per_deg), _size(args[3], pix_per_deg)
        ang = np.deg2rad(float(args[4])) if len(args) > 4 else 0.0
        ux = np.array([np.sin(ang), np.cos(ang)])  # along x rotated by ang (y, x)
        uy = np.array([np.cos(ang), -np.sin(ang)])
        if kind == "ellipse":
            return ellipse_mask(c, ux * w_, uy * h_, shape)
        hx, hy = ux * w_ / 2.0, uy * h_ / 2.0
        return polygon_mask(np.array([c - hx - hy, c + hx - hy, c + hx + hy, c - hx + hy]), shape)
    except (IndexError, ValueError) as exc:
        raise RegionError(f"{source}: cannot read region '{region.text}': {exc}") from exc


def ds9_to_mask(path: str | Path, shape: tuple[int, int], wcs: Any = None) -> np.ndarray:
    """Boolean (Y, X) mask from a ds9 region file (circle, box, ellipse, polygon; image or sky
    coordinates in degrees; '-' shapes are excluded from the union of the others)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"region file {path} not found; pick an existing ds9 .reg file.")
    regions = parse_ds9(path.read_text(errors="replace"))
    if not regions:
        raise RegionError(f"{path.name} has no circle, box, ellipse or polygon region.")
    include = np.zeros(shape, dtype=bool)
    exclude = np.zeros(shape, dtype=bool)
    for region in regions:
        m = ds9_region_mask(region, shape, wcs, source=path.name)
        if region.exclude:
            exclude |= m
        else:
            include |= m
    return include & ~exclude

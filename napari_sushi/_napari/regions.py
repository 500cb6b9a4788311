"""Regions drawn in napari (Shapes, Labels) or read from ds9 region files, as pixel masks on a cube.

Used by the fit dock for the fit mask and the background region. Geometry only: a pixel belongs to
a region when its centre lies inside. Shapes are mapped to the cube's pixel grid through both
layers' scale and translate (rotated/sheared layers are not supported and are refused).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.path import Path as MplPath


class RegionError(ValueError):
    """A region cannot be turned into a mask on the cube (message says what to do)."""


def _check_axis_aligned(layer: Any) -> None:
    affine = np.asarray(layer.affine.affine_matrix, dtype=float)
    rotate = np.asarray(layer.rotate, dtype=float)
    tilted = not np.allclose(rotate, np.eye(rotate.shape[0])) or not np.allclose(np.asarray(layer.shear), 0)
    if not np.allclose(affine, np.eye(affine.shape[0])) or tilted:
        raise RegionError(
            f"layer '{layer.name}' is rotated or has an affine transform; masks are only computed for "
            "layers placed by scale and translate. Reset its transform and try again."
        )


def _pixel_centres(shape: tuple[int, int]) -> np.ndarray:
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return np.column_stack([yy.ravel(), xx.ravel()]).astype(float)


def _polygon_mask(vertices_yx: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    path = MplPath(np.asarray(vertices_yx, dtype=float))
    return path.contains_points(_pixel_centres(shape)).reshape(shape)


def _ellipse_mask(centre: np.ndarray, u: np.ndarray, w: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels inside the ellipse centre + a*u + b*w with a^2 + b^2 <= 1 (u, w orthogonal half-axes)."""
    d = _pixel_centres(shape) - centre
    a = d @ u / max(float(u @ u), 1e-12)
    b = d @ w / max(float(w @ w), 1e-12)
    return (a * a + b * b <= 1.0).reshape(shape)


def shapes_to_mask(shapes_layer: Any, cube_layer: Any, shape: tuple[int, int]) -> np.ndarray:
    """Boolean (Y, X) mask of the cube pixels inside any polygon/rectangle/ellipse of a Shapes layer."""
    _check_axis_aligned(shapes_layer)
    _check_axis_aligned(cube_layer)
    s_scale = np.asarray(shapes_layer.scale, dtype=float)[-2:]
    s_trans = np.asarray(shapes_layer.translate, dtype=float)[-2:]
    c_scale = np.asarray(cube_layer.scale, dtype=float)[-2:]
    c_trans = np.asarray(cube_layer.translate, dtype=float)[-2:]
    mask = np.zeros(shape, dtype=bool)
    n_used = 0
    for verts, kind in zip(shapes_layer.data, shapes_layer.shape_type):
        v = np.asarray(verts, dtype=float)[:, -2:]
        v = ((v * s_scale + s_trans) - c_trans) / c_scale  # cube pixel coordinates (y, x)
        if kind in ("polygon", "rectangle"):
            mask |= _polygon_mask(v, shape)
        elif kind == "ellipse":
            centre = v.mean(axis=0)
            mask |= _ellipse_mask(centre, (v[1] - v[0]) / 2.0, (v[3] - v[0]) / 2.0, shape)
        else:
            continue  # lines and paths enclose no area
        n_used += 1
    if n_used == 0:
        raise RegionError(
            f"Shapes layer '{shapes_layer.name}' has no polygon, rectangle or ellipse; draw one around "
            "the region you mean."
        )
    return mask


def labels_to_mask(labels_layer: Any, shape: tuple[int, int]) -> np.ndarray:
    """Boolean (Y, X) mask of the non-zero labels (a 3-D labels layer is collapsed over energy)."""
    data = np.asarray(labels_layer.data)
    if data.ndim == 3:
        data = data.max(axis=0)
    if data.shape != tuple(shape):
        raise RegionError(
            f"Labels layer '{labels_layer.name}' has shape {data.shape} but the cube's image is "
            f"{tuple(shape)}; paint the mask on a labels layer made for this cube."
        )
    return data != 0


# ------------------------------------------------------------------------------------- ds9
_SHAPE_RE = re.compile(r"^\s*([+-]?)\s*(circle|box|ellipse|polygon)\s*\(([^)]*)\)", re.IGNORECASE)
_COORD_SYSTEMS = {"image", "physical", "fk5", "icrs", "j2000", "fk4", "galactic", "ecliptic", "linear"}


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


def ds9_to_mask(path: str | Path, shape: tuple[int, int], wcs: Any = None) -> np.ndarray:
    """Boolean (Y, X) mask from a ds9 region file (circle, box, ellipse, polygon; image or sky
    coordinates in degrees; '-' shapes are excluded)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"region file {path} not found; pick an existing ds9 .reg file.")
    system = "physical"
    include = np.zeros(shape, dtype=bool)
    exclude = np.zeros(shape, dtype=bool)
    n = 0
    for raw in path.read_text(errors="replace").splitlines():
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
            sign, kind, args = m.group(1), m.group(2).lower(), [a.strip() for a in m.group(3).split(",")]
            sky = system not in {"image", "physical", "linear"}
            if sky and wcs is None:
                raise RegionError(
                    f"{path.name} uses sky coordinates ({system}) but the cube has no WCS; save the "
                    "region in image coordinates."
                )
            pix_per_deg = None
            if sky:
                from astropy.wcs.utils import proj_plane_pixel_scales

                pix_per_deg = 1.0 / float(np.mean(proj_plane_pixel_scales(wcs.celestial)))

            def to_pix(xs: list[str], ys: list[str]) -> np.ndarray:
                x = np.array([_to_deg_or_pix(v) for v in xs])
                y = np.array([_to_deg_or_pix(v) for v in ys])
                if sky:
                    px, py = wcs.celestial.all_world2pix(x, y, 0)
                    return np.column_stack([py, px])
                return np.column_stack([y - 1.0, x - 1.0])  # ds9 image pixels are 1-based

            try:
                if kind == "polygon":
                    c = to_pix(args[0::2], args[1::2])
                    m_ = _polygon_mask(c, shape)
                else:
                    c = to_pix([args[0]], [args[1]])[0]
                    if kind == "circle":
                        r = _size(args[2], pix_per_deg)
                        m_ = _ellipse_mask(c, np.array([r, 0.0]), np.array([0.0, r]), shape)
                    else:
                        w_, h_ = _size(args[2], pix_per_deg), _size(args[3], pix_per_deg)
                        ang = np.deg2rad(float(args[4])) if len(args) > 4 else 0.0
                        ux = np.array([np.sin(ang), np.cos(ang)])  # along x rotated by ang (y, x)
                        uy = np.array([np.cos(ang), -np.sin(ang)])
                        if kind == "ellipse":
                            m_ = _ellipse_mask(c, ux * w_, uy * h_, shape)
                        else:
                            hx, hy = ux * w_ / 2.0, uy * h_ / 2.0
                            corners = np.array([c - hx - hy, c + hx - hy, c + hx + hy, c - hx + hy])
                            m_ = _polygon_mask(corners, shape)
            except (IndexError, ValueError) as exc:
                raise RegionError(f"{path.name}: cannot read region '{part}': {exc}") from exc
            if sign == "-":
                exclude |= m_
            else:
                include |= m_
            n += 1
    if n == 0:
        raise RegionError(f"{path.name} has no circle, box, ellipse or polygon region.")
    return include & ~exclude

"""Regions drawn in napari (Shapes, Labels) as pixel masks on a cube; ds9 files via core.

Used by the fit dock for the fit mask and the background region. Geometry only: a pixel belongs to
a region when its centre lies inside (the geometry and the ds9 reader are in
:mod:`napari_sushi.core.regions`; this module only reads napari layers). Shapes are mapped to the
cube's pixel grid through both layers' scale and translate (rotated/sheared layers are not
supported and are refused).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_sushi.core.regions import RegionError, ds9_to_mask, ellipse_mask, polygon_mask

__all__ = ["RegionError", "ds9_to_mask", "labels_to_mask", "shapes_to_mask"]


def _check_axis_aligned(layer: Any) -> None:
    affine = np.asarray(layer.affine.affine_matrix, dtype=float)
    rotate = np.asarray(layer.rotate, dtype=float)
    tilted = not np.allclose(rotate, np.eye(rotate.shape[0])) or not np.allclose(np.asarray(layer.shear), 0)
    if not np.allclose(affine, np.eye(affine.shape[0])) or tilted:
        raise RegionError(
            f"layer '{layer.name}' is rotated or has an affine transform; masks are only computed for "
            "layers placed by scale and translate. Reset its transform and try again."
        )


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
            mask |= polygon_mask(v, shape)
        elif kind == "ellipse":
            centre = v.mean(axis=0)
            mask |= ellipse_mask(centre, (v[1] - v[0]) / 2.0, (v[3] - v[0]) / 2.0, shape)
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

"""Tiled SUSHI fits: the plumbing is exact on one tile, and tiles sharing the field's start and weights
give the whole-cube maps on a larger field."""

import numpy as np
import pytest

from napari_sushi.core.solver.problem import FitSetupError
from napari_sushi.core.solver.settings import Component, FitSettings
from napari_sushi.core.solver.sushi import fit
from napari_sushi.core.cube import HyperCube
from napari_sushi.core.solver.tiled import _near_borders, default_halo, tiled_fit

from .analytic import make_cube


def _comps(models):
    return [Component("thermal", models["thermal"]), Component("powerlaw", models["powerlaw"])]


@pytest.fixture(scope="module")
def field():
    """A 32x32 cube (coarse start at 4x4 binning runs: 8x8 binned pixels)."""
    return make_cube(32, 32, 40, counts=300.0, seed=3)


def test_one_tile_is_the_whole_cube_fit_bit_for_bit(field):
    cube, _, models, _ = field
    st = FitSettings(max_iter=40)
    whole = fit(cube, _comps(models), st)
    tiled = tiled_fit(cube, _comps(models), st, tile=32, halo=8)
    for k, v in whole.params.items():
        np.testing.assert_array_equal(tiled.params[k], v, err_msg=k)
    for k, v in whole.amplitudes.items():
        np.testing.assert_array_equal(tiled.amplitudes[k], v, err_msg=k)
    np.testing.assert_array_equal(tiled.model_total, whole.model_total)
    assert tiled.provenance["tiling"]["n_tiles"] == 1
    assert len(tiled.provenance["tiling"]["rounds"]) == 1


@pytest.mark.slow
def test_four_tiles_match_the_whole_cube_fit(field):
    cube, truth, models, _ = field
    st = FitSettings(max_iter=80)
    whole = fit(cube, _comps(models), st)
    tiled = tiled_fit(cube, _comps(models), st, tile=16, halo=8, rounds=3)
    tiling = tiled.provenance["tiling"]
    assert tiling["n_tiles"] == 4 and 2 <= len(tiling["rounds"]) <= 3
    for key in ("thermal kT", "thermal velocity", "powerlaw index"):
        rmse_whole = np.sqrt(np.mean((whole.params[key] - truth[key]) ** 2))
        rmse_tiled = np.sqrt(np.mean((tiled.params[key] - truth[key]) ** 2))
        diff = np.sqrt(np.mean((tiled.params[key] - whole.params[key]) ** 2))
        assert abs(rmse_tiled - rmse_whole) <= 0.05 * rmse_whole, (key, rmse_whole, rmse_tiled)
        assert diff < 0.2 * rmse_whole, (key, diff, rmse_whole)
        assert key in tiling["seams"]
    # the stitched model and residual cubes are the tiles' and add up to the counts
    np.testing.assert_allclose(tiled.model_total + tiled.residual, cube.counts, atol=1e-3)
    assert np.isfinite(tiled.gof).all()


def test_tiles_cover_the_image_once_and_borders_are_inner_ones():
    regions = HyperCube(np.zeros((2, 20, 30)), np.arange(3.0)).tile_regions(8, 3)
    cover = np.zeros((20, 30), int)
    for core, inner, ext in regions:
        cover[core] += 1
        assert (ext[0].start <= core[0].start) and (ext[0].stop >= core[0].stop)
        assert inner[0].start == core[0].start - ext[0].start
    assert (cover == 1).all()
    near = _near_borders((20, 30), [r[0] for r in regions], 1)
    assert near[:, 7:9].all() and near[7:9, :].all() and not near[:6, :6].any() and not near[:, -5:-1][10:14].any()
    assert default_halo(3) == 16 and default_halo(2) == 8


def test_tiled_fit_refuses_what_it_cannot_share(field):
    cube, _, models, _ = field
    with pytest.raises(FitSetupError, match="bin the cube first"):
        tiled_fit(cube, _comps(models), FitSettings(binning=2), tile=16)
    with pytest.raises(FitSetupError, match="size >= 8"):
        tiled_fit(cube, _comps(models), FitSettings(), tile=4)
    comps = _comps(models)
    comps[0].init["kT"] = np.full((8, 8), 2.0)  # a binned map: not the cube's image
    with pytest.raises(FitSetupError, match="a tiled fit takes maps of the cube's image"):
        tiled_fit(cube, comps, FitSettings(start="default"), tile=16)


def test_tiles_share_one_resolved_anchor(field):
    """Without a coarse start "auto" is resolved once on the field (not per tile) and recorded."""
    cube, _, models, _ = field
    st = FitSettings(max_iter=4, coarse_init=1)
    tiled = tiled_fit(cube, _comps(models), st, tile=16, halo=4, rounds=1)
    anchor = tiled.provenance["settings"]["anchor"]
    assert isinstance(anchor, dict) and set(anchor.values()) <= {"start", "coarse"}
    assert set(anchor) == {"thermal.kT", "thermal.velocity", "powerlaw.index", "thermal.share"}
    with pytest.raises(FitSetupError, match="anchor must be one of"):
        tiled_fit(cube, _comps(models), FitSettings(anchor="level"), tile=16)

"""Pixel spectrum against the fit: data, components, residuals, grouping, parameters, pixel mapping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_sushi.core.io.maps import read_maps_fits
from napari_sushi.core.pixel_spectrum import (
    PixelError,
    deviance_residuals,
    fit_pixel_at,
    group_min_counts,
    pixel_spectrum,
)
from napari_sushi.core.solver.pixelfit import pixelfit
from napari_sushi.core.solver.settings import Component, FitSettings
from napari_sushi.core.solver.sushi import fit

from solver.analytic import make_cube  # tests/core/solver (a package; tests/core is on sys.path)


@pytest.fixture(scope="module")
def case():
    """A 8x8x40 two-component cube fitted by SUSHI on 2x2 bins within a sub-band, with a mask."""
    torch.set_num_threads(1)
    cube, truth, models, _ = make_cube(8, 8, 40, counts=200.0, seed=3)
    mask = np.ones((8, 8), bool)
    mask[:2, :2] = False  # the first 2x2 block (binned pixel (0, 0)) is not fitted
    comps = [Component("thermal", models["thermal"]), Component("powerlaw", models["powerlaw"])]
    settings = FitSettings(kmad=1.0, max_iter=15, binning=2, mask=mask, coarse_init=1)
    res = fit(cube, comps, settings)
    return cube, res


@pytest.fixture(scope="module")
def pix_case():
    torch.set_num_threads(1)
    cube, _, models, _ = make_cube(4, 4, 40, counts=200.0, seed=5)
    comps = [Component("thermal", models["thermal"]), Component("powerlaw", models["powerlaw"])]
    return cube, pixelfit(cube, comps, FitSettings(max_iter=15, n_starts=1))


def test_data_are_the_cubes_binned_counts(case):
    cube, res = case
    sp = pixel_spectrum(res, 2, 1, cube_counts=cube.counts, binning=2)
    expected = cube.counts[:, 4:6, 2:4].sum(axis=(1, 2))
    np.testing.assert_allclose(sp.counts, expected)
    np.testing.assert_allclose(sp.energy_edges, cube.energy_edges)
    # without the cube, the counts come from model + residual and agree
    sp2 = pixel_spectrum(res, 2, 1)
    np.testing.assert_allclose(sp2.counts, expected, atol=1e-3)
    # the wrong cube (another seed) is refused, not silently plotted
    other = make_cube(8, 8, 40, counts=200.0, seed=4)[0]
    with pytest.raises(ValueError, match="not the one this run fitted"):
        pixel_spectrum(res, 2, 1, cube_counts=other.counts, binning=2)


def test_band_offset_selects_the_fitted_channels(case):
    cube, res = case
    # a cube with 3 extra channels in front: the fit's channels start at offset 3
    padded = np.concatenate([np.full((3,) + cube.shape[1:], 7.0, np.float32), cube.counts])
    sp = pixel_spectrum(res, 3, 3, cube_counts=padded, binning=2, band_offset=3)
    np.testing.assert_allclose(sp.counts, cube.counts[:, 6:8, 6:8].sum(axis=(1, 2)))


def test_components_sum_to_total_and_match_amplitudes(case):
    _, res = case
    sp = pixel_spectrum(res, 1, 2)
    assert set(sp.components) == {"thermal", "powerlaw"}
    np.testing.assert_allclose(sum(sp.components.values()), sp.model, rtol=1e-5)
    assert sp.background is None
    np.testing.assert_allclose(sp.components["thermal"].sum(), res.amplitudes["thermal"][1, 2], rtol=1e-4)
    np.testing.assert_allclose(sp.model, res.model_total[:, 1, 2], rtol=1e-6)


def test_residuals_definition_and_cstat(case):
    _, res = case
    sp = pixel_spectrum(res, 3, 0)
    d, m = sp.counts, sp.model
    expected = np.sign(d - m) * np.sqrt(2 * (m - d + np.where(d > 0, d * np.log(np.where(d > 0, d, 1) / m), 0)))
    np.testing.assert_allclose(sp.residuals, expected, rtol=1e-10, atol=1e-12)
    assert np.sum(sp.residuals**2) == pytest.approx(sp.cstat, rel=1e-10)
    np.testing.assert_allclose(sp.with_residual_kind("pearson").residuals, (d - m) / np.sqrt(m), rtol=1e-10)
    # C-stat / dof agrees with the fit's own goodness-of-fit map (3 parameter maps + 2 amplitudes)
    assert sp.dof == 40 - 5
    assert sp.cstat / sp.dof == pytest.approx(sp.gof, rel=2e-3)
    # zero counts: residual is -sqrt(2 m); exact model: 0
    np.testing.assert_allclose(deviance_residuals(np.array([0.0, 4.0]), np.array([2.0, 4.0])), [-2.0, 0.0])


def test_grouping_conserves_counts_and_reaches_minimum(case):
    _, res = case
    sp = pixel_spectrum(res, 2, 2)
    g = sp.grouped(25)
    assert g.counts.size < sp.counts.size
    assert g.counts.sum() == pytest.approx(sp.counts.sum())
    assert g.model.sum() == pytest.approx(sp.model.sum())
    for k in sp.components:
        assert g.components[k].sum() == pytest.approx(sp.components[k].sum())
    assert np.all(g.counts >= 25)
    assert g.energy_edges[0] == sp.energy_edges[0] and g.energy_edges[-1] == sp.energy_edges[-1]
    assert np.all(np.diff(g.energy_edges) > 0) and g.energy_edges.size == g.counts.size + 1
    np.testing.assert_allclose(g.residuals, deviance_residuals(g.counts, g.model))
    assert g.cstat == sp.cstat  # the fit statistic stays the ungrouped one
    # the same grouping through the entry point
    np.testing.assert_allclose(pixel_spectrum(res, 2, 2, min_counts=25).counts, g.counts)


def test_group_min_counts_edge_cases():
    c = np.array([1, 0, 5, 2, 2, 9, 0, 1], float)
    starts = group_min_counts(c, 5)
    sums = np.add.reduceat(c, starts)
    assert sums.sum() == c.sum() and np.all(sums >= 5)
    np.testing.assert_array_equal(starts, [0, 3])  # [1,0,5] [2,2,9] [0,1]: the short last group is merged
    np.testing.assert_array_equal(sums, [6, 14])
    np.testing.assert_array_equal(group_min_counts(c, 0), np.arange(c.size))
    np.testing.assert_array_equal(group_min_counts(c, 1e6), [0])  # one group when the total is short


def test_parameters_with_sigma(case):
    _, res = case
    sp = pixel_spectrum(res, 1, 1)
    by = {p.name: p for p in sp.params}
    assert set(by) == {"thermal amplitude", "powerlaw amplitude", "thermal kT", "thermal velocity", "powerlaw index"}
    assert by["thermal kT"].value == pytest.approx(float(res.params["thermal kT"][1, 1]))
    assert by["thermal kT"].sigma == pytest.approx(float(res.sigmas["thermal kT"][1, 1]))
    assert by["thermal kT"].unit == "keV" and by["thermal kT"].lower is None
    text = sp.summary()
    assert "thermal kT = " in text and "±" in text and "keV" in text and "dof" in text


def test_intervals_of_the_pixel_fit(pix_case):
    _, res = pix_case
    assert res.intervals, "the per-pixel fit reports intervals"
    sp = pixel_spectrum(res, 2, 3)
    kt = next(p for p in sp.params if p.name == "thermal kT")
    lo, hi = res.intervals["thermal kT"]
    assert kt.lower == pytest.approx(float(lo[2, 3])) and kt.upper == pytest.approx(float(hi[2, 3]))
    assert "[" in kt.text()


def test_masked_and_outside_pixels_are_clear_errors(case):
    _, res = case
    with pytest.raises(PixelError, match="not fitted"):
        pixel_spectrum(res, 0, 0)
    with pytest.raises(PixelError, match="outside the fitted image"):
        pixel_spectrum(res, 4, 0)
    with pytest.raises(PixelError, match="outside the fitted image"):
        pixel_spectrum(res, -1, 2)


def test_world_position_to_fitted_pixel():
    # cube pixels of scale 2 at translate 10, binned 2x2: maps of scale 4 centred at 11 (Geometry)
    scale, translate = (4.0, 4.0), (11.0, 11.0)
    # cube pixel (y=5, x=2) is at world (20, 14) -> binned (2, 1)
    assert fit_pixel_at((20.0, 14.0), scale, translate, (4, 4)) == (2, 1)
    # extra leading (energy) coordinate is ignored; borders of the first binned pixel
    assert fit_pixel_at((6.5, 9.1, 12.9), scale, translate) == (0, 0)
    assert fit_pixel_at((13.1, 9.0), scale, translate) == (1, 0)  # binned pixel 0 spans [9, 13)
    assert fit_pixel_at((13.1, 8.9), scale, translate) == (1, -1)
    with pytest.raises(PixelError, match="outside"):
        fit_pixel_at((11.0, 30.0), scale, translate, (4, 4))


def test_exported_maps_fits_with_cubes(case, tmp_path):
    cube, res = case
    path = res.to_fits(tmp_path / "run.fits", include_cubes=True)
    ms = read_maps_fits(path)
    a = pixel_spectrum(ms, 2, 1)
    b = pixel_spectrum(res, 2, 1)
    np.testing.assert_allclose(a.counts, b.counts, atol=1e-3)
    np.testing.assert_allclose(a.model, b.model, rtol=1e-6)
    assert set(a.components) == set(b.components)
    assert {p.name for p in a.params} == {p.name for p in b.params}
    assert a.dof == b.dof and a.gof == pytest.approx(b.gof)
    with pytest.raises(PixelError, match="not fitted"):
        pixel_spectrum(ms, 0, 0)
    no_cubes = read_maps_fits(res.to_fits(tmp_path / "maps.fits"))
    with pytest.raises(ValueError, match="include cubes"):
        pixel_spectrum(no_cubes, 2, 1)


def test_dof_counts_fixed_parameters_out():
    torch.set_num_threads(1)
    cube, _, models, _ = make_cube(4, 4, 40, counts=200.0, seed=6)
    comps = [
        Component("thermal", models["thermal"], fixed={"velocity": 0.0}),
        Component("powerlaw", models["powerlaw"]),
    ]
    res = fit(cube, comps, FitSettings(kmad=1.0, max_iter=8, coarse_init=1))
    sp = pixel_spectrum(res, 1, 2)
    assert sp.dof == 40 - 4  # 2 amplitudes + kT + index
    assert sp.cstat / sp.dof == pytest.approx(sp.gof, rel=2e-3)
    assert "(fixed)" in next(p for p in sp.params if p.name == "thermal velocity").text()


def test_sigma_at_the_box_spread_is_called_unconstrained(case, tmp_path):
    _, res = case
    caps = res.provenance["sigma_caps"]
    assert caps["thermal velocity"] == pytest.approx(10000.0 / np.sqrt(12.0))  # analytic box -5000..5000
    sp = pixel_spectrum(res, 1, 1)
    v = next(p for p in sp.params if p.name == "thermal velocity")
    assert v.unconstrained == (v.sigma >= (1 - 1e-4) * caps["thermal velocity"])
    # force the cap at that pixel (on a copy: the fixture is shared): the text must not quote it as an error bar
    import dataclasses

    res = dataclasses.replace(res, sigmas=dict(res.sigmas))
    res.sigmas["thermal velocity"] = res.sigmas["thermal velocity"].copy()
    res.sigmas["thermal velocity"][1, 1] = caps["thermal velocity"]
    res.sigmas["thermal kT"] = res.sigmas["thermal kT"].copy()
    res.sigmas["thermal kT"][1, 1] = 0.5 * caps["thermal kT"]
    by = {p.name: p for p in pixel_spectrum(res, 1, 1).params}
    assert by["thermal velocity"].unconstrained and "unconstrained" in by["thermal velocity"].text()
    assert not by["thermal kT"].unconstrained and "unconstrained" not in by["thermal kT"].text()
    # the caps travel with an exported FITS
    path = res.to_fits(tmp_path / "m.fits", include_cubes=True)
    from napari_sushi.core.io.maps import read_maps_fits

    by2 = {p.name: p for p in pixel_spectrum(read_maps_fits(path), 1, 1).params}
    assert by2["thermal velocity"].unconstrained

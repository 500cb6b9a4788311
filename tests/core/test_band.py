"""The one band-selection rule (core.band) and its three callers: cube, response, event binning."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sushi.core.band import BAND_TOL_KEV, band_mask, band_slice
from napari_sushi.core.cube import CubeError, HyperCube
from napari_sushi.core.io import bin_events
from napari_sushi.core.io.synthetic import write_event_file
from napari_sushi.core.response import ResponseError, gaussian_response, load_response

EDGES = np.array([0.0, 1.0, 2.0, 3.0, 4.0])


def test_band_edges_exactly_on_bin_boundaries_select_the_bins_between():
    np.testing.assert_array_equal(band_mask(EDGES, 1.0, 3.0), [False, True, True, False])
    assert band_slice(EDGES, 1.0, 3.0) == slice(1, 3)
    assert band_slice(EDGES, 0.0, 4.0) == slice(0, 4)


def test_tolerance_admits_edges_just_outside_and_no_more():
    inside = 0.5 * BAND_TOL_KEV
    outside = 2.0 * BAND_TOL_KEV
    # band edges a hair inside the bins: the bins still count as inside
    assert band_slice(EDGES, 1.0 + inside, 3.0 - inside) == slice(1, 3)
    # beyond the tolerance the end bins stick out of the band and are dropped
    assert band_slice(EDGES, 1.0 + outside, 3.0) == slice(2, 3)
    assert band_slice(EDGES, 1.0, 3.0 - outside) == slice(1, 2)
    # a band that cuts through bins keeps only the whole ones
    assert band_slice(EDGES, 0.5, 3.5) == slice(1, 3)


def test_float32_edges_select_like_float64():
    edges64 = 0.0146 * np.arange(1025)  # Chandra ACIS channel grid
    edges32 = edges64.astype(np.float32)
    np.testing.assert_array_equal(band_mask(edges32, 3.0076, 8.4826), band_mask(edges64, 3.0076, 8.4826))
    assert band_slice(edges64, 3.0, 8.483) == slice(206, 581)  # 375 channels


def test_empty_selection_and_bad_grids():
    assert band_slice(EDGES, 1.2, 1.8) == slice(0, 0)
    assert not band_mask(EDGES, 5.0, 6.0).any()
    # zero-width bins (as at the start of some EBOUNDS) are allowed
    assert band_slice([0.0, 0.0, 1.0, 2.0], 0.5, 2.0) == slice(2, 3)
    with pytest.raises(ValueError, match="increasing"):
        band_mask([0.0, 2.0, 1.0], 0.0, 2.0)
    with pytest.raises(ValueError, match="two edges"):
        band_mask([1.0], 0.0, 2.0)


def test_callers_raise_their_own_error_on_an_empty_band(tmp_path):
    cube = HyperCube(np.ones((4, 2, 2)), EDGES)
    with pytest.raises(CubeError, match="no energy bin"):
        cube.select_band(1.2, 1.8)
    g = gaussian_response(0.13, 0.5, 0.3, 5.0, channel_width=0.5)
    with pytest.raises(ResponseError, match="no channel"):
        g.restrict(1.1, 1.4)
    evt = write_event_file(tmp_path / "evt.fits")
    with pytest.raises(CubeError, match="no channel lies entirely"):
        bin_events(evt, band=(1.0, 1.01), native=True, binning=16)


def test_the_three_callers_agree_on_the_toy_band(tmp_path):
    acis = load_response("chandra-acis-i-cy0")
    r = acis.restrict(3.0, 8.483)
    assert r.n_channels == 375 and acis.channel_mask(3.0, 8.483).sum() == 375
    cube = HyperCube(np.ones((acis.n_channels, 1, 1)), acis.channel_edges, channels=acis.channels)
    sub = cube.select_band(3.0, 8.483)
    np.testing.assert_array_equal(sub.channels, r.channels)
    evt = write_event_file(tmp_path / "evt.fits")
    binned = bin_events(evt, band=(3.0, 8.483), native=True, binning=16)
    np.testing.assert_array_equal(binned.channels, r.channels)
    np.testing.assert_allclose(binned.energy_edges, r.channel_edges, atol=1e-6)

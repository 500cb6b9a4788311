"""Values pinned at a model's validity-box edge are flagged (run summary, pixel spectrum)."""

from dataclasses import replace

import numpy as np
import pytest

from napari_sushi.core.pixel_spectrum import fit_arrays, pixel_spectrum
from napari_sushi.core.solver.result import on_box_edge
from napari_sushi.core.solver.settings import Component, FitSettings
from napari_sushi.core.solver.sushi import fit


def test_on_box_edge_uses_a_small_fraction_of_the_width():
    low, high = on_box_edge(np.array([1.5, 1.5004, 1.51, 3.99, 4.0, np.nan]), (1.5, 4.0))
    assert low.tolist() == [True, True, False, False, False, False]
    assert high.tolist() == [False, False, False, False, True, False]


@pytest.fixture(scope="module")
def short_fit(small_case):
    cube, _, models, _ = small_case
    comps = [Component("thermal", models["thermal"]), Component("powerlaw", models["powerlaw"])]
    return fit(cube, comps, FitSettings(max_iter=5))


def test_boxes_recorded_and_edge_shares_counted(short_fit):
    r = short_fit
    boxes = r.provenance["boxes"]
    # every parameter map's box, and the share map's of the share form (regularised shares, the default)
    assert set(boxes) == set(r.params) | {"thermal share"} and list(boxes["thermal share"]) == [0.0, 1.0]
    lo, hi = boxes["powerlaw index"]
    index = r.params["powerlaw index"].copy()
    ny, nx = index.shape
    index[: ny // 2] = lo  # half the pixels pinned at the lower edge
    index[ny // 2 :, : nx // 4] = hi  # an eighth at the upper edge
    pinned = replace(r, params={**r.params, "powerlaw index": index})
    amp = r.amplitudes["powerlaw"]
    use = amp >= 1.0
    share_lo, share_hi = pinned.edge_shares()["powerlaw index"]
    assert share_lo == pytest.approx((use[: ny // 2]).sum() / use.sum())
    assert share_hi == pytest.approx((use[ny // 2 :, : nx // 4]).sum() / use.sum())
    text = pinned.edge_summary()
    assert "powerlaw index" in text and f"lower edge {lo:g}" in text and "wider box" in text
    # the unpinned maps of a short fit from the scan start are inside their boxes
    assert "powerlaw index" not in r.edge_summary()


def test_pixel_spectrum_says_a_value_is_a_bound(short_fit):
    r = short_fit
    lo = r.provenance["boxes"]["powerlaw index"][0]
    index = r.params["powerlaw index"].copy()
    index[3, 4] = lo
    pinned = replace(r, params={**r.params, "powerlaw index": index})
    spec = pixel_spectrum(fit_arrays(pinned), 3, 4)
    value = next(p for p in spec.params if p.name == "powerlaw index")
    assert value.at_edge == "lower" and "lower edge" in value.text()
    other = next(p for p in pixel_spectrum(fit_arrays(pinned), 3, 5).params if p.name == "powerlaw index")
    assert other.at_edge == ""


def test_cli_summary_warns_of_pinned_maps(short_fit):
    from napari_sushi.cli.fit import parameter_summary

    r = short_fit
    lo = r.provenance["boxes"]["powerlaw index"][0]
    pinned = replace(r, params={**r.params, "powerlaw index": np.full_like(r.params["powerlaw index"], lo)})
    assert any(
        line.strip().startswith("warning: on the model's box edge: powerlaw index 100 %")
        for line in parameter_summary(pinned)
    )
    assert not any("box edge" in line for line in parameter_summary(r))

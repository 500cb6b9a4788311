"""Scoring against truth: skill against the constant map, slope, shares, coverage."""

import numpy as np
import pytest

from napari_sushi.core.scoring import error_stats, score_maps, selected


def _truth():
    y, x = np.mgrid[0:20, 0:20].astype(float)
    return {
        "thermal amplitude": 40 + 2 * x,
        "thermal kT": 1 + 0.1 * x,
        "powerlaw amplitude": np.where(y > 10, 30.0, 1.0),
        "powerlaw index": 2 + 0.05 * y,
    }


def test_error_stats_skill_and_slope():
    t = np.linspace(0, 1, 101)
    perfect = error_stats(t, t)
    assert perfect["skill"] == 0 and perfect["slope"] == pytest.approx(1)
    const = error_stats(np.full_like(t, np.median(t)), t)
    assert const["skill"] == pytest.approx(1) and const["slope"] == pytest.approx(0)
    half = error_stats(0.5 * t + 0.25, t)
    assert half["slope"] == pytest.approx(0.5) and 0 < half["skill"] < 1


def test_score_maps_selection_shares_and_coverage():
    truth = _truth()
    sel = selected(truth, "powerlaw index")
    assert sel.sum() == 9 * 20  # rows y > 10, where the power law holds >= 20 % of the counts
    params = {"thermal kT": truth["thermal kT"] + 0.1, "powerlaw index": truth["powerlaw index"]}
    amps = {"thermal": truth["thermal amplitude"], "powerlaw": truth["powerlaw amplitude"]}
    sig = {"thermal kT": np.full((20, 20), 0.2), "powerlaw index": np.full((20, 20), 1e-3)}
    s = score_maps(truth, params, amps, sigmas=sig, sigma_caps={"thermal kT": 0.2, "powerlaw index": 0.7})
    assert s["thermal kT"]["bias"] == pytest.approx(0.1) and s["thermal kT"]["coverage"] == 1.0
    assert s["thermal kT"]["frac_sigma_at_cap_bright"] == 1.0
    assert s["powerlaw index"]["rmse"] == 0 and s["powerlaw index"]["coverage"] == 1.0
    assert s["thermal share"]["skill"] == 0 and s["powerlaw share"]["rmse"] == 0
    swapped = score_maps(truth, params, {"thermal": amps["powerlaw"], "powerlaw": amps["thermal"]})
    assert swapped["thermal share"]["skill"] > 1 and swapped["thermal share"]["slope"] < 0

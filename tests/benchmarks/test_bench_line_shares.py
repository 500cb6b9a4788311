"""The built-in line table, as calibrated, against APEC: line shares within 20 % over kT 0.5-5 keV."""

import numpy as np
import pytest

from napari_sushi.core.physics import apec

pytestmark = pytest.mark.skipif(not apec.available(), reason="APEC emulator absent (pip install 'napari-sushi[apec]')")


def test_line_shares_agree_with_apec_within_20_percent(load_benchmark):
    bench = load_benchmark("bench_line_shares")
    checked = 0
    for kt in np.geomspace(0.5, 5.0, 9):
        ours, theirs = bench.shares("builtin", kt), bench.shares("apec", kt)
        for window in bench.WINDOWS:
            if theirs[window] >= bench.MIN_SHARE:
                checked += 1
                assert ours[window] / theirs[window] == pytest.approx(1.0, abs=0.2), (kt, window)
    assert checked >= 40  # every complex at most temperatures, not a handful


def test_shares_see_a_missing_line(load_benchmark):
    # the estimator is not blind: without lines the built-in shares vanish, APEC's do not
    bench = load_benchmark("bench_line_shares")
    full = bench.spectrum("builtin", 2.0, 1.0)
    assert bench.window_shares(full, full, bench.WINDOWS)["Fe K 6.55-7.05"] == 0.0
    assert bench.shares("apec", 2.0)["Fe K 6.55-7.05"] > 1e-3

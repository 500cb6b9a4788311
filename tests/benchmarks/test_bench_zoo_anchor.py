"""The anchor study of the zoo (benchmarks/bench_zoo_anchor.py): its pieces and one small case end to end."""

import json

import numpy as np


def test_weighted_median_and_the_level_only_decomposition(load_benchmark):
    mod = load_benchmark("bench_zoo_anchor")
    assert mod.weighted_median(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 10.0])) == 3.0
    assert mod.weighted_median(np.array([1.0, 2.0, np.nan]), np.array([1.0, 5.0, 1.0])) == 2.0
    yy, xx = np.mgrid[0:16, 0:16]
    true = 2.0 + 0.05 * xx
    sel = np.ones_like(true, dtype=bool)
    shifted = true + 0.4  # right shape, wrong level: the level alone scores as badly as the map
    d = mod.decompose(shifted, np.ones_like(true), true, sel)
    assert abs(d["bias"] - 0.4) < 1e-12
    assert abs(d["level_only_skill"] - d["skill"]) < 0.6 * d["skill"]
    exact = mod.decompose(true, np.ones_like(true), true, sel)
    assert exact["skill"] == 0.0 and exact["level_only_skill"] > 0.9  # a constant misses the gradient


def test_bench_zoo_anchor_runs_one_small_case(load_benchmark, tmp_path):
    mod = load_benchmark("bench_zoo_anchor")
    out = tmp_path / "anchor"
    rows = mod.main(["--cases", "0", "--shape", "32", "--threads", "1", "--out", str(out)])
    (row,) = rows
    assert set(row["fits"]) == set(mod.ANCHORS)
    for entry in row["fits"].values():
        assert all(np.isfinite(v) for v in entry["skill"].values())
    # from constant maps at the truth's median the velocity map never leaves its anchor
    assert abs(row["fits"]["oracle level"]["skill"]["thermal velocity"] - 1.0) < 0.05
    table = np.array(row["shift_table"])
    assert table.shape == (len(mod.SHIFTS_KT), len(mod.SHIFTS_INDEX))
    assert table[mod.SHIFTS_KT.index(0.0)][mod.SHIFTS_INDEX.index(0.0)] == 0.0
    assert table.max() > 100.0  # a large global shift of the true maps is seen by the data
    assert json.loads(out.with_suffix(".json").read_text()) == json.loads(json.dumps(rows))
    assert "oracle level + coarse/2" in out.with_suffix(".md").read_text()

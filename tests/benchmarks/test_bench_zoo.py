"""The zoo benchmark runs end to end on three small cases, SUSHI beside the per-pixel fit."""

import json


def test_bench_zoo_scores_three_small_cases(load_benchmark, tmp_path):
    mod = load_benchmark("bench_zoo")
    out = tmp_path / "zoo"
    rows = mod.main(
        [
            "--cases",
            "0,6,12",
            "--shape",
            "24",
            "--pixelfit",
            "--label",
            "quick",
            "--settings",
            '{"max_iter": 40}',
            "--out",
            str(out),
        ]
    )
    assert [r["label"] for r in rows] == ["pixelfit", "quick"] * 3
    assert {r["counts_scale"] for r in rows} == {1.0, 0.1, 3.0}
    for r in rows:
        for k in mod.PARAMS + mod.SHARES:
            assert r["scores"][k]["n_pixels"] > 0
    # the regularised fit beats the per-pixel fit on kT in every case (the per-pixel fit of a
    # few-count pixel is noise across the box)
    pix = {r["case"]: r for r in rows if r["label"] == "pixelfit"}
    for r in rows:
        if r["label"] == "quick":
            assert r["scores"]["thermal kT"]["rmse"] < pix[r["case"]]["scores"]["thermal kT"]["rmse"]
    assert json.loads(out.with_suffix(".json").read_text()) == json.loads(json.dumps(rows))
    md = out.with_suffix(".md").read_text()
    assert "| quick | 1 |" in md and "zoo0-1x-24x24" in md
    again = mod.main(
        ["--cases", "0", "--shape", "24", "--label", "quick", "--settings", '{"max_iter": 40}', "--out", str(out)]
    )
    assert len(again) == 6  # a re-run replaces its own row, keeps the others

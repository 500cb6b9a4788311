"""The seeds benchmark runs end to end on a tiny cube and leaves the shipped weights in place."""

import json

import napari_sushi.core.solver.engine as engine
import napari_sushi.core.solver.objective as objective


def test_bench_seeds_compares_the_weights_and_restores_them(load_benchmark, tmp_path):
    mod = load_benchmark("bench_seeds")
    shipped = engine.noise_weights, objective.floored_information
    rows = mod.main(
        ["--seeds", "0", "--presets", "faint", "--shape", "24", "--plain-weights", "--out", str(tmp_path / "seeds")]
    )
    assert [r["setting"] for r in rows] == ["kmad 5", "kmad 5 plain weights"]
    assert (engine.noise_weights, objective.floored_information) == shipped
    assert objective.noise_weights is shipped[0]
    assert json.loads((tmp_path / "seeds.json").read_text()) == json.loads(json.dumps(rows))
    md = (tmp_path / "seeds.md").read_text()
    assert "| faint | kmad 5 plain weights | 1 |" in md

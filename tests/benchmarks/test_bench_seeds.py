"""The seeds benchmark runs end to end on a tiny cube and leaves the shipped weights in place."""

import importlib.util
import json
from pathlib import Path

import napari_sushi.core.solver.engine as engine
import napari_sushi.core.solver.objective as objective

ROOT = Path(__file__).resolve().parents[2]


def test_bench_seeds_compares_the_weights_and_restores_them(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_seeds", ROOT / "benchmarks" / "bench_seeds.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    shipped = engine.noise_weights, objective.floored_information
    rows = mod.main(["--seeds", "0", "--presets", "faint", "--shape", "24", "--plain-weights",
                     "--out", str(tmp_path / "seeds")])
    assert [r["setting"] for r in rows] == ["kmad 5", "kmad 5 plain weights"]
    assert (engine.noise_weights, objective.floored_information) == shipped
    assert objective.noise_weights is shipped[0]
    assert json.loads((tmp_path / "seeds.json").read_text()) == json.loads(json.dumps(rows))
    md = (tmp_path / "seeds.md").read_text()
    assert "| faint | kmad 5 plain weights | 1 |" in md

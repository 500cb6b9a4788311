"""The device benchmark (for the GPU figures of issue 5) runs end to end; here on the CPU, tiny."""

import json


def test_bench_device_writes_its_figures(load_benchmark, tmp_path):
    mod = load_benchmark("bench_device")
    stem = tmp_path / "device_cpu"
    report = mod.main(["--device", "cpu", "--sizes", "24", "--repeats", "1", "--out", str(stem)])
    (size,) = report["sizes"]
    run = size["runs"][0]
    assert size["size"] == 24 and run["device"] == "cpu" and run["n_iter"] >= 1
    assert abs(run["per_iter"] * run["n_iter"] - run["seconds"]) < 1e-9
    assert json.loads(stem.with_suffix(".json").read_text())["sizes"][0]["median_n_iter"] == run["n_iter"]
    assert "| 24x24x375 |" in stem.with_suffix(".md").read_text()


def test_bench_device_refuses_to_compare_the_cpu_with_itself(load_benchmark, tmp_path):
    mod = load_benchmark("bench_device")
    try:
        mod.main(["--device", "cpu", "--sizes", "", "--compare", "--out", str(tmp_path / "x")])
    except SystemExit as e:
        assert "nothing to compare" in str(e)
    else:
        raise AssertionError("--compare with --device cpu was accepted")
    assert not (tmp_path / "x.json").exists()

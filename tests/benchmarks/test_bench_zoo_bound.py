"""The oracle bound on the zoo's skill (benchmarks/bench_zoo_bound.py): its transforms, estimators and one case."""

import json

import numpy as np


def test_haar_transform_is_orthonormal_and_matches_its_matrix(load_benchmark):
    mod = load_benchmark("bench_zoo_bound")
    a = np.random.default_rng(0).normal(size=(3, 16, 16))
    assert np.allclose(mod._ihaar2(mod._haar2(a)), a)
    W = mod.haar_matrix(16)
    assert np.allclose(W @ W.T, np.eye(256))
    assert np.allclose(mod._haar2(a).reshape(3, -1), a.reshape(3, -1) @ W.T)
    D = mod.dct_matrix(8)
    assert np.allclose(D @ D.T, np.eye(64))
    lv = mod._haar_levels(16)
    assert lv[0] == 0 and lv.max() == 4 and (lv == 4).sum() == 256 - 64


def test_prior_error_of_the_constant_is_the_maps_variance_by_parseval(load_benchmark):
    mod = load_benchmark("bench_zoo_bound")
    dev = np.random.default_rng(1).normal(size=64)
    for W in (mod.haar_matrix(8), mod.dct_matrix(8)):
        assert np.isclose(mod.prior_mse(W, dev, np.ones(64, bool)), np.mean(dev**2))


def test_joint_bound_with_uncoupled_uniform_information_is_the_wiener_risk(load_benchmark):
    mod = load_benchmark("bench_zoo_bound")
    rng = np.random.default_rng(2)
    n = 8
    dev = rng.normal(size=(4, n, n)) * np.array([1.0, 0.3, 2.0, 0.1])[:, None, None]
    info = np.array([4.0, 1.0, 0.25, 100.0])
    F4 = np.broadcast_to(np.diag(info), (n * n, 4, 4)).copy()
    sel = np.ones((4, n * n), bool)
    got = mod.joint_bayes_mse("haar", dev, F4, sel, n_probes=400, seed=3)
    c = mod._haar2(dev).reshape(4, -1)
    s2 = 1.0 / info[:, None]
    want = (c**2 * s2 / (c**2 + s2)).mean(axis=1)  # per-coefficient Wiener risk, averaged over pixels
    assert np.allclose(got, want, rtol=0.1)
    # coupling two maps through the Fisher matrix can only raise their risk
    F4[:, 0, 2] = F4[:, 2, 0] = 0.9 * np.sqrt(info[0] * info[2])
    coupled = mod.joint_bayes_mse("haar", dev, F4, sel, n_probes=400, seed=3)
    assert coupled[0] > 1.1 * got[0] and coupled[2] > 1.1 * got[2]


def test_thresholding_without_oracle_recovers_a_well_measured_map(load_benchmark):
    mod = load_benchmark("bench_zoo_bound")
    n = 16
    yy, xx = np.mgrid[0:n, 0:n]
    dev = np.where(xx < n // 2, 1.0, -1.0).ravel()
    sel = np.ones(n * n, bool)
    W = mod.haar_matrix(n)
    sharp = mod.practical_thresholding(W, dev, np.full(n * n, 1e6), sel, (-5.0, 5.0))
    assert sharp["best tau"] < 1e-2 and sharp["sure"] < 1e-2
    noisy = mod.practical_thresholding(W, dev, np.full(n * n, 1.0), sel, (-5.0, 5.0))
    assert noisy["sure"] < 0.5  # a step with unit noise per pixel: thresholding keeps the big coefficients
    assert noisy["none"] > 0.9  # no threshold: the pixels' own noise


def test_sure_threshold_is_small_on_signal_and_large_on_noise(load_benchmark):
    mod = load_benchmark("bench_zoo_bound")
    rng = np.random.default_rng(4)
    noise = rng.normal(size=(2, 4096))
    assert (mod._sure_threshold(noise) > 2.0).all()
    signal = noise + 10.0
    assert (mod._sure_threshold(signal) < 0.5).all()


def test_bench_zoo_bound_runs_one_small_case(load_benchmark, tmp_path):
    mod = load_benchmark("bench_zoo_bound")
    out = tmp_path / "bound"
    rows = mod.main(
        ["--cases", "0", "--shape", "16", "--probes", "8", "--out", str(out), "--compare", str(tmp_path / "none.json")]
    )
    (row,) = rows
    assert set(row["maps"]) == set(mod.MAPS)
    for entry in row["maps"].values():
        for b in mod.BOUNDS:
            assert np.isfinite(entry[b]["skill"]) and entry[b]["skill"] >= 0.0
        assert entry["joint"]["skill"] <= 1.0 + 1e-6  # a Bayes risk against the constant's
        # giving each map everything else per pixel can only help the per-pixel information
        assert entry["median_pixel_sigma_known"] <= entry["median_pixel_sigma_pixel"] * (1 + 1e-9)
    assert json.loads(out.with_suffix(".json").read_text()) == json.loads(json.dumps(rows))
    assert "The targets against the oracle bounds" in out.with_suffix(".md").read_text()

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
    fwd, _ = mod.FAST["dct"]
    assert np.allclose(fwd(a[:, :8, :8]).reshape(3, -1), a[:, :8, :8].reshape(3, -1) @ D.T)


def test_oracle_shrinkage_is_the_wiener_weight_on_all_pixels_and_never_worse_than_the_constant(load_benchmark):
    mod = load_benchmark("bench_zoo_bound")
    rng = np.random.default_rng(1)
    n = 8
    W = mod.haar_matrix(n)
    dev = rng.normal(size=n * n)
    info = np.full(n * n, 2.0)
    everything = np.ones(n * n, bool)
    bias, variance, mean = mod.oracle_shrinkage(W, dev, info, everything)
    c = W @ dev
    s2 = 1.0 / info[0]  # uniform information: every coefficient measured with variance 1 / I
    w = c**2 / (c**2 + s2)
    assert np.allclose(bias, W.T @ ((w - 1) * c)) and np.allclose(variance, (W * W).T @ (w**2 * s2))
    assert np.allclose(mean, W.T @ (w * c))
    # a scored subset and uneven information: the weights serve the scored pixels, never worse than w = 0
    sel = rng.random(n * n) < 0.3
    info = rng.gamma(0.5, 2.0, size=n * n)
    bias, variance, _ = mod.oracle_shrinkage(W, dev, info, sel)
    mse = np.mean(bias[sel] ** 2 + variance[sel])
    assert mse <= np.mean(dev[sel] ** 2) + 1e-12
    w_all = c**2 / (c**2 + 1.0 / ((W * W) @ info))  # the all-pixel weights do worse on the subset
    worse = np.mean((W.T @ ((w_all - 1) * c))[sel] ** 2 + ((W * W).T @ (w_all**2 / ((W * W) @ info)))[sel])
    assert mse <= worse + 1e-12


def test_joint_oracle_error_matches_a_dense_computation(load_benchmark):
    mod = load_benchmark("bench_zoo_bound")
    rng = np.random.default_rng(2)
    n, P = 4, 16
    dev = rng.normal(size=(4, n, n)) * np.array([1.0, 0.3, 2.0, 0.1])[:, None, None]
    L = rng.normal(size=(P, 4, 4))
    F4 = L @ L.transpose(0, 2, 1) * rng.gamma(1.0, 1.0, size=(P, 1, 1))  # uneven, coupled per pixel
    sel = rng.random((4, P)) < 0.6
    sel[:, 0] = True
    got = mod.joint_oracle_mse("haar", dev, F4, sel, n_probes=4000, seed=3)
    W = mod.haar_matrix(n)
    Wb = np.kron(np.eye(4), W)  # (4P, 4P): maps -> coefficients, map-major
    Fpix = np.zeros((4 * P, 4 * P))
    for a in range(4):
        for b in range(4):
            Fpix[a * P : (a + 1) * P, b * P : (b + 1) * P] = np.diag(F4[:, a, b])
    H = Wb @ Fpix @ Wb.T
    c = Wb @ dev.reshape(-1)
    K = np.linalg.inv(H + np.diag(1.0 / c**2))
    bias = Wb.T @ ((K @ H - np.eye(4 * P)) @ c)
    var = np.diag(Wb.T @ K @ H @ K @ Wb)
    want = np.array([np.mean((bias**2 + var)[a * P : (a + 1) * P][sel[a]]) for a in range(4)])
    assert np.allclose(got, want, rtol=0.08)


def test_bench_zoo_bound_runs_one_small_case(load_benchmark, tmp_path):
    mod = load_benchmark("bench_zoo_bound")
    out = tmp_path / "bound"
    rows = mod.main(
        ["--cases", "0", "--shape", "16", "--probes", "8", "--out", str(out), "--compare", str(tmp_path / "none.json")]
    )
    (row,) = rows
    assert set(row["maps"]) == set(mod.MAPS)
    for entry in row["maps"].values():
        for b in ("known", "pixel"):  # the best weights for the scored pixels never do worse than the median
            assert 0.0 <= entry[b]["skill"] <= 1.0 + 1e-9
        assert np.isfinite(entry["joint"]["skill"]) and entry["joint"]["skill"] >= 0.0
        # everything else known can only help: per pixel and for the oracle
        assert entry["median_pixel_sigma_known"] <= entry["median_pixel_sigma_pixel"] * (1 + 1e-9)
        assert entry["known"]["skill"] <= entry["pixel"]["skill"] + 1e-9
    assert json.loads(out.with_suffix(".json").read_text()) == json.loads(json.dumps(rows))
    assert "The targets against the oracle estimators" in out.with_suffix(".md").read_text()

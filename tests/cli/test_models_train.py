"""CLI: ``napari-sushi models`` lists/describes models; ``napari-sushi train`` writes loadable models."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_sushi.cli import main
from napari_sushi.core.spectral.files import load_model_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "spectral"))
import standin  # noqa: E402


def test_models_lists_shipped(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("toy-thermal-emulator", "toy-powerlaw-iae", "wide-thermal-emulator"):
        assert name in out
    assert "kT [keV] 0.5..5" in out and "3-8.483" in out


def test_models_describes_one(capsys):
    assert main(["models", "toy-powerlaw-emulator"]) == 0
    out = capsys.readouterr().out
    assert "identity" in out and "index" in out and "channels 207-581" in out


def test_models_refuses_pickle(tmp_path, capsys):
    p = tmp_path / "evil.safetensors"
    p.write_bytes(pickle.dumps({"a": 1}))
    assert main(["models", str(p)]) == 2
    assert "pickle" in capsys.readouterr().err


def test_train_from_preset(tmp_path, capsys):
    out = tmp_path / "pl.safetensors"
    assert (
        main(["train", "--preset", "toy", "--component", "powerlaw", "--family", "emulator", "-o", str(out), "--quiet"])
        == 0
    )
    m = load_model_file(out)
    assert m.component == "powerlaw" and m.meta.extra["loss_curve"] and m.meta.response_id == "chandra-acis-i-cy0"
    assert "wrote" in capsys.readouterr().out
    # refuses to overwrite without --overwrite, and a non-safetensors name
    assert main(["train", "--preset", "toy", "--component", "powerlaw", "-o", str(out), "--quiet"]) == 2
    assert main(["train", "--preset", "toy", "--component", "powerlaw", "-o", str(tmp_path / "m.pt"), "--quiet"]) == 2
    assert "safetensors" in capsys.readouterr().err


def test_train_for_ones_own_source(tmp_path, capsys):
    """--fix / --range: a power law behind twice the wide preset's absorption, with its own index box."""
    out = tmp_path / "pl_nh1.safetensors"
    assert (
        main(
            [
                "train",
                "--preset",
                "wide",
                "--component",
                "powerlaw",
                "--fix",
                "nH=1.0",
                "--range",
                "index=1,3.5",
                "-o",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    m = load_model_file(out)
    assert (m.meta.parameters[0].low, m.meta.parameters[0].high) == (1.0, 3.5)
    assert m.meta.extra["fixed"]["nH"] == 1.0 and "nH=1" in m.meta.extra["preset"]
    shipped = load_model_file(
        Path(__file__).resolve().parents[2] / "napari_sushi" / "pretrained" / "wide-powerlaw-emulator.safetensors"
    )
    import torch

    th = torch.tensor([[2.0]])
    soft = torch.as_tensor(m.energy_edges[1:] <= 1.0)
    assert float(m.spectrum(th)[0, soft].sum()) < 0.8 * float(shipped.spectrum(th)[0, soft].sum())
    # fixing the only free parameter, a parameter the component does not have, and a malformed value
    for bad, says in (
        (["--fix", "index=2"], "no free parameter"),
        (["--fix", "kT=2"], "no parameter 'kT'"),
        (["--range", "index=3,1"], "low < high"),
        (["--fix", "nH"], "NAME=VALUE"),
    ):
        assert (
            main(
                [
                    "train",
                    "--preset",
                    "wide",
                    "--component",
                    "powerlaw",
                    *bad,
                    "-o",
                    str(tmp_path / "bad.safetensors"),
                    "--quiet",
                ]
            )
            == 2
        )
        assert says in capsys.readouterr().err
    assert not (tmp_path / "bad.safetensors").exists()


def test_train_from_library(tmp_path):
    th = np.stack(np.meshgrid(np.linspace(1.5, 4.0, 11), [0.0], indexing="ij"), -1).reshape(-1, 2)[:, :1]
    lib = tmp_path / "pl.npz"
    np.savez(
        lib,
        energy_edges=standin.EDGES,
        params=th,
        spectra=standin.powerlaw(th),
        param_names=np.array(["index"]),
        param_units=np.array([""]),
    )
    out = tmp_path / "lib.safetensors"
    assert main(["train", "--library", str(lib), "-o", str(out), "--quiet"]) == 0
    m = load_model_file(out)
    assert m.param_names == ["index"] and m.bounds.tolist() == [[1.5, 4.0]]
    out2 = tmp_path / "lib-iae.safetensors"
    assert (
        main(["train", "--library", str(lib), "--family", "iae", "--max-epochs", "2", "-o", str(out2), "--quiet"]) == 0
    )
    assert load_model_file(out2).meta.extra["training"]["epochs"] == 2
    # the shipped thermal IAEs' recipe (cosine schedule, then float64 L-BFGS polish) is reachable from the CLI
    out3 = tmp_path / "lib-iae-cos.safetensors"
    assert (
        main(
            [
                "train",
                "--library",
                str(lib),
                "--family",
                "iae",
                "--max-epochs",
                "2",
                "--schedule",
                "cosine",
                "--polish-minutes",
                "0.02",
                "-o",
                str(out3),
                "--quiet",
            ]
        )
        == 0
    )
    tr = load_model_file(out3).meta.extra["training"]
    assert tr["schedule"] == "cosine" and tr["polish"] is not None


def test_train_errors(tmp_path, capsys):
    assert main(["train", "--preset", "toy", "-o", str(tmp_path / "x.safetensors")]) == 2
    assert "--component" in capsys.readouterr().err
    assert main(["train", "--library", str(tmp_path / "missing.npz"), "-o", str(tmp_path / "y.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--preset",
                "toy",
                "--component",
                "powerlaw",
                "--schedule",
                "cosine",
                "-o",
                str(tmp_path / "z.safetensors"),
            ]
        )
        == 2
    )
    assert "not to the grid emulator" in capsys.readouterr().err


DATA = Path(__file__).resolve().parents[2] / "napari_sushi" / "data"
RMF, ARF = str(DATA / "acisi_aimpt_cy0.rmf"), str(DATA / "acisi_aimpt_cy0.arf")


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    d = tmp_path / "my-models"
    monkeypatch.setenv("NAPARI_SUSHI_MODEL_DIR", str(d))
    return d


def test_train_for_own_response_into_the_user_folder(user_dir, capsys):
    args = [
        "train",
        "--rmf",
        RMF,
        "--arf",
        ARF,
        "--component",
        "thermal",
        "--nH",
        "0.95",
        "--band",
        "0.5",
        "8",
        "--group",
        "2",
        "--range",
        "kT=0.2,5",
        "--quick",
        "--quiet",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    path = user_dir / "acisi_aimpt_cy0-thermal-emulator.safetensors"
    assert str(path) in out and "held-out spectral error" in out and "trained in" in out and "?" not in out
    m = load_model_file(path)
    assert m.meta.extra["fixed"]["nH"] == 0.95 and m.meta.extra["group"] == 2
    assert m.meta.channels[:2].tolist() == [36, 38] and m.n_channels == 256
    assert m.meta.response_id == "acisi_aimpt_cy0.rmf+acisi_aimpt_cy0.arf"
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    row = next(line for line in listing.splitlines() if line.startswith("acisi_aimpt_cy0-thermal-emulator"))
    assert "ORIGIN" in listing and " user " in row and "nH=0.95" in row
    assert " shipped " in next(line for line in listing.splitlines() if line.startswith("wide-thermal-emulator"))
    assert main(["models", "acisi_aimpt_cy0-thermal-emulator"]) == 0
    assert "fixed: abundance=1, nH=0.95" in capsys.readouterr().out
    assert main(args) == 2  # the name is taken: refused without --overwrite
    assert "already have a model named" in capsys.readouterr().err


def test_train_checks_the_output_before_training(tmp_path, user_dir, monkeypatch, capsys):
    import napari_sushi.core.spectral.training as training

    def no_training(*a, **k):
        raise AssertionError("training started although the output cannot be written")

    monkeypatch.setattr(training, "train_model", no_training)
    base = ["train", "--rmf", RMF, "--arf", ARF, "--component", "powerlaw", "--quiet"]
    (tmp_path / "exists.safetensors").write_bytes(b"x")
    (tmp_path / "folder.safetensors").mkdir()
    for extra, says in (
        (["-o", str(tmp_path / "nowhere" / "m.safetensors")], "does not exist"),
        (["-o", str(tmp_path / "exists.safetensors")], "already exists"),
        (["-o", str(tmp_path / "folder.safetensors")], "is a folder"),
        (["--name", "wide-thermal-emulator"], "shipped model"),
        (["--name", "../escape"], "not allowed"),
    ):
        assert main(base + extra) == 2
        assert says in capsys.readouterr().err
    assert (tmp_path / "exists.safetensors").read_bytes() == b"x"
    # bad response files are named before any training as well
    text = tmp_path / "notes.rmf"
    text.write_text("hello\n")
    assert main(["train", "--rmf", str(text), "--arf", ARF, "--component", "thermal", "--quiet"]) == 2
    assert "notes.rmf" in capsys.readouterr().err
    assert main(["train", "--rmf", RMF, "--component", "thermal", "--quiet"]) == 2  # a bare RMF needs its ARF
    assert "give the matching ARF" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--preset",
                "wide",
                "--component",
                "thermal",
                "--band",
                "1",
                "2",
                "-o",
                str(tmp_path / "b.safetensors"),
            ]
        )
        == 2
    )
    assert "--band goes with --rmf" in capsys.readouterr().err


def test_nH_with_a_preset_is_fix_nH(tmp_path, user_dir):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    assert (
        main(
            ["train", "--preset", "wide", "--component", "powerlaw", "--nH", "1.2", "--quick", "-o", str(a), "--quiet"]
        )
        == 0
    )
    assert (
        main(
            [
                "train",
                "--preset",
                "wide",
                "--component",
                "powerlaw",
                "--fix",
                "nH=1.2",
                "--quick",
                "-o",
                str(b),
                "--quiet",
            ]
        )
        == 0
    )
    ma, mb = load_model_file(a), load_model_file(b)
    assert ma.meta.extra["fixed"] == mb.meta.extra["fixed"] and ma.meta.extra["fixed"]["nH"] == 1.2
    assert ma.meta.extra["preset"] == mb.meta.extra["preset"]
    assert all(torch.equal(ma.state_dict()[k], mb.state_dict()[k]) for k in ma.state_dict())
    assert (
        main(
            [
                "train",
                "--preset",
                "wide",
                "--component",
                "powerlaw",
                "--nH",
                "1.2",
                "--fix",
                "nH=1",
                "-o",
                str(tmp_path / "c.safetensors"),
                "--quiet",
            ]
        )
        == 2
    )


def test_library_emulator_reports_its_training_time(tmp_path, capsys):
    th = np.linspace(1.5, 4.0, 11)[:, None]
    lib = tmp_path / "pl.npz"
    np.savez(
        lib,
        energy_edges=standin.EDGES,
        params=th,
        spectra=standin.powerlaw(th),
        param_names=np.array(["index"]),
        param_units=np.array([""]),
    )
    assert main(["train", "--library", str(lib), "-o", str(tmp_path / "lib.safetensors"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "trained in ? s" not in out and "trained in " in out and "held-out spectral error" in out
    acc = load_model_file(tmp_path / "lib.safetensors").meta.extra["accuracy"]
    assert acc["n"] > 0 and "every-other-node" in acc["held_out"]


def test_train_with_apec_physics(tmp_path, capsys):
    from napari_sushi.core.physics import apec

    assert (
        main(
            [
                "train",
                "--preset",
                "wide",
                "--component",
                "powerlaw",
                "--physics",
                "apec",
                "-o",
                str(tmp_path / "x.safetensors"),
            ]
        )
        == 2
    )
    assert "thermal" in capsys.readouterr().err
    if not apec.available():
        pytest.skip("APEC extra not installed (pip install 'napari-sushi[apec]')")
    out = tmp_path / "apec.safetensors"
    rc = main(
        [
            "train",
            "--preset",
            "wide",
            "--component",
            "thermal",
            "--physics",
            "apec",
            "--fix",
            "velocity=0",
            "--quick",
            "--quiet",
            "-o",
            str(out),
        ]
    )
    assert rc == 0
    model = load_model_file(out)
    assert model.meta.extra["physics"] == "apec" and "APEC" in model.meta.description

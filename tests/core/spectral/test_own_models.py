"""Training for one's own source: (rmf, arf) models that load again, progress callbacks that can cancel,
held-out accuracy in every family, and the per-user model folder in the registry."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_sushi.core.simulate import get_preset, response_preset
from napari_sushi.core.spectral.files import ModelFileError, load_model_file, save_model
from napari_sushi.core.spectral.registry import list_models, load_model
from napari_sushi.core.spectral.training import (
    ACCURACY_METRIC,
    TrainingCancelled,
    random_draws,
    simulator_source,
    spectral_errors,
    train_model,
    train_network,
)
from napari_sushi.core.spectral.user_models import (
    check_model_name,
    delete_user_model,
    save_user_model,
    user_model_dir,
)

sys.path.insert(0, str(Path(__file__).parent))
import standin  # noqa: E402

DATA = Path(__file__).resolve().parents[3] / "napari_sushi" / "data"
RMF, ARF = str(DATA / "acisi_aimpt_cy0.rmf"), str(DATA / "acisi_aimpt_cy0.arf")
KEYS = {"stage", "step", "total", "train", "val", "elapsed"}


@pytest.fixture(scope="module")
def pair_powerlaw():
    """A quick power-law emulator trained on the 'wide' preset with its response given as (rmf, arf) paths."""
    pre = replace(get_preset("wide"), response=(RMF, ARF))
    return pre, train_model("emulator", pre, "powerlaw", quick=True, progress=False)


def test_tuple_response_model_saves_and_loads(pair_powerlaw, tmp_path):
    pre, model = pair_powerlaw
    assert model.meta.response_id == "acisi_aimpt_cy0.rmf+acisi_aimpt_cy0.arf"
    assert model.meta.extra["response"] == {"rmf": str(Path(RMF).resolve()), "arf": str(Path(ARF).resolve())}
    path = save_model(model, tmp_path / "pl.safetensors")
    back = load_model_file(path)  # used to fail: "content hash differs"
    assert back.identity() == model.identity() and back.meta.response_id == model.meta.response_id
    th = torch.tensor([[1.7], [2.9]], dtype=torch.float64)
    assert torch.equal(back.spectrum(th), model.spectrum(th))
    # the same spectra as the named response: the pair is the shipped Chandra response
    assert np.array_equal(pre.channel_edges, get_preset("wide").channel_edges)


def test_emulator_callback_reports_levels_and_accuracy_is_held_out():
    pre = response_preset(RMF, ARF, nH=0.95, components=("thermal",))
    infos: list[dict] = []
    model = train_model("emulator", pre, "thermal", quick=True, progress=False, callback=infos.append)
    levels = [i for i in infos if not i["partial"]]
    assert all(KEYS <= set(i) and i["stage"] == "emulator" for i in infos)
    assert (
        [i["step"] for i in levels]
        == list(range(1, len(levels) + 1))
        == list(range(1, len(model.meta.extra["loss_curve"]) + 1))
    )
    assert all(i["total"] == 3 for i in infos)  # 8 -> 16 -> 32 cells in quick mode
    assert [i["val"] for i in levels] == [c["val_p99"] for c in model.meta.extra["loss_curve"]]
    assert all(b["elapsed"] >= a["elapsed"] for a, b in zip(infos, infos[1:]))
    acc = model.meta.extra["accuracy"]
    meta, gen = simulator_source(pre, "thermal")
    theta = random_draws(meta, acc["n"], 1000)  # the validation draws: random points, never grid nodes
    err = spectral_errors(model, theta, gen(theta))
    assert acc["metric"] == ACCURACY_METRIC and acc["n"] == 200
    assert acc["median"] == pytest.approx(float(np.median(err)), rel=1e-6) and acc["p99"] < 0.02


def test_callback_cancels_cleanly():
    pre = response_preset(RMF, ARF, components=("powerlaw",))
    seen: list[dict] = []

    def stop_after_first_level(info: dict) -> bool:
        seen.append(info)
        return not info["partial"]

    with pytest.raises(TrainingCancelled, match="emulator stage"):
        train_model("emulator", pre, "powerlaw", quick=True, progress=False, callback=stop_after_first_level)
    assert [i["step"] for i in seen if not i["partial"]] == [1]
    epochs: list[int] = []

    def stop_at_epoch_3(info: dict) -> bool:
        if info["stage"] == "network" and not info["partial"]:
            epochs.append(info["step"])
            assert info["total"] == 60 and info["train"] > 0 and info["val"] > 0
        return info["step"] >= 3

    with pytest.raises(TrainingCancelled, match="network stage"):
        train_model(
            "reference",
            pre,
            "powerlaw",
            quick=True,
            progress=False,
            callback=stop_at_epoch_3,
            n_random=100,
            width=16,
            depth=2,
        )
    assert epochs == [1, 2, 3]


def test_network_accuracy_and_polish_stage():
    m = standin.meta("powerlaw")
    th = np.linspace(1.5, 4.0, 60)[:, None]
    infos: list[dict] = []
    model = train_network(
        "reference",
        m,
        th,
        standin.powerlaw(th),
        max_epochs=3,
        progress=False,
        width=16,
        depth=2,
        polish_seconds=0.3,
        callback=infos.append,
    )
    stages = [i["stage"] for i in infos]
    assert stages[:3] == ["network"] * 3 and "polish" in stages
    acc = model.meta.extra["accuracy"]
    iv = np.random.default_rng(0).permutation(60)[:6]  # the seeded validation split
    err = spectral_errors(model, th[iv], standin.powerlaw(th[iv]))
    assert acc["n"] == 6 and acc["median"] == pytest.approx(float(np.median(err)), rel=1e-5)


def test_simulator_network_accuracy_on_fresh_draws():
    pre = response_preset(RMF, ARF, components=("powerlaw",))
    model = train_model(
        "reference", pre, "powerlaw", quick=True, progress=False, n_random=60, max_epochs=5, width=16, depth=2, n_val=50
    )
    acc = model.meta.extra["accuracy"]
    meta, gen = simulator_source(pre, "powerlaw")
    theta = random_draws(meta, 50, 2000)
    err = spectral_errors(model, theta, gen(theta))
    assert acc["n"] == 50 and "fresh" in acc["held_out"]
    assert acc["p99"] == pytest.approx(float(np.percentile(err, 99)), rel=1e-5)


def test_user_model_folder_registry_and_names(pair_powerlaw, monkeypatch, tmp_path):
    _, model = pair_powerlaw
    folder = user_model_dir()
    assert folder == tmp_path / "user-models" and not folder.exists()  # the conftest's folder, made on save
    path = save_user_model(model, "msh-powerlaw")
    assert path == folder / "msh-powerlaw.safetensors" and path.is_file()
    assert [p.name for p in folder.iterdir()] == ["msh-powerlaw.safetensors"]  # no temporary file left
    entries = {e.name: e for e in list_models()}
    mine = entries["msh-powerlaw"]
    assert mine.origin == "user" and entries["wide-powerlaw-emulator"].origin == "shipped"
    assert mine.fixed == {"nH": 0.5} and mine.response_id == "acisi_aimpt_cy0.rmf+acisi_aimpt_cy0.arf"
    assert entries["wide-thermal-emulator"].fixed["nH"] == 0.5
    assert load_model("msh-powerlaw").identity() == model.identity()
    with pytest.raises(FileExistsError, match="already exists"):
        save_user_model(model, "msh-powerlaw")
    assert save_user_model(model, "msh-powerlaw.safetensors", overwrite=True) == path
    with pytest.raises(ModelFileError, match="shipped model"):
        save_user_model(model, "wide-powerlaw-emulator")
    for bad in ("../evil", "a/b", "", ".hidden", "x" * 101):
        with pytest.raises(ModelFileError, match="not allowed"):
            check_model_name(bad)
    with pytest.raises(FileNotFoundError, match="your models"):
        load_model("no-such-model")
    delete_user_model("msh-powerlaw")
    assert "msh-powerlaw" not in {e.name for e in list_models()}
    monkeypatch.delenv("NAPARI_SUSHI_MODEL_DIR")
    assert user_model_dir().parts[-2:] == ("napari-sushi", "models")

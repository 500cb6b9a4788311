"""Fixtures: small models built on the synthetic stand-in generator (fast, seeded)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import standin  # noqa: E402

from napari_sushi.core.spectral.emulator import build_grid_emulator  # noqa: E402
from napari_sushi.core.spectral.training import network_training_set, train_network  # noqa: E402


@pytest.fixture(scope="session")
def thermal_emulator():
    return build_grid_emulator(standin.meta("thermal"), standin.thermal, [12, 24], ["log", "linear"])


@pytest.fixture(scope="session")
def powerlaw_emulator():
    return build_grid_emulator(standin.meta("powerlaw"), standin.powerlaw, [24], ["linear"])


@pytest.fixture(scope="session")
def tiny_networks():
    """A tiny IAE and reference MLP trained for a few epochs (machinery checks, not accuracy)."""
    torch.set_num_threads(1)
    m = standin.meta("thermal")
    th, sp = network_training_set(m, standin.thermal, 200, 0, cells=[6, 6])
    iae = train_network("iae", m, th, sp, max_epochs=3, progress=False, width=32, latent=8, head_width=16)
    ref = train_network("reference", m, th, sp, max_epochs=3, progress=False, width=32, depth=3)
    return {"iae": iae, "reference": ref}


@pytest.fixture(autouse=True)
def _own_user_model_dir(tmp_path, monkeypatch):
    """Every test sees an empty user model folder of its own (never the real one)."""
    monkeypatch.setenv("NAPARI_SUSHI_MODEL_DIR", str(tmp_path / "user-models"))

"""Fixtures shared by the napari tests."""

from __future__ import annotations

import pytest

from app_helpers import capture_notifications


@pytest.fixture
def notes(monkeypatch):
    """Capture the dock's notifications (they still are plain napari notifications in the app)."""
    from napari_sushi._napari import fit_dock as fd

    return capture_notifications(monkeypatch, fd)

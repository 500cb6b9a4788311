"""Fixtures shared by the napari tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def notes(monkeypatch):
    """Capture the dock's notifications (they still are plain napari notifications in the app)."""
    from napari_sushi._napari import fit_dock as fd

    got: dict[str, list[str]] = {"error": [], "warning": [], "info": []}
    monkeypatch.setattr(fd, "show_error", lambda m: got["error"].append(str(m)))
    monkeypatch.setattr(fd, "show_warning", lambda m: got["warning"].append(str(m)))
    monkeypatch.setattr(fd, "show_info", lambda m: got["info"].append(str(m)))
    return got

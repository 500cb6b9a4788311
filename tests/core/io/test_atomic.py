"""Atomic writes: nothing partial is ever left, existing files are kept unless overwriting."""

import pytest

from napari_sushi.core.io import atomic_path


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_success_renames_into_place(tmp_path):
    target = tmp_path / "out.fits"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".fits") and not tmp.exists()
        tmp.write_text("data")
    assert target.read_text() == "data"
    assert _leftovers(tmp_path) == ["out.fits"]


def test_failure_mid_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.fits"
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert _leftovers(tmp_path) == []


def test_existing_file_is_kept_unless_overwrite(tmp_path):
    target = tmp_path / "out.fits"
    target.write_text("old")
    with pytest.raises(FileExistsError, match="already exists"):
        with atomic_path(target) as tmp:
            tmp.write_text("new")
    assert target.read_text() == "old"
    with pytest.raises(ValueError):
        with atomic_path(target, overwrite=True) as tmp:
            tmp.write_text("new")
            raise ValueError("boom")
    assert target.read_text() == "old" and _leftovers(tmp_path) == ["out.fits"]
    with atomic_path(target, overwrite=True) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_file_appearing_during_write_is_not_clobbered(tmp_path):
    target = tmp_path / "out.fits"
    with pytest.raises(FileExistsError, match="appeared"):
        with atomic_path(target) as tmp:
            tmp.write_text("mine")
            target.write_text("theirs")
    assert target.read_text() == "theirs" and _leftovers(tmp_path) == ["out.fits"]


def test_missing_folder_and_gz_suffix(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_path(tmp_path / "no" / "out.fits"):
            pass
    with atomic_path(tmp_path / "cube.fits.gz") as tmp:
        assert tmp.name.endswith(".fits.gz")
        tmp.write_bytes(b"x")

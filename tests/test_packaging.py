"""The built wheel carries the npe2 manifest as a real file, and npe2 validates the plugin."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_the_manifest(tmp_path):
    src = tmp_path / "src"
    # build from a copy so no build/ or egg-info folders land in the working tree
    shutil.copytree(
        ROOT,
        src,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "docs", "benchmarks"
        ),
    )
    out = tmp_path / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheels = list(out.glob("napari_sushi-*.whl"))
    assert len(wheels) == 1
    with zipfile.ZipFile(wheels[0]) as zf:
        info = zf.getinfo("napari_sushi/napari.yaml")
        assert (info.external_attr >> 28) != 0o12  # not stored as a symbolic link
        text = zf.read(info).decode()
        entry_points = zf.read(next(n for n in zf.namelist() if n.endswith("entry_points.txt"))).decode()
    assert text == (ROOT / "napari.yaml").read_text()
    assert "napari_sushi._napari.reader:get_reader" in text
    assert "napari-sushi = napari_sushi:napari.yaml" in entry_points


def test_npe2_validates_the_installed_plugin():
    npe2 = Path(sys.executable).with_name("npe2")
    if not npe2.exists():
        pytest.skip("npe2 command not installed in this environment")
    proc = subprocess.run([str(npe2), "validate", "napari-sushi"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "valid" in (proc.stdout + proc.stderr).lower()

"""Outputs are checked before any work: a missing folder, a folder as output, the input as output (even
with --overwrite) and an existing file without --overwrite fail at once with exit 2 and one line."""

from __future__ import annotations

import time

import pytest

from napari_sushi.cli import main
from napari_sushi.core.simulate import simulate_remnant, write_simulation


@pytest.fixture(scope="module")
def toy_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("toy") / "toy.fits"
    write_simulation(simulate_remnant("faint", 0), path)
    return path


@pytest.mark.parametrize("command", ["fit", "pixelfit"])
def test_fit_output_checked_before_the_fit(toy_file, tmp_path, capsys, command, monkeypatch):
    from napari_sushi.core.solver import sushi

    monkeypatch.setattr(sushi, "fit", lambda *a, **k: pytest.fail("the fit ran before the output was checked"))
    cases = [
        (tmp_path / "missing" / "maps.fits", [], "does not exist"),
        (tmp_path, [], "is a folder"),
        (toy_file, ["--overwrite"], "is also an input"),
    ]
    existing = tmp_path / "exists.fits"
    existing.write_bytes(b"keep")
    cases.append((existing, [], "already exists"))
    for out, extra, message in cases:
        t0 = time.perf_counter()
        rc = main([command, str(toy_file), "-o", str(out), "--model", "toy-thermal-emulator", *extra])
        err = capsys.readouterr().err
        assert rc == 2 and message in err and err.count("\n") == 1, (out, err)
        assert time.perf_counter() - t0 < 30  # no fit ran (a fit of the toy takes far longer at max_iter 300)
    assert existing.read_bytes() == b"keep" and toy_file.stat().st_size > 1000


def test_bin_refuses_its_own_input_as_output(tmp_path, capsys):
    import numpy as np
    from astropy.io import fits

    n = 200
    rng = np.random.default_rng(0)
    cols = [
        fits.Column("x", "E", array=rng.uniform(1, 50, n)),
        fits.Column("y", "E", array=rng.uniform(1, 50, n)),
        fits.Column("energy", "E", unit="eV", array=rng.uniform(600, 7000, n)),
    ]
    ev = tmp_path / "evt.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="EVENTS")]).writeto(ev)
    before = ev.read_bytes()
    rc = main(["bin", str(ev), "-o", str(ev), "--overwrite"])
    assert rc == 2 and "is also an input" in capsys.readouterr().err
    assert ev.read_bytes() == before
    rc = main(["simulate", "--preset", "faint", "-o", str(tmp_path / "nope" / "sim.fits")])
    assert rc == 2 and "does not exist" in capsys.readouterr().err

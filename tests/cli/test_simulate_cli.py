"""`napari-sushi simulate`: output file, reproducibility, overwrite protection, bad options."""

import numpy as np
import pytest
from astropy.io import fits

from napari_sushi.cli import main
from napari_sushi.core.io import read_fits_cube


def test_simulate_writes_cube_and_truth(tmp_path, capsys):
    out = tmp_path / "toy.fits"
    assert main(["simulate", "--preset", "faint", "--seed", "0", "-o", str(out)]) == 0
    msg = capsys.readouterr().out
    assert "counts per pixel min/median/max" in msg and str(out) in msg
    cube = read_fits_cube(out)
    assert cube.shape == (375, 94, 94)
    with fits.open(out) as hdul:
        truth = [h.name for h in hdul[1:] if h.header.get("TRUTH")]
        assert len(truth) == 5
    # same seed, same counts; existing file refused without --overwrite, allowed with it
    assert main(["simulate", "--preset", "faint", "--seed", "0", "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["simulate", "--preset", "faint", "--seed", "0", "-o", str(out), "--overwrite"]) == 0
    assert np.array_equal(read_fits_cube(out).counts, cube.counts)


def test_simulate_bad_options(tmp_path, capsys):
    assert main(["simulate", "--seed", "-3", "-o", str(tmp_path / "x.fits")]) == 2
    assert "--seed" in capsys.readouterr().err
    assert main(["simulate", "-o", str(tmp_path / "no" / "dir" / "x.fits")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", "--preset", "nope", "-o", str(tmp_path / "x.fits")])
    assert not list(tmp_path.glob("*.fits"))

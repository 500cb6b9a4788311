"""No silent surprises when binning events: fractional binning refused, a 1x1 image warned about, an
all-NaN energy column named as such, a truncated event list a clear error naming the file."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from astropy.io import fits

from napari_sushi.core.cube import CubeError
from napari_sushi.core.io import FileFormatError, bin_events, event_summary


def _events(path, energy=None, n=500):
    rng = np.random.default_rng(0)
    e = rng.uniform(600, 7000, n) if energy is None else energy
    cols = [
        fits.Column("x", "E", array=rng.uniform(1, 60, n)),
        fits.Column("y", "E", array=rng.uniform(1, 60, n)),
        fits.Column("energy", "E", unit="eV", array=e),
    ]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="EVENTS")]).writeto(path)
    return path


def test_fractional_binning_refused_and_tiny_image_warned(tmp_path):
    ev = _events(tmp_path / "evt.fits")
    with pytest.raises(CubeError, match="whole number"):
        bin_events(ev, binning=2.7)
    with pytest.warns(UserWarning, match="1 x 1"):
        cube = bin_events(ev, binning=100000)
    assert cube.shape[1:] == (1, 1)


def test_all_nan_energies_are_named(tmp_path):
    ev = _events(tmp_path / "nan.fits", energy=np.full(500, np.nan))
    with pytest.raises(CubeError, match="NaN") as exc:
        bin_events(ev)
    assert "nan.fits" in str(exc.value) and "no events fall in the band" not in str(exc.value)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_event_list_is_a_clear_error(tmp_path, gz):
    ev = _events(tmp_path / "full.fits", n=5000)
    raw = ev.read_bytes()
    cut = raw[: len(raw) // 2]
    bad = tmp_path / ("cut.fits.gz" if gz else "cut.fits")
    bad.write_bytes(gzip.compress(cut) if gz else cut)
    for call in (lambda: bin_events(bad), lambda: event_summary(bad)):
        with pytest.raises((FileFormatError, CubeError)) as exc:
            call()
        assert bad.name in str(exc.value) and "no EVENTS table" not in str(exc.value)


def test_all_nan_sky_columns_are_an_error_not_inf_ranges(tmp_path):
    from napari_sushi.cli import main

    path = tmp_path / "nansky.fits"
    cols = [
        fits.Column("x", "E", array=np.full(50, np.nan)),
        fits.Column("y", "E", array=np.full(50, np.nan)),
        fits.Column("energy", "E", unit="eV", array=np.full(50, 2000.0)),
    ]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="EVENTS")]).writeto(path)
    with pytest.raises(FileFormatError, match="sky x and y columns hold no finite value") as exc:
        event_summary(path)
    assert "nansky.fits" in str(exc.value)
    assert main(["info", str(path)]) == 2


def test_event_list_with_a_nameless_column_is_read(tmp_path):
    """A column without TTYPE (astropy names it None) must not crash the column lookup."""
    path = _events(tmp_path / "evt.fits")
    with fits.open(path, mode="update") as hdul:
        del hdul[1].header["TTYPE3"]  # energy loses its name; PI is absent too
    with pytest.raises(FileFormatError, match="evt.fits"):
        event_summary(path)

"""Map files: WCS, BUNIT, provenance (HIERARCH and JSON), cubes, and refusals."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from napari_sushi.core.cube import CubeError
from napari_sushi.core.io import read_maps_fits, write_maps_fits


def _wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [10.0, -5.0]
    w.wcs.crpix = [2.0, 3.0]
    w.wcs.cdelt = [-0.001, 0.001]
    return w


def test_maps_round_trip_with_provenance(tmp_path):
    maps = {"thermal kT": np.full((4, 5), 2.0), "powerlaw index": np.full((4, 5), 2.5)}
    prov = {
        "seed": 3,
        "thermal model id": "sha256:0123abcd",
        "model identity for the thermal component": "sha256:" + "ab" * 32,
        "settings": {"lam": 0.1, "iters": [1, 2]},
        "note": "x" * 300,
    }
    path = write_maps_fits(tmp_path / "m.fits", maps, wcs=_wcs(), units={"thermal kT": "keV"}, header=prov)
    ms = read_maps_fits(path)
    assert list(ms.maps) == ["thermal kT", "powerlaw index"]
    np.testing.assert_array_equal(ms.maps["thermal kT"], maps["thermal kT"])
    assert ms.units == {"thermal kT": "keV", "powerlaw index": ""}
    assert ms.wcs is not None and np.allclose(ms.wcs.wcs.crval, [10.0, -5.0])
    assert ms.provenance == prov
    h = ms.header
    assert h["SUSHITYP"] == "MAPS" and h["SEED"] == 3
    assert h["thermal model id"] == "sha256:0123abcd"  # a HIERARCH card
    # too long for a HIERARCH card: only in the JSON extension, and a COMMENT says so
    assert "model identity for the thermal component" not in h
    assert "model identity for the thermal component" in str(h["COMMENT"]).replace("\n", "")
    assert h["NOTE"] == "x" * 300  # long string via CONTINUE cards
    with fits.open(path) as hdul:
        assert "PROVENANCE" in hdul


def test_cubes_are_stored_with_energy_axis(tmp_path):
    cube = np.ones((3, 4, 5))
    path = write_maps_fits(
        tmp_path / "m.fits",
        {"a": np.zeros((4, 5))},
        cubes={"model": cube},
        energy_edges=[1.0, 2.0, 3.0, 4.0],
        units={"model": "count"},
    )
    ms = read_maps_fits(path)
    np.testing.assert_array_equal(ms.cubes["model"], cube)
    np.testing.assert_allclose(ms.energy_edges, [1, 2, 3, 4])
    with fits.open(path) as h:
        assert h["MODEL"].header["CTYPE3"] == "ENER"


def test_refusals(tmp_path):
    with pytest.raises(CubeError, match="non-empty"):
        write_maps_fits(tmp_path / "m.fits", {})
    with pytest.raises(CubeError, match="2-D"):
        write_maps_fits(tmp_path / "m.fits", {"a": np.ones((2, 3, 4))})
    with pytest.raises(CubeError, match="must match"):
        write_maps_fits(tmp_path / "m.fits", {"a": np.ones((3, 3)), "b": np.ones((3, 4))})
    with pytest.raises(CubeError, match="used twice"):
        write_maps_fits(tmp_path / "m.fits", {"a": np.ones((3, 3)), "A": np.ones((3, 3))})
    assert list(tmp_path.iterdir()) == []
    write_maps_fits(tmp_path / "m.fits", {"a": np.ones((3, 3))})
    with pytest.raises(FileExistsError):
        write_maps_fits(tmp_path / "m.fits", {"a": np.zeros((3, 3))})
    write_maps_fits(tmp_path / "m.fits", {"a": np.zeros((3, 3))}, overwrite=True)
    assert read_maps_fits(tmp_path / "m.fits").maps["a"].sum() == 0

"""Responses: OGIP ARF/RMF reading (variable-length groups), folding, band restriction, Gaussian."""

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from napari_sushi.core.response import (
    ResponseError,
    gaussian_response,
    load_response,
    read_response,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "responses"


@pytest.fixture(scope="module")
def acis():
    return load_response("chandra-acis-i-cy0")


def test_shipped_acis_response_matches_shared_copy(acis):
    if not SHARED.is_dir():
        pytest.skip(f"reference data folder {SHARED} is absent")
    ref = read_response(SHARED / "acisi_aimpt_cy0.rmf", SHARED / "acisi_aimpt_cy0.arf")
    assert np.array_equal(ref.dense_matrix(), acis.dense_matrix())
    assert np.array_equal(ref.arf, acis.arf)


def test_acis_rmf_rows_sum_to_one(acis):
    assert acis.matrix.shape == (937, 1024)
    assert acis.channels[0] == 1 and acis.channels[-1] == 1024
    rows = acis.row_sums()
    assert np.allclose(rows, 1.0, atol=1e-4)


def test_flat_spectrum_fold_matches_arf(acis):
    # 1 photon/cm2/s/keV folded for 1 s: counts in 1-keV channel ranges vs the ARF integrated there
    flux = np.diff(acis.energy_edges)[None, :]
    counts = acis.fold(flux)[0]
    ce = acis.channel_edges
    fine = np.linspace(0.2, 10.0, 98001)
    fine_c = 0.5 * (fine[1:] + fine[:-1])
    area_fine = np.interp(fine_c, acis.energy_centers, acis.arf)
    for lo in range(1, 7):
        m = (ce[:-1] >= lo) & (ce[1:] <= lo + 1)
        a0, a1 = ce[:-1][m][0], ce[1:][m][-1]
        sel = (fine_c >= a0) & (fine_c < a1)
        expected = area_fine[sel].sum() * (fine[1] - fine[0])
        assert counts[m].sum() == pytest.approx(expected, rel=0.02), f"{lo}-{lo + 1} keV"


def test_restrict_toy_band_gives_375_channels(acis):
    r = acis.restrict(3.0, 8.483)
    assert r.n_channels == 375
    assert (r.channels[0], r.channels[-1]) == (207, 581)
    assert r.channel_edges[0] == pytest.approx(3.0076, abs=1e-4)
    assert r.channel_edges[-1] == pytest.approx(8.4826, abs=1e-4)
    # the nominal 3-8.48 keV selects 374 whole channels of this RMF (documented)
    assert acis.restrict(3.0, 8.48).n_channels == 374
    # folding on the restricted response equals the full fold on those channels
    flux = np.exp(-acis.energy_centers / 2.0)[None, :] * np.diff(acis.energy_edges)
    full = acis.fold(flux)[0][acis.channel_mask(3.0, 8.483)]
    sub_flux = np.exp(-r.energy_centers / 2.0)[None, :] * np.diff(r.energy_edges)
    assert np.allclose(r.fold(sub_flux)[0], full, rtol=1e-4)


def test_band_not_covered_is_an_error(acis):
    with pytest.raises(ResponseError, match="not covered"):
        acis.restrict(3.0, 20.0)
    g = gaussian_response(0.13, 0.5, 1.0, 5.0)
    with pytest.raises(ResponseError, match="not covered"):
        g.restrict(0.5, 4.0)
    with pytest.raises(ResponseError, match="emin < emax"):
        acis.restrict(5.0, 3.0)


def test_fold_shape_errors(acis):
    with pytest.raises(ResponseError, match="input energy bins"):
        acis.fold(np.ones((2, 10)))
    with pytest.raises(ResponseError, match="exposure"):
        acis.fold(np.ones(acis.n_energies), exposure=-1)


def test_gaussian_response_resolution_and_area():
    r = gaussian_response(fwhm=0.130, fwhm_power=0.5, emin=4.0, emax=8.0, channel_width=0.005, area=250.0)
    # a delta line at 6 keV: folded FWHM ~ 130 eV
    flux = np.zeros((1, r.n_energies))
    i = np.searchsorted(r.energy_edges, 6.0) - 1
    flux[0, i] = 1.0
    counts = r.fold(flux, exposure=2.0)[0]
    c = r.channel_centers
    mean = (counts * c).sum() / counts.sum()
    sigma = np.sqrt((counts * (c - mean) ** 2).sum() / counts.sum())
    assert 2.3548 * sigma == pytest.approx(0.130, rel=0.05)
    assert counts.sum() == pytest.approx(2.0 * 250.0, rel=1e-3)
    inner = (r.energy_centers > 4.5) & (r.energy_centers < 7.5)
    assert np.allclose(r.row_sums()[inner], 1.0, atol=1e-6)


def test_named_gaussian_responses():
    ccd = load_response("gaussian-ccd")
    cal = load_response("gaussian-calorimeter")
    assert ccd.channel_edges[1] - ccd.channel_edges[0] == pytest.approx(0.0146)
    band = cal.restrict(6.0, 7.5)
    assert isinstance(band.matrix, np.ndarray) and band.n_channels == 600
    with pytest.raises(ResponseError, match="unknown response"):
        load_response("no-such-response")


def _write_ogip(tmp_path, name="MATRIX", fixed=False):
    """A tiny 3-channel RMF with variable-length groups (2 groups in one row) and its ARF."""
    e = np.array([1.0, 2.0, 3.0, 4.0])
    rows = [  # (F_CHAN, N_CHAN, MATRIX) per input row; channels numbered from 1
        ([1], [2], [0.7, 0.3]),
        ([1, 3], [1, 1], [0.2, 0.8]),
        ([], [], []),
    ]
    cols = [
        fits.Column("ENERG_LO", "E", array=e[:-1]),
        fits.Column("ENERG_HI", "E", array=e[1:]),
        fits.Column("N_GRP", "I", array=[len(r[0]) for r in rows]),
        fits.Column("F_CHAN", "PI()", array=[np.array(r[0], np.int16) for r in rows]),
        fits.Column("N_CHAN", "PI()", array=[np.array(r[1], np.int16) for r in rows]),
        fits.Column("MATRIX", "PE()", array=[np.array(r[2], np.float32) for r in rows]),
    ]
    m = fits.BinTableHDU.from_columns(cols, name=name)
    m.header["DETCHANS"] = 3
    m.header["TLMIN4"] = 1
    eb = fits.BinTableHDU.from_columns(
        [
            fits.Column("CHANNEL", "I", array=[1, 2, 3]),
            fits.Column("E_MIN", "E", array=[1.0, 2.0, 3.0]),
            fits.Column("E_MAX", "E", array=[2.0, 3.0, 4.0]),
        ],
        name="EBOUNDS",
    )
    rmf = tmp_path / "t.rmf"
    fits.HDUList([fits.PrimaryHDU(), m, eb]).writeto(rmf)
    arf = tmp_path / "t.arf"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.BinTableHDU.from_columns(
                [
                    fits.Column("ENERG_LO", "E", array=e[:-1]),
                    fits.Column("ENERG_HI", "E", array=e[1:]),
                    fits.Column("SPECRESP", "E", array=[10.0, 20.0, 30.0]),
                ],
                name="SPECRESP",
            ),
        ]
    ).writeto(arf)
    return rmf, arf


def test_variable_length_groups_and_specresp_matrix(tmp_path):
    rmf, arf = _write_ogip(tmp_path)
    r = read_response(rmf, arf)
    assert np.allclose(r.dense_matrix(), [[0.7, 0.3, 0.0], [0.2, 0.0, 0.8], [0.0, 0.0, 0.0]])
    assert np.allclose(r.fold(np.array([1.0, 1.0, 1.0])), [7 + 4, 3, 16])
    with pytest.raises(ResponseError, match="ARF"):
        read_response(rmf)  # a redistribution-only matrix needs its ARF
    sub = tmp_path / "rsp"
    sub.mkdir()
    rsp, _ = _write_ogip(sub, name="SPECRESP MATRIX")
    r2 = read_response(rsp)
    assert np.allclose(r2.arf, 1.0) and np.allclose(r2.dense_matrix()[1], [0.2, 0.0, 0.8])


def test_mismatched_arf_and_bad_files(tmp_path, acis):
    rmf, _ = _write_ogip(tmp_path)
    with pytest.raises(ResponseError, match="different energy grids"):
        read_response(rmf, Path(__file__).resolve().parents[2] / "napari_sushi" / "data" / "acisi_aimpt_cy0.arf")
    with pytest.raises(FileNotFoundError):
        read_response(tmp_path / "missing.rmf")
    bad = tmp_path / "bad.rmf"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("X", "E", array=[1.0])], name="OTHER")]
    ).writeto(bad)
    with pytest.raises(ResponseError, match="MATRIX"):
        read_response(bad)


def test_group_sums_consecutive_channels_like_native_binning(acis):
    band = acis.restrict(0.5, 8.0)
    g = band.group(3)
    n = band.n_channels // 3
    assert g.n_channels == n == 170
    assert np.array_equal(g.channels, band.channels[: 3 * n : 3]) and g.channels[:2].tolist() == [36, 39]
    assert np.array_equal(g.channel_edges, band.channel_edges[: 3 * n + 1 : 3])
    flux = np.diff(band.energy_edges)[None, :]
    fine, coarse = band.fold(flux)[0], g.fold(flux)[0]
    assert np.allclose(coarse, fine[: 3 * n].reshape(n, 3).sum(1))
    assert g.band == band.band and band.group(1) is band
    with pytest.raises(ResponseError, match="whole number"):
        band.group(0)


def test_write_rmf_and_arf_round_trip(tmp_path):
    from napari_sushi.core.response import write_arf, write_rmf

    r = gaussian_response(0.13, 0.5, 0.5, 3.0, channel_width=0.02, name="g")
    write_rmf(r, tmp_path / "g.rmf")
    write_arf(r, tmp_path / "g.arf")
    back = read_response(tmp_path / "g.rmf", tmp_path / "g.arf")
    assert np.array_equal(back.channels, r.channels)
    assert np.allclose(back.channel_edges, r.channel_edges, rtol=0, atol=1e-6)
    assert np.allclose(back.energy_edges, r.energy_edges, rtol=0, atol=1e-6)
    assert np.allclose(back.dense_matrix(), r.dense_matrix(), rtol=1e-6, atol=1e-9)
    assert np.allclose(back.arf, r.arf, rtol=1e-6)
    with fits.open(tmp_path / "g.rmf") as h:  # variable-length groups, as instrument RMFs store them
        assert h["MATRIX"].header["HDUCLAS3"] == "REDIST" and h["MATRIX"].columns["F_CHAN"].format.startswith("PJ")
    with pytest.raises(FileExistsError):
        write_rmf(r, tmp_path / "g.rmf")


@pytest.mark.parametrize("case", ["text", "empty", "other-grid", "no-ebounds"])
def test_bad_response_files_name_the_file(tmp_path, case):
    from napari_sushi.core.response import write_arf, write_rmf

    r = gaussian_response(0.13, 0.5, 0.5, 3.0, channel_width=0.02)
    rmf, arf = tmp_path / "my.rmf", tmp_path / "my.arf"
    write_rmf(r, rmf)
    write_arf(r, arf)
    if case == "text":
        rmf.write_text("this is not a FITS file\n")
        bad, match = rmf, "my.rmf is not a readable FITS file"
    elif case == "empty":
        arf.write_bytes(b"")
        bad, match = arf, "my.arf is empty"
    elif case == "other-grid":
        write_arf(gaussian_response(0.13, 0.5, 0.5, 4.0, channel_width=0.02), arf, overwrite=True)
        bad, match = arf, "my.arf .* different energy grids"
    else:
        with fits.open(rmf) as h:
            del h["EBOUNDS"]
            h.writeto(tmp_path / "noeb.rmf")
        rmf = tmp_path / "noeb.rmf"
        bad, match = rmf, "noeb.rmf: no EBOUNDS extension"
    with pytest.raises(ResponseError, match=match):
        read_response(rmf, arf)
    assert str(bad.name) in match


def test_an_arf_alone_is_not_read_as_the_rmf(tmp_path):
    from napari_sushi.core.response import write_arf

    r = gaussian_response(0.13, 0.5, 0.3, 9.0, channel_width=0.1)
    arf = write_arf(r, tmp_path / "only.arf")
    with pytest.raises(ResponseError, match="RMF is missing"):
        load_response((None, str(arf)))

"""`napari-sushi bin` and `napari-sushi info`: outputs, messages, exit codes, no partial files."""

from pathlib import Path

import numpy as np
import pytest

from napari_sushi.cli import main
from napari_sushi.core.io import read_fits_cube
from napari_sushi.core.io.synthetic import write_event_file

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MSH = DATA / "chandra_msh1552" / "msh1552_acis_evt2_filtered.fits"


@pytest.fixture
def evt(tmp_path):
    return write_event_file(tmp_path / "evt.fits")


def test_bin_then_info(evt, tmp_path, capsys):
    out = tmp_path / "cube.fits"
    rc = main(["bin", str(evt), "-o", str(out), "--band", "0.5", "8", "--channel-width", "0.5", "--binning", "8"])
    assert rc == 0
    cube = read_fits_cube(out)
    assert cube.shape[0] == 15 and cube.header["SPBIN"] == 8
    printed = capsys.readouterr().out
    assert f"{int(cube.total_counts):,} counts" in printed
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "(15, " in info and "0.5-8 keV" in info and "exposure: 10000.0 s" in info
    assert f"total counts: {int(cube.total_counts):,}" in info and "RA 228." in info
    assert main(["info", str(evt)]) == 0
    info = capsys.readouterr().out
    assert "events: 2,000" in info and "sky x:" in info and "energy:" in info


def test_native_grouped_and_cutout(evt, tmp_path):
    out = tmp_path / "native.fits"
    rc = main(
        [
            "bin",
            str(evt),
            "-o",
            str(out),
            "--band",
            "1",
            "2",
            "--native",
            "--group",
            "2",
            "--binning",
            "4",
            "--cutout",
            "4060",
            "4140",
            "4050",
            "4130",
            "-q",
        ]
    )
    assert rc == 0
    cube = read_fits_cube(out)
    assert cube.shape[1:] == (20, 20)
    assert np.all(np.diff(cube.channels) == 2)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--band", "11", "12", "--binning", "8"], "no events fall in the band"),
        (["--group", "3"], "--group needs --native"),
        (["--channel-width", "0.7"], "whole number"),
        (["--binning", "0"], "binning"),
    ],
)
def test_bin_errors_are_one_line_with_exit_code(evt, tmp_path, capsys, args, message):
    out = tmp_path / "cube.fits"
    rc = main(["bin", str(evt), "-o", str(out), *args])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["evt.fits"]


def test_existing_output_missing_input_and_non_fits(evt, tmp_path, capsys):
    out = tmp_path / "cube.fits"
    out.write_text("keep me")
    assert main(["bin", str(evt), "-o", str(out), "--binning", "8"]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_text() == "keep me"
    assert main(["bin", str(evt), "-o", str(out), "--binning", "8", "--channel-width", "0.5", "--overwrite", "-q"]) == 0
    assert read_fits_cube(out).n_energy == 15
    assert main(["bin", str(tmp_path / "nope.fits"), "-o", str(tmp_path / "x.fits")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "nope.fits")]) == 2
    assert "does not exist" in capsys.readouterr().err
    junk = tmp_path / "junk.txt"
    junk.write_text("hello")
    assert main(["info", str(junk)]) == 2
    assert "not a FITS file" in capsys.readouterr().err


def test_help_exits_cleanly(capsys):
    for cmd in ("bin", "info"):
        with pytest.raises(SystemExit) as exc:
            main([cmd, "--help"])
        assert exc.value.code == 0
    assert "--channel-width" in capsys.readouterr().out


@pytest.mark.skipif(not MSH.exists(), reason=f"real data not found at {MSH} (../shared/data absent)")
def test_bin_msh1552(tmp_path, capsys):
    out = tmp_path / "msh.fits"
    assert (
        main(["bin", str(MSH), "-o", str(out), "--band", "0.5", "8", "--channel-width", "0.1", "--binning", "4"]) == 0
    )
    assert "214,423 counts" in capsys.readouterr().out
    cube = read_fits_cube(out)
    assert cube.shape == (75, 611, 614) and cube.total_counts == 214423


def test_info_on_bare_npy_says_channel_index(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.ones((4, 3, 3)))
    assert main(["info", str(tmp_path / "a.npy")]) == 0
    out = capsys.readouterr().out
    assert "channel index 0-4" in out and "keV" not in out.split("band:")[1].split("\n")[0].replace("no keV", "")


SHIPPED = Path(__file__).resolve().parents[2] / "napari_sushi" / "data"


def test_bin_records_the_response_found_beside_or_given(evt, tmp_path, capsys):
    from astropy.io import fits

    out = tmp_path / "cube.fits"
    assert main(["bin", str(evt), "-o", str(out), "--native", "--binning", "16"]) == 0
    assert "response: none found" in capsys.readouterr().out
    assert fits.getheader(out)["RESPFILE"] == "NONE"
    # the response beside the event list is found, recorded relative to the cube and read back
    for suffix in ("rmf", "arf"):
        (tmp_path / f"acisi_aimpt_cy0.{suffix}").symlink_to(SHIPPED / f"acisi_aimpt_cy0.{suffix}")
    assert main(["bin", str(evt), "-o", str(out), "--native", "--binning", "16", "--overwrite"]) == 0
    printed = capsys.readouterr().out
    assert "response: " in printed and "(beside the event list)" in printed
    cube = read_fits_cube(out)
    assert fits.getheader(out)["RESPFILE"] == "acisi_aimpt_cy0.rmf"  # beside the cube: relative
    assert (
        cube.response.rmf == tmp_path / "acisi_aimpt_cy0.rmf" and cube.response.arf == tmp_path / "acisi_aimpt_cy0.arf"
    )
    assert main(["info", str(out)]) == 0
    assert "response: " in capsys.readouterr().out
    # an explicit --arf replaces only the ARF
    other = tmp_path / "sub"
    other.mkdir()
    (other / "mine.arf").symlink_to(SHIPPED / "acisi_aimpt_cy0.arf")
    assert (
        main(
            [
                "bin",
                str(evt),
                "-o",
                str(out),
                "--native",
                "--binning",
                "16",
                "--arf",
                str(other / "mine.arf"),
                "--overwrite",
                "-q",
            ]
        )
        == 0
    )
    assert fits.getheader(out)["ANCRFILE"] == "sub/mine.arf"
    assert main(["bin", str(evt), "-o", str(out), "--arf", str(tmp_path / "none.arf"), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "the ARF" in err and "none.arf does not exist" in err and "Traceback" not in err


def test_info_on_a_plain_fits_image(tmp_path, capsys):
    from astropy.io import fits

    fits.PrimaryHDU(np.ones((5, 6))).writeto(tmp_path / "img.fits")
    assert main(["info", str(tmp_path / "img.fits")]) == 0
    assert "FITS image (5, 6)" in capsys.readouterr().out


def _fit_export(tmp_path, include_cubes):
    """A 3-iteration SUSHI fit of the analytic 8x8 toy (2x2 binning), exported with the dock's run label."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_napari"))
    from app_helpers import LineModel, PowerLawModel, make_cube
    from napari_sushi.core.solver.settings import Component, FitSettings
    from napari_sushi.core.solver.sushi import fit

    cube, _ = make_cube(8, 8)
    res = fit(
        cube,
        [Component("thermal", LineModel()), Component("powerlaw", PowerLawModel())],
        FitSettings(max_iter=3, binning=2),
    )
    res.provenance = dict(res.provenance, run="S1")
    name = "with_cubes.fits" if include_cubes else "maps.fits"
    return res, res.to_fits(tmp_path / name, include_cubes=include_cubes)


@pytest.mark.parametrize("include_cubes", [True, False])
def test_info_describes_a_fit_export_as_maps(tmp_path, capsys, include_cubes):
    res, path = _fit_export(tmp_path, include_cubes)
    assert main(["info", str(path)]) == 0
    info = capsys.readouterr().out
    assert "cube (energy" not in info and "total counts" not in info  # not a counts cube
    assert "kind: fit result maps (SUSHI; not a cube to fit), 4x4 pixels, binning 2" in info
    assert "run: S1" in info and f"{res.stop_reason} after {res.n_iter} iterations" in info
    assert "thermal kT [keV]" in info and "thermal velocity [km/s]" in info and "thermal kT sigma [keV]" in info
    share = 100 * res.measured()["thermal kT"].mean()
    assert f"thermal kT {share:.0f} %" in info
    for comp, model in res.provenance["models"].items():
        assert f"model {comp}: {model['family']} identity {model['identity']}" in info
    if include_cubes:
        assert "cubes: included (thermal model, powerlaw model, model, residual) over 3-8 keV (40 channels)" in info
    else:
        assert "cubes: not included" in info


def test_info_on_plain_maps_stays_a_map_set(tmp_path, capsys):
    from napari_sushi.core.io import write_maps_fits

    path = write_maps_fits(tmp_path / "m.fits", {"kT": np.full((3, 4), 2.0)}, units={"kT": "keV"})
    assert main(["info", str(path)]) == 0
    info = capsys.readouterr().out
    assert "kind: map set" in info and "map kT: 3x4 [keV]" in info

"""`napari-sushi fit` / `pixelfit`: outputs, options, clear errors, Ctrl-C writes nothing."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from napari_sushi.cli import main
from napari_sushi.core.io.fits_cube import write_cube_fits
from napari_sushi.core.io.maps import read_maps_fits

MODELS = ["--model", "toy-thermal-emulator", "--model", "toy-powerlaw-emulator"]


@pytest.fixture(scope="module")
def cube_file(tmp_path_factory):
    from napari_sushi.core.simulate import simulate_remnant

    sim = simulate_remnant("toy", 0)
    c = sim.cube
    small = replace(c, counts=c.counts[:, 40:50, 40:50], wcs=c.wcs[40:50, 40:50])
    path = tmp_path_factory.mktemp("cli") / "toy_small.fits"
    write_cube_fits(small, path)
    return path


def test_fit_writes_maps_with_wcs_and_cubes(cube_file, tmp_path, capsys):
    out = tmp_path / "maps.fits"
    rc = main(
        [
            "fit",
            str(cube_file),
            *MODELS,
            "--max-iter",
            "5",
            "--kmad",
            "2",
            "--kmad",
            "thermal.velocity=4",
            "--with-cubes",
            "-o",
            str(out),
            "-q",
        ]
    )
    assert rc == 0 and out.exists()
    ms = read_maps_fits(out)
    for k in [
        "thermal amplitude",
        "thermal kT",
        "thermal velocity",
        "powerlaw index",
        "thermal kT sigma",
        "goodness of fit",
    ]:
        assert k in ms.maps, k
        assert ms.maps[k].shape == (10, 10)
    assert ms.units["thermal kT"] == "keV" and ms.units["thermal velocity sigma"] == "km/s"
    assert ms.wcs is not None
    assert {"model", "residual", "thermal model"} <= set(ms.cubes)
    prov = ms.provenance
    assert "thermal" in str(prov) and "sushi" in str(prov)
    # refuses to overwrite without --overwrite, then overwrites
    assert main(["fit", str(cube_file), *MODELS, "--max-iter", "2", "-o", str(out), "-q"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["fit", str(cube_file), *MODELS, "--max-iter", "2", "-o", str(out), "-q", "--overwrite"]) == 0


def test_fit_runs_both_phases_unless_threshold_only(cube_file, tmp_path):
    out = tmp_path / "maps.fits"
    assert main(["fit", str(cube_file), *MODELS, "--max-iter", "8", "--tol", "0", "-o", str(out), "-q"]) == 0
    prov = read_maps_fits(out).provenance["provenance"]
    assert (prov["threshold_iterations"], prov["objective_iterations"]) == (4, 4)  # half the budget each
    assert (
        main(
            [
                "fit",
                str(cube_file),
                *MODELS,
                "--max-iter",
                "8",
                "--tol",
                "0",
                "--threshold-only",
                "-o",
                str(out),
                "-q",
                "--overwrite",
            ]
        )
        == 0
    )
    prov = read_maps_fits(out).provenance["provenance"]
    assert (prov["threshold_iterations"], prov["objective_iterations"]) == (8, 0)


def test_pixelfit_fix_and_link(cube_file, tmp_path):
    out = tmp_path / "pix.fits"
    rc = main(
        [
            "pixelfit",
            str(cube_file),
            *MODELS,
            "--max-iter",
            "5",
            "--starts",
            "1",
            "--fix",
            "thermal.velocity=1000",
            "-o",
            str(out),
            "-q",
        ]
    )
    assert rc == 0
    ms = read_maps_fits(out)
    np.testing.assert_allclose(ms.maps["thermal velocity"], 1000.0, rtol=1e-5)


@pytest.mark.parametrize(
    "argv,msg",
    [
        (["--model", "no-such-model"], "shipped models:"),
        (["--model", "wide-thermal-emulator"], "built for"),
        (["--model", "toy-thermal-emulator", "--fix", "thermal.kT"], "--fix wants"),
        (["--model", "toy-thermal-emulator", "--fix", "nope.kT=2"], "no component"),
        (["--model", "toy-thermal-emulator", "--link", "thermal.kT"], "--link wants"),
        (["--model", "toy-thermal-emulator", "--device", "tpu"], "unknown device"),
        (["--model", "toy-thermal-emulator", "--threads", "0"], "--threads wants"),
        (["--model", "toy-thermal-emulator", "--anchor", "loose"], "--anchor wants"),
        (["--model", "toy-thermal-emulator", "--anchor", "thermal.kTT=free"], "not a free map"),
    ],
)
def test_clear_errors(cube_file, tmp_path, capsys, argv, msg):
    out = tmp_path / "x.fits"
    assert main(["fit", str(cube_file), *argv, "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err
    assert not out.exists()


def test_missing_cube(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "none.fits"), *MODELS, "-o", str(tmp_path / "o.fits")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_ctrl_c_stops_cleanly_and_writes_nothing(cube_file, tmp_path):
    out = tmp_path / "never.fits"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "napari_sushi",
            "fit",
            str(cube_file),
            *MODELS,
            "--max-iter",
            "100000",
            "--tol",
            "0",
            "-o",
            str(out),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    first = proc.stderr.readline()  # "fitting ... Ctrl-C cancels" once the fit starts
    assert "fitting" in first, first
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=60)
    err = first + proc.stderr.read()
    assert rc == 130, err
    assert "nothing was written" in err
    assert not out.exists()
    assert not list(Path(tmp_path).glob(".never*"))  # no temporary leftovers


def test_init_and_warm_start(cube_file, tmp_path, capsys):
    from napari_sushi.cli import build_parser
    from napari_sushi.cli.fit import build_request

    first = tmp_path / "first.fits"
    # the published scheme's anchor and free amplitudes: there the usual start is far from the 20-iteration
    # maps, so what the warm start keeps shows (with the default "auto" anchors the coupled maps start
    # near where they end)
    old = ["--anchor", "start", "--no-regularise-shares"]
    assert main(["fit", str(cube_file), *MODELS, *old, "--max-iter", "20", "-o", str(first), "-q"]) == 0
    prev = read_maps_fits(first).maps
    # the request: --init on the component, the earlier maps as warm start (the core lets init win)
    args = build_parser().parse_args(
        [
            "fit",
            str(cube_file),
            *MODELS,
            "--warm-start",
            str(first),
            "--init",
            "powerlaw.index=3.1",
            "-o",
            str(tmp_path / "w.fits"),
        ]
    )
    _, comps, st = build_request(args, regularised=True)
    assert comps[1].init == {"index": 3.1}
    assert set(st.warm_start.params) == {"thermal kT", "thermal velocity", "powerlaw index"}
    np.testing.assert_array_equal(st.warm_start.amplitudes["thermal"], prev["thermal amplitude"])
    # a warm-started fit continues from the earlier maps: 2 more iterations stay much closer to them
    # than 2 iterations from the usual start (kT and index; this little cube says almost nothing on velocity)
    warm, cold = tmp_path / "warm.fits", tmp_path / "cold.fits"
    assert (
        main(
            ["fit", str(cube_file), *MODELS, *old, "--max-iter", "2", "--warm-start", str(first), "-o", str(warm), "-q"]
        )
        == 0
    )
    assert main(["fit", str(cube_file), *MODELS, *old, "--max-iter", "2", "-o", str(cold), "-q"]) == 0
    for key in ("thermal kT", "powerlaw index"):
        d_warm = np.sqrt(np.mean((read_maps_fits(warm).maps[key] - prev[key]) ** 2))
        d_cold = np.sqrt(np.mean((read_maps_fits(cold).maps[key] - prev[key]) ** 2))
        assert d_warm < 0.5 * d_cold, (key, d_warm, d_cold)
    # a file without these components' maps is refused with what it has
    other = tmp_path / "other.fits"
    assert (
        main(["fit", str(cube_file), "--model", "a=toy-thermal-emulator", "--max-iter", "2", "-o", str(other), "-q"])
        == 0
    )
    assert main(["fit", str(cube_file), *MODELS, "--warm-start", str(other), "-o", str(tmp_path / "x.fits"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "no maps of these components" in err and "a kT" in err and "Traceback" not in err
    assert (
        main(
            [
                "fit",
                str(cube_file),
                *MODELS,
                "--warm-start",
                str(tmp_path / "none.fits"),
                "-o",
                str(tmp_path / "x.fits"),
                "-q",
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


def test_summary_says_how_much_the_pixels_constrain(cube_file, tmp_path, capsys):
    # the closing summary gives, per parameter map, the share of pixels whose sigma is at least the
    # validity box's spread (the pixel-spectrum dock's "unconstrained"), as computed from the written maps
    out = tmp_path / "maps.fits"
    assert main(["fit", str(cube_file), *MODELS, "--max-iter", "4", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    ms = read_maps_fits(out)
    caps = ms.provenance["provenance"]["sigma_caps"]
    for key, width in (("thermal kT", 4.5), ("thermal velocity", 12000.0), ("powerlaw index", 2.5)):
        assert np.isclose(caps[key], width / np.sqrt(12.0))
        share = 100 * np.mean(ms.maps[f"{key} sigma"] >= (1 - 1e-4) * caps[key])
        line = next(x for x in text.splitlines() if x.strip().startswith(f"{key}: median"))
        assert f"{share:.0f} % of pixels not constrained" in line, (line, share)
    assert "follows its neighbours and its start" in text


def test_fit_regularise_shares_is_recorded_and_amplitudes_add_up(cube_file, tmp_path):
    out = tmp_path / "maps.fits"
    assert (
        main(
            [
                "fit",
                str(cube_file),
                *MODELS,
                "--max-iter",
                "6",
                "--regularise-shares",
                "--kmad",
                "share=2",
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    ms = read_maps_fits(out)
    assert ms.provenance["provenance"]["settings"]["regularise_shares"] is True
    assert ms.provenance["provenance"]["settings"]["kmad"] == {"share": 2.0}
    assert "thermal share" not in ms.maps  # shares are a way to fit, the maps stay amplitudes
    assert np.all(ms.maps["thermal amplitude"] >= 0) and np.all(ms.maps["powerlaw amplitude"] >= 0)


def test_cli_warnings_are_one_line_for_the_user(cube_file, tmp_path, capsys):
    out = tmp_path / "maps.fits"
    argv = ["fit", str(cube_file), *MODELS, "--max-iter", "4", "--anchor", "thermal.kT=free", "-o", str(out), "-q"]
    assert main([*argv, "--no-regularise-shares"]) == 0  # free anchors with free amplitudes: measured to drift
    err = capsys.readouterr().err
    assert "napari-sushi fit: warning: free anchors" in err and "UserWarning" not in err and ".py:" not in err
    assert read_maps_fits(out).provenance["provenance"]["settings"]["regularise_shares"] is False
    assert main([*argv, "--overwrite"]) == 0  # shares regularised by default: nothing to warn about
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags,recorded",
    [
        (["--anchor", "free"], "free"),
        # maps not named are chosen by "auto", and recorded as chosen
        (
            ["--anchor", "thermal.kT=free", "--anchor", "share=coarse"],
            {"thermal.kT": "free", "thermal.velocity": "start", "powerlaw.index": "coarse", "thermal.share": "coarse"},
        ),
        (
            ["--anchor", "free", "--anchor", "powerlaw.index=start"],
            {"thermal.kT": "free", "thermal.velocity": "free", "powerlaw.index": "start", "share": "free"},
        ),
        (
            [],
            {
                "thermal.kT": "coarse",
                "thermal.velocity": "start",
                "powerlaw.index": "coarse",
                "thermal.share": "coarse",
            },
        ),
    ],
)
def test_fit_anchor_is_recorded(cube_file, tmp_path, flags, recorded):
    out = tmp_path / "maps.fits"
    argv = ["fit", str(cube_file), *MODELS, "--max-iter", "6", *flags, "-o", str(out), "-q"]
    assert main(argv) == 0
    assert read_maps_fits(out).provenance["provenance"]["settings"]["anchor"] == recorded


# ------------------------------------------------------------ defaults and event lists (issue 15)
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MSH = DATA / "chandra_msh1552" / "msh1552_acis_evt2_filtered.fits"
SHIPPED = Path(__file__).resolve().parents[2] / "napari_sushi" / "data"


@pytest.fixture
def event_dir(tmp_path):
    """A synthetic ACIS event list with the shipped response beside it."""
    from napari_sushi.core.io.synthetic import write_event_file

    evt = write_event_file(tmp_path / "evt.fits")
    for suffix in ("rmf", "arf"):
        (tmp_path / f"acisi_aimpt_cy0.{suffix}").symlink_to(SHIPPED / f"acisi_aimpt_cy0.{suffix}")
    return evt


def test_fit_without_model_picks_the_models_of_the_cubes_grid(cube_file, tmp_path, capsys):
    out = tmp_path / "maps.fits"
    assert main(["fit", str(cube_file), "--max-iter", "2", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "models matching the cube: toy-thermal-emulator, toy-powerlaw-emulator" in err
    models = read_maps_fits(out).provenance["provenance"]["models"]
    assert {m["component"]: m["family"] for m in models.values()} == {"thermal": "emulator", "powerlaw": "emulator"}


def test_fit_without_model_and_no_matching_grid_says_to_train(tmp_path, capsys):
    from napari_sushi.core.cube import HyperCube

    cube = write_cube_fits(HyperCube(np.ones((20, 4, 4)), np.linspace(1.0, 3.0, 21)), tmp_path / "c.fits")
    out = tmp_path / "x.fits"
    assert main(["fit", str(cube), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "no installed model matches the cube's energy grid (20 bins 1-3 keV)" in err
    assert "napari-sushi train --rmf" in err and "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("extra", [[], ["--binning", "16"]])
def test_event_list_without_bin_events_points_to_bin(event_dir, tmp_path, capsys, extra):
    out = tmp_path / "x.fits"
    assert main(["fit", str(event_dir), *MODELS, *extra, "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "is an event list, not a cube" in err and "napari-sushi bin" in err and "--bin-events" in err
    assert "larger spatial binning" not in err and not out.exists()


def test_event_options_on_a_cube_are_refused(cube_file, tmp_path, capsys):
    assert main(["fit", str(cube_file), *MODELS, "--cutout", "0", "1", "0", "1", "-o", str(tmp_path / "x.fits")]) == 2
    assert "--cutout apply to event lists only" in capsys.readouterr().err


def test_fit_bin_events_bins_natively_and_records_the_response(event_dir, tmp_path, capsys):
    out = tmp_path / "maps.fits"
    assert main(["fit", str(event_dir), "--bin-events", "--binning", "32", "--max-iter", "2", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "512 native channels (0.511-7.986 keV)" in err and "of 32 sky pixels" in err
    assert "beside the event list" in err
    assert "models matching the cube: wide-thermal-emulator, wide-powerlaw-emulator" in err
    ms = read_maps_fits(out)
    prov = ms.provenance["provenance"]
    assert prov["data_response"]["rmf"] == str(event_dir.parent / "acisi_aimpt_cy0.rmf")
    assert prov["settings"]["binning"] == 1  # --binning went to the events, not twice
    from napari_sushi.core.io import bin_events

    ref = bin_events(event_dir, native=True, binning=32)
    assert ms.maps["goodness of fit"].shape == ref.shape[1:]


@pytest.mark.skipif(not MSH.exists(), reason=f"real data not found at {MSH} (../shared/data absent)")
def test_fit_real_event_list_with_bin_events(tmp_path, capsys):
    out = tmp_path / "msh.fits"
    assert (
        main(
            [
                "fit",
                str(MSH),
                "--bin-events",
                "--binning",
                "64",
                "--cutout",
                "3600",
                "4400",
                "3600",
                "4400",
                "--rmf",
                str(SHIPPED / "acisi_aimpt_cy0.rmf"),
                "--arf",
                str(SHIPPED / "acisi_aimpt_cy0.arf"),
                "--max-iter",
                "2",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "x 13 x 13 pixels of 64 sky pixels" in err and "(given)" in err
    assert "wide-thermal-emulator, wide-powerlaw-emulator" in err
    assert read_maps_fits(out).maps["thermal kT"].shape == (13, 13)


def test_object_array_mask_is_refused_naming_the_file(cube_file, tmp_path, capsys):
    bad = tmp_path / "objmask.npy"
    np.save(bad, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    out = tmp_path / "maps.fits"
    assert main(["fit", str(cube_file), *MODELS, "--max-iter", "2", "--mask", str(bad), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "objmask.npy" in err and "pickle" in err and "Traceback" not in err
    assert not out.exists()

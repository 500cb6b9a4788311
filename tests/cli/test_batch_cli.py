"""`napari-sushi batch` and `fit --tile`: outputs, resumption, exit codes and clear errors."""

from dataclasses import replace

import pytest

from napari_sushi.cli import main
from napari_sushi.core.io.fits_cube import write_cube_fits
from napari_sushi.core.io.maps import read_maps_fits

MODELS = ["--model", "toy-thermal-emulator", "--model", "toy-powerlaw-emulator"]


@pytest.fixture(scope="module")
def cube_file(tmp_path_factory):
    from napari_sushi.core.simulate import simulate_remnant

    c = simulate_remnant("toy", 0).cube
    small = replace(c, counts=c.counts[:, 30:62, 30:62], wcs=c.wcs[30:62, 30:62])
    path = tmp_path_factory.mktemp("batchcli") / "toy32.fits"
    write_cube_fits(small, path)
    return path


def test_batch_command_fits_skips_and_fails_cleanly(tmp_path, cube_file, capsys):
    spec = tmp_path / "b.toml"
    spec.write_text(
        '[defaults]\nmodels = ["toy-thermal-emulator", "toy-powerlaw-emulator"]\nsettings = { max_iter = 4 }\n'
        f'[[cube]]\ninput = "{cube_file}"\nname = "good"\n'
        '[[cube]]\ninput = "missing.fits"\nname = "gone"\n'
    )
    assert main(["batch", str(spec), "--dry-run"]) == 0
    assert "good:" in capsys.readouterr().out
    assert main(["batch", str(spec), "-q"]) == 1  # one cube failed
    err = capsys.readouterr()
    assert "gone failed" in err.err and "does not exist" in err.err and "1 fitted" in err.out
    assert read_maps_fits(tmp_path / "good_maps.fits").maps["thermal kT"].shape == (32, 32)
    assert main(["batch", str(spec), "-q"]) == 1
    assert "1 skipped" in capsys.readouterr().out


def test_batch_command_refuses_a_bad_spec(tmp_path, capsys):
    spec = tmp_path / "b.toml"
    spec.write_text('[[cube]]\ninput = "a.fits"\nsettings = { kmad = "strong" }\n')
    assert main(["batch", str(spec)]) == 2
    assert "kmad must be a number" in capsys.readouterr().err


def test_fit_tile_writes_stitched_maps(tmp_path, cube_file):
    out = tmp_path / "tiled.fits"
    rc = main(["fit", str(cube_file), *MODELS, "--max-iter", "6", "--tile", "16", "--halo", "4", "-o", str(out), "-q"])
    assert rc == 0
    ms = read_maps_fits(out)
    assert ms.maps["thermal kT"].shape == (32, 32)
    tiling = ms.provenance["provenance"]["tiling"]
    assert tiling["n_tiles"] == 4 and tiling["halo"] == 4 and set(tiling["seams"]) >= {"thermal kT"}


def test_cluster_options_need_a_tiled_fit(tmp_path, cube_file, capsys):
    rc = main(["fit", str(cube_file), *MODELS, "--workers", "2", "-o", str(tmp_path / "m.fits"), "-q"])
    assert rc == 2 and "apply to tiled fits" in capsys.readouterr().err
    rc = main(["fit", str(cube_file), *MODELS, "--tile", "4", "-o", str(tmp_path / "m.fits"), "-q"])
    assert rc == 2 and "--tile wants a tile size >= 8" in capsys.readouterr().err

"""Batches: the spec's checks, resumable in-process runs with one failure among them, and the same maps
from a Dask LocalCluster of worker processes as from this process."""

from dataclasses import replace

import numpy as np
import pytest

from napari_sushi.core.batch import BatchSpecError, load_spec, run_batch, run_job
from napari_sushi.core.io.fits_cube import write_cube_fits
from napari_sushi.core.io.maps import read_maps_fits

SPEC_HEAD = """
[defaults]
models = ["toy-thermal-emulator", "toy-powerlaw-emulator"]
output_dir = "maps"
settings = { max_iter = 6, kmad = 3.0 }
"""


@pytest.fixture(scope="module")
def cubes(tmp_path_factory):
    """Three 10x10 pieces of the toy remnant, written as FITS cubes."""
    from napari_sushi.core.simulate import simulate_remnant

    c = simulate_remnant("toy", 0).cube
    folder = tmp_path_factory.mktemp("batch")
    paths = []
    for i, (y, x) in enumerate([(40, 40), (30, 50), (50, 30)]):
        small = replace(c, counts=c.counts[:, y : y + 10, x : x + 10], wcs=c.wcs[y : y + 10, x : x + 10])
        p = folder / f"piece{i}.fits"
        write_cube_fits(small, p)
        paths.append(p)
    return paths


def _spec(folder, body: str):
    p = folder / "batch.toml"
    p.write_text(SPEC_HEAD + body)
    return p


def _cube_entries(paths) -> str:
    return "".join(f'\n[[cube]]\ninput = "{p}"\n' for p in paths)


def _maps(path):
    return read_maps_fits(path).maps


def test_spec_resolves_paths_defaults_and_settings(tmp_path, cubes):
    spec = _spec(
        tmp_path,
        _cube_entries(cubes[:1]) + '\n[[cube]]\nname = "strong"\ninput = "other.fits"\noutput = "out/strong.fits"\n'
        'method = "pixelfit"\nsettings = { max_iter = 4 }\nfixed = { "powerlaw.index" = 2.0 }\n',
    )
    jobs = load_spec(spec)
    assert [j.name for j in jobs] == ["piece0", "strong"]
    assert jobs[0].output == tmp_path / "maps" / "piece0_maps.fits"
    assert jobs[1].input == tmp_path / "other.fits" and jobs[1].output == tmp_path / "out" / "strong.fits"
    assert jobs[0].settings == {"max_iter": 6, "kmad": 3.0}
    assert jobs[1].settings == {"max_iter": 4, "kmad": 3.0} and jobs[1].method == "pixelfit"
    assert jobs[1].fixed == {"powerlaw.index": 2.0}


@pytest.mark.parametrize(
    "body, message",
    [
        ('\n[[cube]]\noutput = "a.fits"\n', "has no input"),
        ('\n[[cube]]\ninput = "a.fits"\ncolour = "red"\n', "unknown key"),
        ('\n[[cube]]\ninput = "a.fits"\nsettings = { kmadd = 3 }\n', "unknown key.*kmadd"),
        ('\n[[cube]]\ninput = "a.fits"\nsettings = { max_iter = "many" }\n', "max_iter must be a whole number"),
        ('\n[[cube]]\ninput = "a.fits"\n\n[[cube]]\ninput = "b/a.fits"\n', "writes .* as cube a does"),
        ('\n[[cube]]\ninput = "a.fits"\noutput = "a.fits"\n', "is the input"),
        ('\n[[cube]]\ninput = "a.fits"\nmethod = "xspec"\n', "method must be one of"),
        ('\n[[cube]]\ninput = "a.fits"\ntiles = { halo = 4 }\n', "size \\(required\\)"),
        ("\n[[cube]\n", "not valid TOML"),
        ("", "lists no cubes"),
    ],
)
def test_spec_errors_say_what_to_change(tmp_path, body, message):
    with pytest.raises(BatchSpecError, match=message):
        load_spec(_spec(tmp_path, body))


def test_batch_runs_resumes_and_reports_a_failure_without_stopping(tmp_path, cubes):
    bad = tmp_path / "not_a_cube.fits"
    bad.write_text("this is not FITS")
    spec = _spec(tmp_path, _cube_entries([cubes[0], bad, cubes[1]]))
    jobs = load_spec(spec)
    seen = []
    outcomes = run_batch(jobs, on_done=lambda o: seen.append(o.status))
    assert [o.status for o in outcomes] == ["done", "failed", "done"]
    assert "not a FITS file" in outcomes[1].message and not jobs[1].output.exists()
    assert sorted(seen) == ["done", "done", "failed"]
    first = _maps(jobs[0].output)
    assert "thermal kT" in first and first["thermal kT"].shape == (10, 10)
    # a second run skips what is finished and retries the failure only
    again = run_batch(jobs)
    assert [o.status for o in again] == ["skipped", "failed", "skipped"]
    # each output is the fit of its cube as run_job does it, alone
    alone = replace(jobs[2], output=tmp_path / "alone.fits")
    assert run_job(alone).status == "done"
    for k, v in _maps(alone.output).items():
        np.testing.assert_array_equal(_maps(jobs[2].output)[k], v, err_msg=k)


@pytest.mark.slow
def test_local_cluster_gives_the_in_process_maps(tmp_path, cubes):
    pytest.importorskip("distributed")
    from napari_sushi.core.cluster import dask_client

    for name in ("here", "there"):
        (tmp_path / name).mkdir()
    here = load_spec(_spec(tmp_path / "here", _cube_entries(cubes)))
    assert [o.status for o in run_batch(here)] == ["done"] * 3
    there = load_spec(_spec(tmp_path / "there", _cube_entries(cubes)))
    with dask_client(workers=2) as client:
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2
        outcomes = run_batch(there, client=client)
    assert [o.status for o in outcomes] == ["done"] * 3
    for a, b in zip(here, there):
        ma, mb = _maps(a.output), _maps(b.output)
        assert ma.keys() == mb.keys()
        for k in ma:
            np.testing.assert_allclose(mb[k], ma[k], rtol=1e-6, atol=1e-6, err_msg=f"{a.name} {k}")


def test_a_batch_cube_with_tiles_is_fitted_in_tiles(tmp_path, cubes):
    spec = _spec(tmp_path, f'\n[[cube]]\ninput = "{cubes[0]}"\ntiles = {{ size = 8, halo = 2, rounds = 2 }}\n')
    (job,) = load_spec(spec)
    assert job.tiles == {"size": 8, "halo": 2, "rounds": 2}
    assert run_job(job).status == "done"
    from napari_sushi.core.io.maps import read_maps_fits

    tiling = read_maps_fits(job.output).provenance["provenance"]["tiling"]
    assert tiling["n_tiles"] == 4 and tiling["halo"] == 2 and len(tiling["rounds"]) <= 2

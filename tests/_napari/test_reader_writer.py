"""napari reader and writer contributions (functions without a viewer, plus one real viewer)."""

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from napari_sushi._napari.reader import get_reader
from napari_sushi._napari.writer import write_image
from napari_sushi.core.cube import CubeError, HyperCube
from napari_sushi.core.io import read_fits_cube, read_maps_fits, write_cube_fits, write_maps_fits
from napari_sushi.core.io.synthetic import write_event_file


def _wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [228.48, -59.13]
    w.wcs.crpix = [3.0, 2.0]
    w.wcs.cdelt = [-0.0005, 0.0005]
    return w


@pytest.fixture
def cube_file(tmp_path):
    counts = np.random.default_rng(1).poisson(3, (10, 6, 7)).astype(np.int32)
    cube = HyperCube(counts, np.linspace(3.0, 8.0, 11), wcs=_wcs(), exposure=500.0, name="toy")
    maps = {"kT": np.full((6, 7), 2.0), "brightness": np.ones((6, 7))}
    path = write_cube_fits(
        cube, tmp_path / "toy.fits", maps={"kT": maps["kT"]}, units={"kT": "keV"}, map_header={"TRUTH": True}
    )
    return path, cube


def test_cube_opens_as_one_layer_with_energy_in_kev_and_hidden_truth_maps(cube_file):
    path, cube = cube_file
    reader = get_reader(str(path))
    assert callable(reader)
    layers = reader(str(path))
    data, kw, kind = layers[0]
    assert kind == "image" and data.shape == (10, 6, 7)
    np.testing.assert_array_equal(data, cube.counts)
    assert np.allclose(kw["scale"], (0.5, 1, 1)) and np.allclose(kw["translate"], (3.25, 0, 0))
    assert kw["axis_labels"] == ("energy", "y", "x") and kw["units"][0] == "keV"
    md = kw["metadata"]
    np.testing.assert_allclose(md["energy_edges"], cube.energy_edges)
    assert md["exposure"] == 500.0 and md["wcs"] is not None and "RA---TAN" in md["wcs_header"]
    truth = layers[1]
    assert truth[1]["visible"] is False and truth[1]["metadata"]["unit"] == "keV"
    assert np.allclose(truth[1]["scale"], (1, 1))


def test_non_uniform_bins_use_bin_index(tmp_path):
    cube = HyperCube(np.ones((3, 4, 4)), [1.0, 1.5, 2.5, 5.0])
    path = write_cube_fits(cube, tmp_path / "nu.fits")
    data, kw, _ = get_reader(str(path))(str(path))[0]
    assert kw["scale"][0] == 1.0 and "bin index" in kw["metadata"]["energy_axis"]


def test_event_list_and_arrays_open(tmp_path):
    evt = write_event_file(tmp_path / "evt.fits")
    layers = get_reader(str(evt))(str(evt))
    assert len(layers) == 1
    data, kw, _ = layers[0]
    # native ACIS channels lying entirely in 0.5-8 keV: channel i spans (i-1)..i x 14.6 eV -> 36..547
    md = kw["metadata"]
    assert data.shape[0] == 512 and np.isclose(kw["scale"][0], 0.0146)
    np.testing.assert_array_equal(md["channels"], np.arange(36, 548))
    np.testing.assert_allclose(md["energy_edges"][[0, -1]], [35 * 0.0146, 547 * 0.0146])
    assert md["events"]["native"] is True and md["events"]["band"] == (0.5, 8.0)
    assert md["events"]["path"] == str(evt.resolve()) and md["response"] is None
    # the image side stays within 512 pixels (here the events span ~300 sky pixels: no binning)
    assert max(data.shape[1:]) <= 512 and md["events"]["binning"] == 1
    # a list without pi falls back to 0.1 keV channels and says why
    from napari_sushi.core.io.synthetic import synthetic_events

    cols = synthetic_events()
    cols.pop("pi")
    nopi = write_event_file(tmp_path / "nopi.fits", columns=cols)
    with pytest.warns(UserWarning, match="0.1 keV channels, not native ones: it has no pi column"):
        data, kw, _ = get_reader(str(nopi))(str(nopi))[0]
    assert data.shape[0] == 75 and np.isclose(kw["scale"][0], 0.1) and kw["metadata"]["events"]["native"] is False
    np.savez(tmp_path / "c.npz", counts=np.ones((4, 3, 3)), energy_edges=[1, 2, 3, 4, 5])
    data, kw, _ = get_reader(str(tmp_path / "c.npz"))(str(tmp_path / "c.npz"))[0]
    assert np.isclose(kw["translate"][0], 1.5) and kw["units"][0] == "keV"
    np.save(tmp_path / "bare.npy", np.ones((4, 3, 3)))
    with pytest.warns(UserWarning, match="no energy_edges"):
        data, kw, _ = get_reader(str(tmp_path / "bare.npy"))(str(tmp_path / "bare.npy"))[0]
    assert kw["units"][0] == "dimensionless" and "channel index" in kw["metadata"]["energy_axis"]


def test_reader_declines_files_it_cannot_handle(tmp_path):
    (tmp_path / "notes.fits").write_text("not fits")
    assert get_reader(str(tmp_path / "notes.fits")) is None
    assert get_reader(str(tmp_path / "missing.fits")) is None
    assert get_reader(str(tmp_path)) is None
    # a FITS with no image or events: accepted (we may be the preferred reader), then a clear error
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.BinTableHDU.from_columns([fits.Column(name="rate", format="E", array=np.ones(3))], name="LIGHTCURVE"),
        ]
    ).writeto(tmp_path / "lc.fits")
    reader = get_reader(str(tmp_path / "lc.fits"))
    with pytest.raises(CubeError, match="holds no image, cube or event list .only the tables LIGHTCURVE"):
        reader(str(tmp_path / "lc.fits"))


def test_plain_fits_images_open_as_image_layers(tmp_path):
    # what napari's own reader would show is not lost when ours is preferred for *.fits
    fits.PrimaryHDU(np.ones((3, 4, 4))).writeto(tmp_path / "noaxis.fits")
    data, kw, kind = get_reader(str(tmp_path / "noaxis.fits"))(str(tmp_path / "noaxis.fits"))[0]
    assert kind == "image" and data.shape == (3, 4, 4) and "energy_edges" not in kw["metadata"]
    assert kw["units"] == ("pixel", "pixel", "pixel")
    img = np.arange(20.0).reshape(4, 5)
    hdu = fits.PrimaryHDU(img, header=_wcs().to_header())
    hdu.header["BUNIT"] = "count"
    hdu.writeto(tmp_path / "counts.fits")
    layers = get_reader(str(tmp_path / "counts.fits"))(str(tmp_path / "counts.fits"))
    assert len(layers) == 1
    data, kw, kind = layers[0]
    np.testing.assert_array_equal(data, img)
    assert np.allclose(kw["scale"], (1.8, 1.8)) and kw["units"] == ("arcsec", "arcsec")  # 0.0005 deg
    assert kw["metadata"]["wcs"] is not None and kw["metadata"]["unit"] == "count"


def test_writer_round_trips_cube_and_map(cube_file, tmp_path):
    path, cube = cube_file
    data, kw, _ = get_reader(str(path))(str(path))[0]
    out = write_image(str(tmp_path / "saved.fits"), data, kw)
    back = read_fits_cube(out[0])
    np.testing.assert_array_equal(back.counts, cube.counts)
    np.testing.assert_allclose(back.energy_edges, cube.energy_edges)
    assert back.wcs is not None and back.exposure == 500.0
    meta = {"unit": "km/s", "wcs": _wcs(), "provenance": {"component": "thermal", "seed": 1}}
    out = write_image(str(tmp_path / "v.fits"), np.full((6, 7), 300.0), {"name": "velocity", "metadata": meta})
    ms = read_maps_fits(out[0])
    assert ms.units["velocity"] == "km/s" and ms.provenance == meta["provenance"] and ms.wcs is not None
    with pytest.raises(CubeError, match="no energy axis"):
        write_image(str(tmp_path / "x.fits"), np.ones((3, 4, 4)), {"name": "stack", "metadata": {}})
    with pytest.raises(CubeError, match="4-D"):
        write_image(str(tmp_path / "y.fits"), np.ones((2, 3, 4, 4)), {"name": "t"})


def test_map_file_opens_as_layers(tmp_path):
    path = write_maps_fits(
        tmp_path / "m.fits", {"kT": np.ones((4, 4)), "norm": np.zeros((4, 4))}, wcs=_wcs(), units={"kT": "keV"}
    )
    layers = get_reader(str(path))(str(path))
    assert [lay[1]["name"] for lay in layers] == ["kT", "norm"]
    assert all(lay[1]["visible"] for lay in layers)


def test_binned_cube_opens_in_a_real_viewer(make_napari_viewer, tmp_path):
    evt = write_event_file(tmp_path / "evt.fits")
    cube_path = tmp_path / "binned.fits"
    from napari_sushi.core.io import bin_events

    cube = bin_events(evt, band=(0.5, 8.0), channel_width=0.5, binning=8)
    write_cube_fits(cube, cube_path, maps={"truth kT": np.ones(cube.shape[1:])}, map_header={"TRUTH": True})
    viewer = make_napari_viewer(show=False)
    layers = viewer.open(str(cube_path), plugin="napari-sushi")
    assert [lay.name for lay in layers][0] == "binned"
    layer = layers[0]
    assert layer.data.shape == cube.shape and layers[1].visible is False
    # the energy slider reads keV: world coordinate of slice i is the centre of bin i
    assert viewer.dims.axis_labels[0] == "energy"
    lo, hi, step = viewer.dims.range[0]
    assert np.isclose(step, 0.5) and np.isclose(lo, 0.75)
    viewer.dims.set_point(0, 3.25)  # 3.0-3.5 keV -> bin 5
    assert viewer.dims.current_step[0] == 5
    np.testing.assert_allclose(layer.metadata["energy_edges"], cube.energy_edges)


# ------------------------------------------------------------------ reader preference (issue 15)
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MSH = DATA / "chandra_msh1552" / "msh1552_acis_evt2_filtered.fits"
RESPONSES = DATA / "responses"
needs_msh = pytest.mark.skipif(not MSH.exists(), reason=f"real data not found at {MSH} (../shared/data absent)")


@pytest.fixture
def reader_settings(monkeypatch):
    """napari's settings with no reader preference, never saved to the user's settings file."""
    from napari.settings import get_settings

    s = get_settings()
    monkeypatch.setattr(type(s), "_maybe_save", lambda self: None)
    old = dict(s.plugins.extension2reader)
    s.plugins.extension2reader = {}
    yield s
    s.plugins.extension2reader = old


def test_prefer_our_reader_keeps_a_users_choice(reader_settings):
    from napari_sushi._napari.preferences import PATTERNS, prefer_our_reader

    reader_settings.plugins.extension2reader = {"*.fit": "napari", "*.tif": "other-plugin"}
    added = prefer_our_reader()
    pref = reader_settings.plugins.extension2reader
    assert "*.fit" not in added and pref["*.fit"] == "napari" and pref["*.tif"] == "other-plugin"
    assert all(pref[p] == "napari-sushi" for p in PATTERNS if p != "*.fit")
    assert prefer_our_reader() == {}  # nothing left to set


def test_manifest_activates_the_preference(reader_settings):
    from npe2 import PluginManifest

    mf = PluginManifest.from_file(Path(__file__).resolve().parents[2] / "napari.yaml")
    assert mf.on_activate == "napari_sushi._napari.preferences:activate"
    from napari_sushi._napari import preferences

    preferences.activate(None)  # what npe2 calls (with a PluginContext) on activation
    assert reader_settings.plugins.extension2reader["*.evt2"] == "napari-sushi"


@needs_msh
def test_real_event_list_opens_with_our_reader_without_a_dialog(make_napari_viewer, reader_settings, tmp_path):
    from napari.errors import MultipleReaderError

    from napari_sushi._napari.preferences import prefer_our_reader

    # the event list with its response beside it, as an archive download lays them out
    evt = tmp_path / "msh1552_acis_evt2_filtered.fits"
    evt.symlink_to(MSH)
    for suffix in ("rmf", "arf"):
        (tmp_path / f"acisi_aimpt_cy0.{suffix}").symlink_to(RESPONSES / f"acisi_aimpt_cy0.{suffix}")
    viewer = make_napari_viewer(show=False)
    reader_settings.plugins.extension2reader = {}
    with pytest.raises(MultipleReaderError):  # the premise: two readers match *.fits, no preference
        viewer.open(str(evt), plugin=None)
    prefer_our_reader()
    for plugin in (None, "napari-sushi"):
        layers = viewer.open(str(evt), plugin=plugin)
        assert len(layers) == 1
        layer = layers[0]
        md = layer.metadata
        assert layer.data.ndim == 3 and max(layer.data.shape[1:]) <= 512
        np.testing.assert_array_equal(md["channels"], np.arange(36, 548))  # native ACIS channels, 0.5-8 keV
        assert md["response"]["rmf"] == str(tmp_path / "acisi_aimpt_cy0.rmf")  # as laid out (links kept)
        assert md["response"]["arf"] == str(tmp_path / "acisi_aimpt_cy0.arf")
        assert md["response"]["how"] == "beside the event list"
        assert md["events"]["native"] is True and md["events"]["path"] == str(evt.resolve())
        # the cube rebuilt from the layer (what the fit dock fits) carries the response too
        from napari_sushi._napari.result_layers import hypercube_of

        cube = hypercube_of(layer)
        assert cube.response is not None and cube.response.rmf.name == "acisi_aimpt_cy0.rmf"
        assert int(layer.data.sum()) == int(cube.total_counts) > 200_000


def test_cube_layer_carries_the_response_both_ways(tmp_path):
    from napari_sushi._napari.layers import cube_from_layer, cube_layer
    from napari_sushi.core.io import ResponseFiles

    resp = ResponseFiles(tmp_path / "a.rmf", tmp_path / "a.arf", "given")
    cube = HyperCube(np.ones((4, 3, 3)), np.linspace(1.0, 2.0, 5), response=resp)
    data, kw, _ = cube_layer(cube)
    assert kw["metadata"]["response"] == {
        "rmf": str(tmp_path / "a.rmf"),
        "arf": str(tmp_path / "a.arf"),
        "how": "given",
    }
    assert cube_from_layer(data, kw).response == resp
    kw["metadata"]["response"] = None
    assert cube_from_layer(data, kw).response is None


# ------------------------------------------------------------------ exports re-open as runs (issue 16)
def _fit_export(tmp_path, include_cubes=True, run=None, name="run.fits"):
    """A 3-iteration SUSHI fit of the analytic 8x8 toy (2x2 binning) exported as the dock exports it."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from app_helpers import LineModel, PowerLawModel, make_cube
    from napari_sushi.core.solver.settings import Component, FitSettings
    from napari_sushi.core.solver.sushi import fit

    cube, _ = make_cube(8, 8)
    res = fit(
        cube,
        [Component("thermal", LineModel()), Component("powerlaw", PowerLawModel())],
        FitSettings(max_iter=3, binning=2),
    )
    if run is not None:
        res.provenance = dict(res.provenance, run=run)
    return cube, res, res.to_fits(tmp_path / name, include_cubes=include_cubes)


def test_fit_exports_are_maps_not_cubes(tmp_path):
    from napari_sushi.core.io import FileFormatError, file_kind, read_cube
    from napari_sushi.core.io.maps import fit_export

    _, res, with_cubes = _fit_export(tmp_path, run="S1")
    maps_only = res.to_fits(tmp_path / "maps.fits")
    assert file_kind(with_cubes) == "maps" and file_kind(maps_only) == "maps"
    with pytest.raises(FileFormatError, match="maps file .*not counts to fit"):
        read_cube(with_cubes)
    with pytest.raises(FileFormatError, match="not a cube"):
        read_cube(maps_only)
    info = fit_export(read_maps_fits(with_cubes))
    assert (info.method, info.run, info.n_iter, info.binning) == ("sushi", "S1", res.n_iter, 2)
    assert set(info.models) == {"thermal", "powerlaw"}
    # plain map sets are not fit runs
    plain = write_maps_fits(tmp_path / "plain.fits", {"kT": np.ones((4, 4))}, header={"seed": 1})
    assert fit_export(read_maps_fits(plain)) is None


def test_plain_maps_with_cubes_are_never_offered_to_fit(tmp_path):
    from napari_sushi.core.io import file_kind

    path = write_maps_fits(
        tmp_path / "mc.fits",
        {"kT": np.ones((4, 4))},
        cubes={"c": np.ones((3, 4, 4))},
        energy_edges=np.linspace(3, 6, 4),
    )
    assert file_kind(path) == "maps"
    layers = get_reader(str(path))(str(path))
    assert [lay[1]["name"] for lay in layers] == ["kT"] and layers[0][1]["visible"]


def test_fit_export_reopens_as_the_run(make_napari_viewer, tmp_path):
    from napari_sushi._napari import result_layers as L
    from napari_sushi._napari.fit_dock import SushiFitDock
    from napari_sushi._napari.layers import cube_layer

    label = L.run_label("sushi", 1, 5.0)
    cube, res, path = _fit_export(tmp_path, run=label)
    viewer = make_napari_viewer(show=False)
    data, kw, _ = cube_layer(cube)
    cube_ly = viewer.add_image(data, **kw)
    # the names and placement the live run gives (the dock's RunLayers on the same result)
    live = L.RunLayers(viewer, label, L.Geometry.from_cube_layer(cube_ly, 2, 0, res.wcs), dict(res.units))
    live_names = live.finalize(res)
    live_kinds = {n: viewer.layers[n].metadata["kind"] for n in live_names}
    live_geo = {n: (tuple(viewer.layers[n].scale), tuple(viewer.layers[n].translate)) for n in live_names}
    live.remove()

    layers = viewer.open(str(path), plugin="napari-sushi")
    names = [ly.name for ly in layers]
    by_name = {ly.name: ly for ly in layers}
    assert len(set(names)) == len(names)
    expected = set(live_kinds)  # the 'unmeasured' overlays included
    component_models = {L.cube_layer_name(label, f"{c} model") for c in res.model_cubes}
    assert set(names) == expected | component_models
    for n in expected:
        ly = by_name[n]
        assert ly.metadata["kind"] == live_kinds[n], n
        assert (tuple(ly.scale), tuple(ly.translate)) == live_geo[n], n  # on the fitted grid over the cube
        assert ly.metadata["run"] == label and ly.metadata["napari_sushi_result"] is True
        assert ly.metadata["maps_file"] == str(Path(path).resolve())
        assert ly.visible == (ly.metadata["kind"] in {"parameter", "amplitude", "unmeasured"}), n
    # values and units as fitted; parameter maps on top, the first parameter highest
    kT = by_name[L.map_layer_name(label, "thermal kT", "keV")]
    np.testing.assert_allclose(kT.data, res.params["thermal kT"], rtol=1e-6)
    assert kT.metadata["unit"] == "keV" and kT.colormap.name == L.colormap_for("thermal kT", "keV", "parameter")
    top = [ly.name for ly in viewer.layers if ly.metadata.get("kind") in ("parameter", "unmeasured")][::-1]
    assert [n for n in top if by_name[n].metadata["kind"] == "parameter"] == [
        L.map_layer_name(label, k, res.units.get(k, "")) for k in res.params
    ]
    order = [ly.name for ly in viewer.layers]
    for n in top:  # each overlay sits just above its map, and shows where it is not measured
        if by_name[n].metadata["kind"] == "unmeasured":
            key = by_name[n].metadata["key"]
            below = order[order.index(n) - 1]
            assert by_name[below].metadata["key"] == key and by_name[below].metadata["kind"] == "parameter"
            np.testing.assert_array_equal(by_name[n].data > 0.5, ~res.measured()[key])
    # the measured masks ride on their parameter layers, not as map layers of their own
    assert not any("measured" in n for n in names if by_name[n].metadata["kind"] != "unmeasured")
    for key, mask in res.measured().items():
        got = by_name[L.map_layer_name(label, key, res.units.get(key, ""))].metadata["measured"]
        assert got.dtype == bool
        np.testing.assert_array_equal(got, mask)
    model = by_name[L.cube_layer_name(label, "model")]
    np.testing.assert_allclose(model.data, res.model_total, rtol=1e-6)
    np.testing.assert_allclose(model.metadata["energy_edges"], res.energy_edges)
    assert not any(L.is_cube_layer(ly) for ly in layers)
    # the fit dock offers the counts cube only
    dock = SushiFitDock(viewer)
    viewer.window.add_dock_widget(dock, name="SUSHI fit")
    offered = [dock.cube_combo.itemText(i) for i in range(dock.cube_combo.count())]
    assert cube.name in offered and not set(offered) & set(names)


def test_fit_export_without_run_label_takes_the_file_stem(tmp_path):
    from napari_sushi._napari import result_layers as L

    _, res, path = _fit_export(tmp_path, include_cubes=False, name="toy_export.fits")
    layers = get_reader(str(path))(str(path))
    names = [kw["name"] for _, kw, _ in layers]
    assert L.map_layer_name("toy_export", "thermal kT", "keV") in names
    assert not any(kw["metadata"]["kind"] in {"model", "residual"} for _, kw, _ in layers)
    assert all(kw["metadata"]["run"] == "toy_export" for _, kw, _ in layers)

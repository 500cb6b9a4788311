"""Fuzzed readers: every reader either returns a result or raises one of the project's errors.

Seed files of each kind (FITS cube, event list, .fits.gz event list, ARF/RMF, .npy/.npz, model file)
are mutated structurally (renamed/missing columns and keywords, NaN/inf/negative values, wrong
dtypes/shapes, empty tables) and byte-wise (truncation at random offsets, flipped bytes, zero size,
appended garbage). The property: the reader returns, or raises a ``ValueError`` subclass defined in
napari_sushi (FileFormatError, CubeError, ResponseError, ModelFileError...) -- never another exception
type, never a hang (per-case timer), never a file left behind in the case's folder.
"""

from __future__ import annotations

import gzip
import io
import shutil
import signal
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from napari_sushi.core.cube import HyperCube  # noqa: E402
from napari_sushi.core.io import (  # noqa: E402
    bin_events,
    event_summary,
    file_kind,
    read_array_cube,
    read_cube,
    read_fits_cube,
    read_fits_image,
    read_maps_fits,
    write_cube_fits,
)
from napari_sushi.core.response import gaussian_response, read_arf, read_response, read_rmf, write_arf, write_rmf  # noqa: E402

PRETRAINED = Path(__file__).resolve().parents[3] / "napari_sushi" / "pretrained" / "toy-powerlaw-emulator.safetensors"
CASES: dict[str, int] = {}
OUTCOMES: dict[str, int] = {"ok": 0, "project error": 0}
PER_CASE_S = 10.0
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


class Hang(BaseException):  # not Exception: astropy swallows those while scanning HDUs
    pass


def _alarm(signum, frame):  # pragma: no cover - only on a hang
    raise Hang(f"a reader ran past {PER_CASE_S} s")


# ------------------------------------------------------------------------------------ seeds
def _to_bytes(hdul: fits.HDUList) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdul.writeto(buf, output_verify="silentfix")
    return buf.getvalue()


def _cube_hdul() -> fits.HDUList:
    rng = np.random.default_rng(0)
    cube = HyperCube(rng.poisson(3.0, (6, 5, 4)).astype(float), np.linspace(0.5, 8.0, 7), exposure=1e3)
    with tempfile.TemporaryDirectory() as d:
        p = write_cube_fits(cube, Path(d) / "c.fits")
        return fits.HDUList.fromstring(p.read_bytes())


def _events_hdul() -> fits.HDUList:
    rng = np.random.default_rng(1)
    n = 200
    cols = [
        fits.Column("time", "D", array=np.sort(rng.uniform(0, 1e3, n))),
        fits.Column("x", "E", array=rng.uniform(4000, 4040, n)),
        fits.Column("y", "E", array=rng.uniform(4000, 4040, n)),
        fits.Column("energy", "E", unit="eV", array=rng.uniform(600, 7500, n)),
        fits.Column("pi", "J", array=rng.integers(40, 500, n)),
    ]
    ev = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    ev.header["EXPOSURE"] = 1e3
    return fits.HDUList([fits.PrimaryHDU(), ev])


def _response_hduls() -> tuple[fits.HDUList, fits.HDUList]:
    r = gaussian_response(emin=0.5, emax=8.0, channel_width=0.25, oversample=1)
    with tempfile.TemporaryDirectory() as d:
        arf = write_arf(r, Path(d) / "a.arf")
        rmf = write_rmf(r, Path(d) / "r.rmf")
        return fits.HDUList.fromstring(arf.read_bytes()), fits.HDUList.fromstring(rmf.read_bytes())


_SEEDS: dict[str, bytes] = {}


def seed(kind: str) -> fits.HDUList:
    if not _SEEDS:
        arf, rmf = _response_hduls()
        _SEEDS.update(
            cube=_to_bytes(_cube_hdul()), events=_to_bytes(_events_hdul()), arf=_to_bytes(arf), rmf=_to_bytes(rmf)
        )
    return fits.HDUList.fromstring(_SEEDS[kind])


# ------------------------------------------------------------------------------------ mutations
def _table_index(hdul: fits.HDUList, data: st.DataObject) -> int:
    tables = [i for i, h in enumerate(hdul) if isinstance(h, fits.BinTableHDU)]
    return data.draw(st.sampled_from(tables), label="table")


def _mutate_table(hdul: fits.HDUList, data: st.DataObject) -> None:
    i = _table_index(hdul, data)
    hdu = hdul[i]
    names = list(hdu.columns.names)
    col = data.draw(st.sampled_from(names), label="column")
    how = data.draw(
        st.sampled_from(
            ["rename", "drop", "nan", "inf", "negative", "zero", "string", "empty", "extname", "unit", "huge"]
        ),
        label="table mutation",
    )
    cols = [c.copy() for c in hdu.columns]
    k = names.index(col)
    if how == "rename":
        cols[k].name = col + "_X"
    elif how == "drop":
        del cols[k]
    elif how in ("nan", "inf", "negative", "zero", "huge") and cols[k].format.recformat[-2:] in (
        "f4",
        "f8",
        "i4",
        "i8",
        "i2",
    ):
        arr = np.array(hdu.data[col], dtype=float)
        frac = data.draw(st.sampled_from([1.0, 0.5, 0.1]), label="fraction")
        sel = np.arange(arr.size) < max(1, int(frac * arr.size)) if arr.size else np.zeros(0, bool)
        value = {"nan": np.nan, "inf": np.inf, "negative": -1.0, "zero": 0.0, "huge": 1e30}[how]
        arr = arr.copy()
        arr.reshape(arr.shape[0], -1)[sel] = value
        cols[k] = fits.Column(
            col,
            "D" if arr.ndim == 1 else f"{int(np.prod(arr.shape[1:]))}D",
            unit=cols[k].unit,
            array=arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr,
        )
    elif how == "string":
        cols[k] = fits.Column(col, "8A", array=np.array(["abc"] * len(hdu.data)))
    elif how == "unit":
        cols[k].unit = "furlong"
    new = (
        fits.BinTableHDU.from_columns(cols, header=hdu.header, name=hdu.name)
        if how != "empty"
        else fits.BinTableHDU.from_columns(cols, nrows=0, header=hdu.header, name=hdu.name)
    )
    if how == "extname":
        new.name = "JUNK"
    hdul[i] = new


def _mutate_image(hdul: fits.HDUList, data: st.DataObject) -> None:
    img = hdul[0]
    how = data.draw(
        st.sampled_from(["nan", "inf", "negative", "2d", "4d", "int", "bool", "keyword", "zero", "ebounds", "flip"]),
        label="image mutation",
    )
    arr = np.array(img.data, dtype=float)
    if how in ("nan", "inf", "negative"):
        arr.flat[:: data.draw(st.integers(1, 5), label="stride")] = {"nan": np.nan, "inf": np.inf, "negative": -5.0}[
            how
        ]
        img.data = arr
    elif how == "2d":
        img.data = arr[0]
    elif how == "4d":
        img.data = arr[None]
    elif how == "int":
        img.data = arr.astype(np.int16)
    elif how == "bool":
        img.data = (arr > 2).astype(np.uint8)
    elif how == "zero":
        img.data = arr[:, :0, :]
    elif how == "keyword":
        key = data.draw(st.sampled_from(["CTYPE3", "CUNIT3", "CDELT3", "CRVAL3", "CRPIX3", "EXPOSURE"]), label="kw")
        action = data.draw(st.sampled_from(["drop", "junk", "nan"]), label="kw action")
        if action == "drop":
            img.header.remove(key, ignore_missing=True)
        elif action == "junk":
            img.header[key] = "junk"
        else:
            img.header[key] = 0.0 if key not in ("CTYPE3", "CUNIT3") else "NAN"
    elif how == "ebounds" and "EBOUNDS" in hdul:
        del hdul["EBOUNDS"]
        img.header.remove("CTYPE3", ignore_missing=True)
        img.header["CTYPE3"] = "CHANNEL"
    elif how == "flip":
        img.header["CDELT3"] = -abs(float(img.header.get("CDELT3", 1.0)))


def _bytes_mutation(raw: bytes, data: st.DataObject) -> bytes:
    how = data.draw(st.sampled_from(["none", "truncate", "flip", "zero", "garbage", "header"]), label="bytes")
    if how == "none" or not raw:
        return raw
    if how == "truncate":
        return raw[: data.draw(st.integers(0, len(raw) - 1), label="offset")]
    if how == "zero":
        return b""
    if how == "garbage":
        return raw + data.draw(st.binary(min_size=1, max_size=4000), label="garbage")
    b = bytearray(raw)
    top = min(len(b), 5760) if how == "header" else len(b)
    for _ in range(data.draw(st.integers(1, 8), label="n flips")):
        j = data.draw(st.integers(0, top - 1), label="at")
        b[j] ^= data.draw(st.integers(1, 255), label="xor")
    return bytes(b)


# ------------------------------------------------------------------------------------ property
def _allowed(exc: BaseException) -> bool:
    if isinstance(exc, FileNotFoundError):
        return True
    return isinstance(exc, ValueError) and type(exc).__module__.startswith("napari_sushi")


def check(kind: str, name: str, content: bytes, readers, extra: dict[str, bytes] | None = None) -> None:
    """Write ``content`` as ``name`` in a fresh folder and run each reader on it."""
    CASES[kind] = CASES.get(kind, 0) + 1
    with tempfile.TemporaryDirectory(prefix="sushi-fuzz-") as d:
        folder = Path(d)
        path = folder / name
        path.write_bytes(content)
        for other, body in (extra or {}).items():
            (folder / other).write_bytes(body)
        before = sorted(p.name for p in folder.iterdir())
        for reader in readers:
            old = signal.signal(signal.SIGALRM, _alarm)
            signal.setitimer(signal.ITIMER_REAL, PER_CASE_S)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    reader(path)
                OUTCOMES["ok"] += 1
            except Hang:
                raise
            except BaseException as exc:  # noqa: BLE001 - the property under test
                if not _allowed(exc):
                    raise AssertionError(
                        f"{getattr(reader, '__name__', reader)} on a mutated {kind} raised "
                        f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
                    ) from exc
                OUTCOMES["project error"] += 1
                msg = str(exc)
                assert (
                    str(path) in msg
                    or path.name in msg
                    or folder.name in msg
                    or kind in ("arf", "rmf")
                    or "band" in msg
                    or "bin" in msg
                    or "cut-out" in msg
                ), f"message names no file: {msg!r}"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, old)
        after = sorted(p.name for p in folder.iterdir())
        assert after == before, f"files left behind: {sorted(set(after) - set(before))}"


def _bin_small(p):
    return bin_events(p, band=(0.5, 8.0), channel_width=0.5, binning=4)


CUBE_READERS = [file_kind, read_cube, read_fits_cube, read_maps_fits, read_fits_image]
EVENT_READERS = [file_kind, event_summary, _bin_small, read_cube]


@SETTINGS
@given(data=st.data())
def test_fuzz_fits_cube(data):
    hdul = seed("cube")
    if data.draw(st.booleans(), label="structural"):
        _mutate_image(hdul, data)
    check("cube", "cube.fits", _bytes_mutation(_to_bytes(hdul), data), CUBE_READERS)


@SETTINGS
@given(data=st.data())
def test_fuzz_event_list(data):
    hdul = seed("events")
    if data.draw(st.booleans(), label="structural"):
        _mutate_table(hdul, data)
    raw = _bytes_mutation(_to_bytes(hdul), data)
    if data.draw(st.booleans(), label="gzip"):
        raw = gzip.compress(raw)
        if data.draw(st.booleans(), label="truncate gz"):
            raw = raw[: data.draw(st.integers(0, max(0, len(raw) - 1)), label="gz offset")]
        check("events", "evt2.fits.gz", raw, EVENT_READERS)
    else:
        check("events", "evt2.fits", raw, EVENT_READERS)


@SETTINGS
@given(data=st.data())
def test_fuzz_response(data):
    arf, rmf = seed("arf"), seed("rmf")
    target = data.draw(st.sampled_from(["arf", "rmf"]), label="target")
    hdul = arf if target == "arf" else rmf
    if data.draw(st.booleans(), label="structural"):
        _mutate_table(hdul, data)
    raw = _bytes_mutation(_to_bytes(hdul), data)
    files = {"a.arf": _to_bytes(arf), "r.rmf": _to_bytes(rmf)}
    name = "a.arf" if target == "arf" else "r.rmf"
    other = "r.rmf" if target == "arf" else "a.arf"

    def pair(p):
        folder = p.parent
        return read_response(folder / "r.rmf", folder / "a.arf")

    readers = [read_arf, pair] if target == "arf" else [read_rmf, pair, lambda p: read_response(p)]
    check(target, name, raw, readers, extra={other: files[other]})


def _arrays(data) -> np.ndarray:
    how = data.draw(
        st.sampled_from(
            [
                "ok",
                "nan",
                "inf",
                "negative",
                "2d",
                "4d",
                "int",
                "bool",
                "complex",
                "str",
                "zero",
                "huge-shape",
                "float16",
            ]
        ),
        label="array",
    )
    a = np.random.default_rng(2).poisson(2.0, (5, 4, 3)).astype(float)
    return {
        "ok": a,
        "nan": np.where(a > 2, np.nan, a),
        "inf": np.where(a > 2, np.inf, a),
        "negative": -a,
        "2d": a[0],
        "4d": a[None],
        "int": a.astype(np.int64),
        "bool": a > 1,
        "complex": a.astype(complex),
        "str": a.astype(str),
        "zero": a[:0],
        "huge-shape": np.zeros((1, 1, 1)),
        "float16": a.astype(np.float16),
    }[how]


@SETTINGS
@given(data=st.data())
def test_fuzz_numpy(data):
    arr = _arrays(data)
    buf = io.BytesIO()
    if data.draw(st.booleans(), label="npz"):
        key = data.draw(st.sampled_from(["counts", "cube", "data", "junk"]), label="key")
        extra = (
            {"energy_edges": np.linspace(0.5, 8, (arr.shape[0] if arr.ndim else 1) + 1)}
            if data.draw(st.booleans(), label="edges")
            else {}
        )
        np.savez(buf, **{key: arr}, **extra)
        name = "cube.npz"
    else:
        np.save(buf, arr)
        name = "cube.npy"
    check("array", name, _bytes_mutation(buf.getvalue(), data), [file_kind, read_array_cube, read_cube])


@SETTINGS
@given(data=st.data())
def test_fuzz_model_file(data):
    from napari_sushi.core.spectral.files import load_model_file

    raw = PRETRAINED.read_bytes()
    check("model", "model.safetensors", _bytes_mutation(raw, data), [load_model_file])


def test_fuzz_missing_path(tmp_path):
    for reader in CUBE_READERS + EVENT_READERS + [read_arf, read_rmf, read_array_cube]:
        with pytest.raises((FileNotFoundError, ValueError)):
            reader(tmp_path / "nope.fits")


def test_zz_fuzz_summary(capsys):
    total = sum(CASES.values())
    with capsys.disabled():
        print(f"\nfuzzed readers: {total} generated files ({CASES}); reader calls: {OUTCOMES}")
    assert shutil.which("true") or True

"""Sessions: a set of finished runs saved in one folder and loaded again (no pickle, no code).

Layout of a session folder (version 1)::

    my_session.sushi/
        session.json      {"format": "napari-sushi session", "version": 1, "package_version": ...,
                           "runs": [{"label", "method", "title", "cube": {"name", "source", "events"},
                                     "settings", "models", "file"}]}
        runs/S1.fits      each run's maps, sigma maps, masks and model/residual cubes (FitResult.to_fits)

``cube.source`` is the file the fitted cube came from (absolute path; relative to the session folder
when it lies inside it), so loading can open it again (``cube.events``: the binning options when it
is an event list); ``settings`` and ``models`` are the fit's own
provenance (settings summary, model identities). The folder is written under a temporary name and
renamed into place, so a crash never leaves a half-written session where a good one was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "napari-sushi session"
VERSION = 1
INDEX = "session.json"


class SessionError(ValueError):
    """A session folder that cannot be written or read (the message says what to do)."""


@dataclass
class SessionRun:
    """One run of a session: its label, the FitResult, the cube it was fitted on."""

    label: str
    result: Any  # FitResult
    cube_name: str = ""
    cube_source: str | None = None  # the file of the fitted cube, when known
    title: str = ""
    events: dict | None = None  # how the cube was binned from ``cube_source`` (an event list), if it was


@dataclass
class Session:
    """What :func:`load_session` returns."""

    path: Path
    version: int
    runs: list[SessionRun] = field(default_factory=list)
    package_version: str = ""


def _safe(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in label) or "run"


def save_session(path: str | os.PathLike, runs: list[SessionRun], overwrite: bool = False) -> Path:
    """Write ``runs`` to the session folder ``path`` (a ``.sushi`` suffix is added if missing), atomically."""
    from napari_sushi import __version__

    out = Path(path)
    if out.suffix != ".sushi":
        out = out.with_name(out.name + ".sushi")
    if not runs:
        raise SessionError("there is no finished run to save; run a fit first.")
    if not out.parent.is_dir():
        raise SessionError(f"folder {out.parent} does not exist; choose an existing folder.")
    if out.exists() and not overwrite:
        raise SessionError(f"{out} already exists; choose another name or pass overwrite=True.")
    if out.exists() and not (out / INDEX).is_file():
        raise SessionError(f"{out} exists and is not a napari-sushi session; it is left alone.")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "runs").mkdir()
        entries = []
        used: set[str] = set()
        for r in runs:
            stem = _safe(r.label)
            while stem in used:
                stem += "_"
            used.add(stem)
            rel = f"runs/{stem}.fits"
            r.result.to_fits(tmp / rel, include_cubes=True)
            prov = r.result.provenance or {}
            source = r.cube_source
            if source:
                sp = Path(source).resolve()
                try:
                    source = str(sp.relative_to(out.resolve()))
                except ValueError:
                    source = str(sp)
            entries.append(
                {
                    "label": r.label,
                    "method": r.result.method,
                    "title": r.title or r.label,
                    "cube": {
                        "name": r.cube_name,
                        "source": source,
                        "events": None if r.events is None else {k: v for k, v in r.events.items() if k != "path"},
                    },
                    "settings": prov.get("settings", {}),
                    "models": prov.get("models", {}),
                    "file": rel,
                }
            )
        index = {"format": FORMAT, "version": VERSION, "package_version": __version__, "runs": entries}
        (tmp / INDEX).write_text(json.dumps(index, indent=1, default=str))
        if out.exists():
            old = out.with_name(out.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_session(path: str | os.PathLike) -> Session:
    """Read a session folder: every run as a FitResult (from its maps file) with its cube reference."""
    from napari_sushi.core.io import read_maps_fits
    from napari_sushi.core.solver.result import result_from_mapset

    p = Path(path)
    index_file = p / INDEX if p.is_dir() else p
    if not index_file.is_file():
        raise SessionError(f"{p} is not a napari-sushi session (no {INDEX}); choose a .sushi folder.")
    folder = index_file.parent
    try:
        index = json.loads(index_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SessionError(f"{index_file} is not readable JSON ({exc}); the session is damaged.") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise SessionError(f"{index_file} is not a napari-sushi session index.")
    version = int(index.get("version", 0))
    if version > VERSION:
        raise SessionError(
            f"{p} was written by a newer napari-sushi (session version {version}; this one reads "
            f"up to {VERSION}); update napari-sushi."
        )
    runs = []
    for entry in index.get("runs", []):
        f = folder / str(entry.get("file", ""))
        if not f.is_file():
            raise SessionError(f"the session's run file {f} is missing; the session is incomplete.")
        result = result_from_mapset(read_maps_fits(f))
        cube = entry.get("cube") or {}
        source = cube.get("source")
        if source and not Path(source).is_absolute():
            source = str(folder / source)
        runs.append(
            SessionRun(
                label=str(entry.get("label", f.stem)),
                result=result,
                cube_name=str(cube.get("name", "")),
                cube_source=source,
                title=str(entry.get("title", "")),
                events=cube.get("events") if isinstance(cube.get("events"), dict) else None,
            )
        )
    return Session(path=folder, version=version, runs=runs, package_version=str(index.get("package_version", "")))

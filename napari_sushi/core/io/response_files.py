"""Which response files (RMF, ARF) go with an event list or cube, found the way X-ray tools find them.

Order, as in XSPEC/CIAO/sherpa: files given explicitly win; else the OGIP ``RESPFILE`` /
``ANCRFILE`` keywords of the events table (or the primary header), relative to the file's folder;
else response files lying beside the event list (the only ``*.rmf`` / ``*.arf`` there, or the ones
sharing the event file's stem or ObsID prefix). A keyword naming a missing file is reported in a
warning, never silently replaced by a guess.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from astropy.io import fits

from napari_sushi.core.io.fits_file import open_fits

RMF_SUFFIXES = (".rmf", ".rsp", ".rmf.gz", ".rsp.gz")
ARF_SUFFIXES = (".arf", ".arf.gz")
_IGNORED = {"", "NONE", "CALDB"}


@dataclass(frozen=True)
class ResponseFiles:
    """An instrument response: the RMF (redistribution, with EBOUNDS), the ARF (area) if any, and how
    they were found (``how``: 'given', 'RESPFILE keyword', 'beside the event list', ...)."""

    rmf: Path
    arf: Path | None = None
    how: str = "given"

    def as_meta(self) -> dict[str, str | None]:
        """Plain strings for layer metadata / JSON provenance."""
        return {"rmf": str(self.rmf), "arf": None if self.arf is None else str(self.arf), "how": self.how}

    @classmethod
    def from_meta(cls, value: object) -> "ResponseFiles | None":
        """Rebuild from :meth:`as_meta` output (or pass a ResponseFiles / None through)."""
        if value is None or isinstance(value, ResponseFiles):
            return value
        if isinstance(value, dict) and value.get("rmf"):
            arf = value.get("arf")
            return cls(Path(str(value["rmf"])), None if not arf else Path(str(arf)), str(value.get("how") or "given"))
        raise ValueError(f"not a response description: {value!r}; expected {{'rmf': ..., 'arf': ..., 'how': ...}}.")


def _keyword_file(value: object, folder: Path) -> Path | None:
    """The file a RESPFILE/ANCRFILE value names (extension specs like ``[1]`` or ``+1`` dropped)."""
    text = str(value or "").strip()
    if text.upper() in _IGNORED:
        return None
    text = re.sub(r"(\[[^\]]*\]|\+\d+)$", "", text).strip()
    p = Path(text).expanduser()
    return p if p.is_absolute() else folder / p


def _abs(path: str | os.PathLike) -> Path:
    """Absolute and normalised, symlinks kept (a linked response beside the data counts as beside it)."""
    return Path(os.path.abspath(Path(path).expanduser()))


def _existing(path: str | os.PathLike | None, what: str) -> Path | None:
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"the {what} {p} does not exist; check the path.")
    return _abs(p)


def _headers(path: Path) -> list[fits.Header]:
    """The events-table header first, then the primary header (missing/unreadable file: none)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open_fits(path) as hdul:
                out = [h.header.copy() for h in hdul if h.name.upper() == "EVENTS"]
                return out + [hdul[0].header.copy()]
    except (OSError, ValueError, TypeError):  # FileFormatError is a ValueError: no keywords to read
        return []


def _from_keywords(path: Path, headers: list[fits.Header]) -> tuple[Path | None, Path | None]:
    """RMF and ARF named by the headers' RESPFILE/ANCRFILE (missing files: a warning, then None)."""
    found: dict[str, Path | None] = {"RESPFILE": None, "ANCRFILE": None}
    for key in found:
        for h in headers:
            if key not in h:
                continue
            f = _keyword_file(h[key], path.parent)
            if f is None:
                break
            if f.is_file():
                found[key] = _abs(f)
            else:
                warnings.warn(
                    f"{path.name}: {key} = {str(h[key]).strip()!r} names {f}, which does not exist; "
                    "give the response explicitly (rmf=/arf=, --rmf/--arf).",
                    UserWarning,
                    stacklevel=3,
                )
            break
    return found["RESPFILE"], found["ANCRFILE"]


def _prefixes(path: Path, headers: list[fits.Header]) -> list[str]:
    """Name prefixes that tie a response file to this event list: its stem, the stem before the first
    ``_``, and the ObsID (as written and zero-padded to 5 digits, Chandra style)."""
    stem = path.name.split(".")[0].lower()
    out = [stem, stem.split("_")[0]]
    for h in headers:
        obs = str(h.get("OBS_ID", "")).strip()
        if obs:
            out += [obs.lower(), obs.zfill(5)]
    return [p for p in dict.fromkeys(out) if p]


def _beside(path: Path, suffixes: tuple[str, ...], prefixes: list[str], what: str) -> Path | None:
    """The one response file of a kind in the event list's folder, or the one sharing its prefix."""
    files = (
        sorted(f for f in path.parent.iterdir() if f.is_file() and f != path and f.name.lower().endswith(suffixes))
        if path.parent.is_dir()
        else []
    )
    if len(files) == 1:
        return _abs(files[0])
    if not files:
        return None
    tied = [
        f
        for f in files
        if any(f.name.lower().startswith(p) or p in re.split(r"[_.\-]", f.name.lower()) for p in prefixes)
    ]
    if len(tied) == 1:
        return _abs(tied[0])
    warnings.warn(
        f"{path.name}: several {what} files lie beside it ({', '.join(f.name for f in files[:5])}) and "
        f"{'several' if tied else 'none'} share its name or ObsID; give one explicitly (--rmf/--arf).",
        UserWarning,
        stacklevel=3,
    )
    return None


def find_response(
    event_path: str | os.PathLike,
    rmf: str | os.PathLike | None = None,
    arf: str | os.PathLike | None = None,
) -> ResponseFiles | None:
    """The response of an event list: explicit files, else RESPFILE/ANCRFILE, else files beside it.

    An explicit ``arf`` without ``rmf`` replaces only the ARF of what is found. Returns None when no
    RMF is known (an ARF alone is not a response). Raises ``FileNotFoundError`` for explicit files
    that do not exist; missing files named by keywords give a ``UserWarning``.
    """
    path = Path(event_path).expanduser()
    rmf_p, arf_p = _existing(rmf, "RMF"), _existing(arf, "ARF")
    if rmf_p is not None:
        return ResponseFiles(rmf_p, arf_p, "given")
    headers = _headers(path)
    k_rmf, k_arf = _from_keywords(path, headers)
    if k_rmf is not None:
        how = "RESPFILE keyword" + (" and ANCRFILE keyword" if k_arf is not None and arf_p is None else "")
        return ResponseFiles(k_rmf, arf_p or k_arf, how + (", ARF given" if arf_p is not None else ""))
    prefixes = _prefixes(path, headers)
    b_rmf = _beside(path, RMF_SUFFIXES, prefixes, "RMF")
    if b_rmf is None:
        return None
    b_arf = arf_p or k_arf or _beside(path, ARF_SUFFIXES, prefixes, "ARF")
    how = "beside the event list" + (
        ", ARF given" if arf_p is not None else ", ARF from ANCRFILE keyword" if k_arf is not None else ""
    )
    return ResponseFiles(b_rmf, b_arf, how)


# -------------------------------------------------------------------------- header keywords
def response_keywords(response: ResponseFiles | None, target: str | os.PathLike) -> dict[str, str]:
    """OGIP ``RESPFILE`` / ``ANCRFILE`` values for a file written at ``target``: paths relative to its
    folder when the response lies there or below, absolute otherwise; ``'NONE'`` when unknown."""
    if response is None:
        return {"RESPFILE": "NONE", "ANCRFILE": "NONE"}
    folder = _abs(target).parent

    def rel(p: Path | None) -> str:
        if p is None:
            return "NONE"
        p = _abs(p)
        try:
            return p.relative_to(folder).as_posix()
        except ValueError:
            return str(p)

    return {"RESPFILE": rel(response.rmf), "ANCRFILE": rel(response.arf)}


def response_from_header(header: fits.Header, path: str | os.PathLike) -> ResponseFiles | None:
    """The response a cube file's ``RESPFILE``/``ANCRFILE`` name (relative to the file's folder);
    missing files give a ``UserWarning`` and are dropped."""
    p = Path(path).expanduser()
    rmf, arf = _from_keywords(p, [header])
    if rmf is None:
        return None
    return ResponseFiles(rmf, arf, f"RESPFILE keyword of {p.name}")

"""The registry of spectral models: those shipped in ``napari_sushi/pretrained`` and the user's own.

Shipped files are named ``<preset>-<component>-<family>.safetensors``; the name without the
extension is the model's registry name (e.g. ``toy-thermal-emulator``). Models one trains for one's
own data live in the user model folder (:mod:`napari_sushi.core.spectral.user_models`) under the
name they were saved with. ``load_model`` accepts a shipped name, a user model name (shipped names
win; user models may not take one) or a path to any model file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from napari_sushi.core.spectral.base import SpectralModel
from napari_sushi.core.spectral.files import ModelFileError, _read_header, load_model_file
from napari_sushi.core.spectral.matching import match_model_to_cube

__all__ = ["ModelEntry", "list_models", "load_model", "match_model_to_cube", "pretrained_dir"]


@dataclass(frozen=True)
class ModelEntry:
    """A listed model: registry name, component, family, preset, description, path, and from its metadata
    the parameter boxes, band, fixed values (e.g. nH, abundance), response identity and origin
    ("shipped" or "user")."""

    name: str
    component: str
    family: str
    preset: str
    description: str
    path: Path
    parameters: tuple[str, ...] = ()
    band: tuple[float, float] | None = None
    origin: str = "shipped"
    fixed: dict = field(default_factory=dict)
    response_id: str = ""


def pretrained_dir() -> Path:
    """The folder of shipped model files (inside the installed package)."""
    return Path(__file__).resolve().parents[2] / "pretrained"


def _entries(folder: Path, origin: str) -> list[ModelEntry]:
    """Entries for the model files of a folder, read from the file headers only (unreadable files skipped)."""
    out: list[ModelEntry] = []
    if not folder.is_dir():
        return out
    for p in sorted(folder.glob("*.safetensors")):
        if p.name.startswith("."):  # a temporary file of an atomic write in progress
            continue
        try:
            head = _read_header(p)
            meta = json.loads(head["meta"])
            params = tuple(
                f"{q['name']}" + (f" [{q['unit']}]" if q["unit"] else "") + f" {q['low']:g}..{q['high']:g}"
                for q in meta["parameters"]
            )
            band = cast(tuple[float, float], tuple(float(b) for b in meta["band"])) if meta.get("band") else None
            extra = meta.get("extra") or {}
            fixed = {str(k): float(v) for k, v in (extra.get("fixed") or {}).items()}
            preset = p.stem.split("-")[0] if origin == "shipped" else str(extra.get("preset", ""))
            out.append(
                ModelEntry(
                    name=p.stem,
                    component=meta["component"],
                    family=meta["family"],
                    preset=preset,
                    description=meta.get("description", ""),
                    path=p,
                    parameters=params,
                    band=band,
                    origin=origin,
                    fixed=fixed,
                    response_id=str(meta.get("response_id", "")),
                )
            )
        except (ModelFileError, OSError, KeyError, TypeError, ValueError):
            continue
    return out


def list_models() -> list[ModelEntry]:
    """Every shipped model, then every user model whose name no shipped model takes (headers only)."""
    from napari_sushi.core.spectral.user_models import user_model_dir

    shipped = _entries(pretrained_dir(), "shipped")
    names = {e.name for e in shipped}
    return shipped + [e for e in _entries(user_model_dir(), "user") if e.name not in names]


def load_model(name_or_path: str | os.PathLike, device: str = "cpu") -> SpectralModel:
    """Load a shipped model by registry name, a user model by the name it was saved with, or any model file by path."""
    from napari_sushi.core.spectral.user_models import user_model_dir

    s = str(name_or_path)
    p = Path(s).expanduser()
    if p.suffix == ".safetensors" or p.exists() or os.sep in s or (os.altsep and os.altsep in s):
        return load_model_file(p, device=device)
    cand = pretrained_dir() / f"{s}.safetensors"
    if cand.exists():
        return load_model_file(cand, device=device)
    user = user_model_dir() / f"{s}.safetensors"
    if user.is_file():
        return load_model_file(user, device=device)
    shipped = [e.name for e in _entries(pretrained_dir(), "shipped")]
    mine = [e.name for e in _entries(user_model_dir(), "user")]
    raise FileNotFoundError(
        f"no model named {s!r} and no such file; shipped models: {', '.join(shipped) or 'none'}; "
        f"your models ({user_model_dir()}): {', '.join(mine) or 'none'}."
    )

"""The registry of pretrained models shipped in ``napari_sushi/pretrained`` (offline, inside the wheel).

Shipped files are named ``<preset>-<component>-<family>.safetensors``; the name without the
extension is the model's registry name (e.g. ``toy-thermal-emulator``). ``load_model`` accepts such a
name or a path to any model file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from napari_sushi.core.spectral.base import SpectralModel
from napari_sushi.core.spectral.files import ModelFileError, _read_header, load_model_file
from napari_sushi.core.spectral.matching import match_model_to_cube

__all__ = ["ModelEntry", "list_models", "load_model", "match_model_to_cube", "pretrained_dir"]


@dataclass(frozen=True)
class ModelEntry:
    """A shipped model: registry name, component, family, preset, description, parameters, band, path."""

    name: str
    component: str
    family: str
    preset: str
    description: str
    path: Path
    parameters: tuple[str, ...] = ()
    band: tuple[float, float] | None = None


def pretrained_dir() -> Path:
    """The folder of shipped model files (inside the installed package)."""
    return Path(__file__).resolve().parents[2] / "pretrained"


def list_models() -> list[ModelEntry]:
    """Every shipped model, read from the file headers only (no tensor is loaded)."""
    out = []
    for p in sorted(pretrained_dir().glob("*.safetensors")):
        try:
            head = _read_header(p)
            meta = json.loads(head["meta"])
        except (ModelFileError, KeyError, json.JSONDecodeError):
            continue
        params = tuple(f"{q['name']}" + (f" [{q['unit']}]" if q["unit"] else "") + f" {q['low']:g}..{q['high']:g}"
                       for q in meta["parameters"])
        band = tuple(meta["band"]) if meta.get("band") else None
        out.append(ModelEntry(name=p.stem, component=meta["component"], family=meta["family"],
                              preset=p.stem.split("-")[0], description=meta.get("description", ""), path=p,
                              parameters=params, band=band))
    return out


def load_model(name_or_path: str | os.PathLike, device: str = "cpu") -> SpectralModel:
    """Load a shipped model by registry name, or any model file by path."""
    s = str(name_or_path)
    p = Path(s).expanduser()
    if p.suffix == ".safetensors" or p.exists() or os.sep in s:
        return load_model_file(p, device=device)
    cand = pretrained_dir() / f"{s}.safetensors"
    if cand.exists():
        return load_model_file(cand, device=device)
    names = [e.name for e in list_models()]
    raise FileNotFoundError(f"no shipped model named {s!r} and no such file; shipped models: {', '.join(names) or 'none'}")

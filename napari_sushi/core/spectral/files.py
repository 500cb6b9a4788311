"""Model files: one safetensors file holding the tensors and, in its header, the JSON metadata.

Opening a model file can never run code: the file is parsed as a safetensors header (8-byte length
+ JSON) and raw little-endian tensor bytes; pickles and ``torch.save`` archives are recognised and
refused with a message saying why, before anything is deserialised.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import torch

from napari_sushi.core.spectral.base import ModelMeta, SpectralModel

FORMAT = "napari-sushi-model"
FORMAT_VERSION = 1
_MAX_HEADER = 100 * 1024 * 1024


class ModelFileError(ValueError):
    """A file is not a readable napari-sushi model (message says what it is and what to do)."""


def _families() -> dict[str, type[SpectralModel]]:
    from napari_sushi.core.spectral.emulator import GridEmulator
    from napari_sushi.core.spectral.iae import IAEModel
    from napari_sushi.core.spectral.reference import PCAMLPModel

    return {"emulator": GridEmulator, "iae": IAEModel, "reference": PCAMLPModel}


def save_model(model: SpectralModel, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``model`` atomically as ``path`` (safetensors, metadata in the header); returns the path."""
    from safetensors.torch import save_file

    from napari_sushi.core.io.atomic import atomic_path

    if model.meta.family not in _families():
        raise ModelFileError(f"cannot save a model of family {model.meta.family!r}; known: {sorted(_families())}")
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "family": model.meta.family,
        "meta": json.dumps(model.meta.to_json(), sort_keys=True),
        "config": json.dumps(model.config(), sort_keys=True),
        "identity": model.identity(),
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    target = Path(path)
    with atomic_path(target, overwrite=overwrite) as tmp:
        save_file(tensors, str(tmp), metadata=header)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # an ordinary readable file, not the temp file's 0600
    return target


def _read_header(path: Path) -> dict:
    """Validate the raw file as safetensors and return its ``__metadata__`` (no tensor is read)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(9)
            # a safetensors file: an 8-byte little-endian header length, then the JSON header. Its first
            # byte is the length's low byte, which can be 0x80 like a pickle's protocol marker (a header
            # of 8320 bytes starts 80 20): only a file that is not laid out so is tested for a pickle
            n = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
            layout = len(head) == 9 and head[8:9] == b"{" and 0 < n <= size - 8
            head = head[:8]
            if not layout and (head[:1] == b"\x80" or head[:2] in (b"(d", b"(l", b"}q", b"]q", b"cc")):
                raise ModelFileError(
                    f"{path} is a Python pickle; napari-sushi never opens pickles because loading one can "
                    "run arbitrary code. Convert the model to a napari-sushi safetensors file "
                    "(napari-sushi train ... -o model.safetensors)."
                )
            if head[:2] == b"PK":
                raise ModelFileError(
                    f"{path} is a zip archive (e.g. a torch.save checkpoint, which holds a pickle); "
                    "napari-sushi only opens its own safetensors model files, never pickles."
                )
            if len(head) < 8:
                raise ModelFileError(f"{path} is too short ({size} bytes) to be a model file.")
            (n,) = struct.unpack("<Q", head)
            if n <= 0 or n > _MAX_HEADER or 8 + n > size:
                raise ModelFileError(
                    f"{path} is not a napari-sushi model file (not a valid safetensors file: bad header "
                    "length); it may be corrupt or of another type."
                )
            fh.seek(8)
            raw = fh.read(n)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise FileNotFoundError(
                f"model file {path} does not exist; check the path or run `napari-sushi models`."
            ) from None
        raise
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(
            f"{path} is not a napari-sushi model file (its header is not valid safetensors JSON); it may be corrupt."
        ) from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path} is not a napari-sushi model file (malformed safetensors header).")
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise ModelFileError(
            f"{path} is a safetensors file but not a napari-sushi spectral model (no '{FORMAT}' metadata). "
            "Train one with `napari-sushi train` or pick a shipped model from `napari-sushi models`."
        )
    end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end != size:
        raise ModelFileError(f"{path} is truncated or corrupt: its tensor data does not match its header.")
    return meta


def load_model_file(path: str | os.PathLike, device: str | torch.device = "cpu") -> SpectralModel:
    """Read a model file written by :func:`save_model`; raises :class:`ModelFileError` for anything else."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path).expanduser()
    if p.is_dir():
        raise ModelFileError(f"{p} is a folder; give a model file (.safetensors).")
    meta = _read_header(p)
    try:
        version = int(meta.get("format_version", "0"))
    except ValueError:
        version = -1
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{p} has model format version {meta.get('format_version')!r}; this napari-sushi reads version "
            f"{FORMAT_VERSION}. Retrain or re-export the model with this version."
        )
    fams = _families()
    family = meta.get("family")
    if family not in fams:
        raise ModelFileError(f"{p} holds a model of unknown family {family!r}; known families: {sorted(fams)}.")
    try:
        mmeta = ModelMeta.from_json(json.loads(meta["meta"]))
        config = json.loads(meta["config"])
        model = fams[family].from_config(mmeta, config)
        tensors = load_file(str(p), device="cpu")
        model.load_state_dict(tensors, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError, SafetensorError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{p} is a corrupt or inconsistent napari-sushi model file: {exc}") from None
    model.eval()
    stored = meta.get("identity")
    if stored and stored != model.identity():
        raise ModelFileError(
            f"{p} is corrupt: its content hash {model.identity()} differs from the recorded identity {stored}."
        )
    return model.to(device)

"""The per-user model folder: models one trains for one's own data, listed and loaded by name.

The folder is ``platformdirs.user_data_dir("napari-sushi")/models`` (e.g.
``~/.local/share/napari-sushi/models`` on Linux), or the folder named by the environment variable
``NAPARI_SUSHI_MODEL_DIR`` (tests and shared installations set it). A model called ``NAME`` is the
file ``NAME.safetensors`` there, written atomically by :func:`save_user_model`, so a listing never
sees a half-written model. Names that clash with a shipped model are refused: the shipped one would
always win when loading by name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from napari_sushi.core.spectral.base import SpectralModel
from napari_sushi.core.spectral.files import ModelFileError, save_model

ENV_VAR = "NAPARI_SUSHI_MODEL_DIR"
SUFFIX = ".safetensors"
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}")

__all__ = ["ENV_VAR", "check_model_name", "delete_user_model", "save_user_model", "user_model_dir", "user_model_path"]


def user_model_dir() -> Path:
    """The user model folder (``$NAPARI_SUSHI_MODEL_DIR`` if set, else the platform's user data folder); not created."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("napari-sushi", appauthor=False)) / "models"


def check_model_name(name: str) -> str:
    """``name`` (without a ``.safetensors`` suffix) when it is a safe file name, else a ModelFileError saying why."""
    s = str(name).strip()
    if s.endswith(SUFFIX):
        s = s[: -len(SUFFIX)]
    if not _SAFE.fullmatch(s) or s.endswith(".") or ".." in s:
        raise ModelFileError(
            f"model name {name!r} is not allowed: use 1-100 letters, digits and . _ + - (starting with a "
            "letter or digit, no '..', no folders), e.g. 'msh1552-thermal-emulator'."
        )
    return s


def user_model_path(name: str) -> Path:
    """Where the user model ``name`` lives (whether or not it exists)."""
    return user_model_dir() / f"{check_model_name(name)}{SUFFIX}"


def _shipped_names() -> set[str]:
    from napari_sushi.core.spectral.registry import pretrained_dir

    return {p.stem for p in pretrained_dir().glob(f"*{SUFFIX}")}


def save_user_model(model: SpectralModel, name: str, overwrite: bool = False) -> Path:
    """Save ``model`` as the user model ``name`` (atomic write: temp file, then rename); returns its path.

    Creates the folder when needed. Refuses an unsafe name, a shipped model's name, and an existing
    user model unless ``overwrite`` (FileExistsError, before anything is written).
    """
    n = check_model_name(name)
    if n in _shipped_names():
        raise ModelFileError(f"{n!r} is the name of a shipped model; choose another name for your model.")
    target = user_model_path(n)
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"a user model named {n!r} already exists ({target}); choose another name or overwrite it."
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(
            f"cannot create the user model folder {target.parent} ({exc.strerror}); set {ENV_VAR} to a writable folder."
        ) from None
    return save_model(model, target, overwrite=overwrite)


def delete_user_model(name: str) -> Path:
    """Remove the user model ``name`` (FileNotFoundError when there is none); returns the removed path."""
    target = user_model_path(name)
    if not target.is_file():
        raise FileNotFoundError(f"there is no user model named {check_model_name(name)!r} in {target.parent}.")
    target.unlink()
    return target

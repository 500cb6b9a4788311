"""napari-sushi: physical parameter maps from X-ray hyperspectral cubes with SUSHI."""

try:
    from importlib.metadata import version as _version

    __version__ = _version("napari-sushi")
except Exception:  # pragma: no cover - not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]

"""The error raised when a file is not in a format the readers understand."""

from __future__ import annotations

from napari_sushi.core.cube import CubeError


class FileFormatError(CubeError):
    """A file exists but cannot be read as a cube, event list or map set (message says why).

    Subclass of :class:`~napari_sushi.core.cube.CubeError` (and so of ``ValueError``), so callers
    that handle bad cubes also handle bad files, and the CLI prints it without a traceback.
    """

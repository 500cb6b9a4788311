"""Reading and writing hyperspectral cubes, event lists and parameter maps (Qt-free).

The public entry points are re-exported here; each lives in the module named in
``docs/architecture.md`` (one concept per module).
"""

from napari_sushi.core.io.arrays import read_array_cube
from napari_sushi.core.io.atomic import atomic_path
from napari_sushi.core.io.errors import FileFormatError
from napari_sushi.core.io.events import EventSummary, bin_events, default_event_options, event_summary
from napari_sushi.core.io.fits_cube import read_fits_cube, write_cube_fits
from napari_sushi.core.io.images import FitsImage, read_fits_image
from napari_sushi.core.io.maps import MapSet, read_maps_fits, write_maps_fits
from napari_sushi.core.io.read import file_kind, read_cube
from napari_sushi.core.io.response_files import ResponseFiles, find_response

__all__ = [
    "EventSummary",
    "FileFormatError",
    "FitsImage",
    "MapSet",
    "ResponseFiles",
    "atomic_path",
    "bin_events",
    "default_event_options",
    "event_summary",
    "file_kind",
    "find_response",
    "read_array_cube",
    "read_cube",
    "read_fits_cube",
    "read_fits_image",
    "read_maps_fits",
    "write_cube_fits",
    "write_maps_fits",
]

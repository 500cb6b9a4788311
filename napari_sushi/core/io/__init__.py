"""Reading and writing hyperspectral cubes, event lists and parameter maps (Qt-free).

The public entry points are re-exported here; each lives in the module named in
``docs/architecture.md`` (one concept per module).
"""

from napari_sushi.core.io.arrays import read_array_cube
from napari_sushi.core.io.atomic import atomic_path
from napari_sushi.core.io.errors import FileFormatError
from napari_sushi.core.io.events import EventSummary, bin_events, event_summary
from napari_sushi.core.io.fits_cube import read_fits_cube, write_cube_fits
from napari_sushi.core.io.maps import MapSet, read_maps_fits, write_maps_fits
from napari_sushi.core.io.read import file_kind, read_cube

__all__ = [
    "EventSummary",
    "FileFormatError",
    "MapSet",
    "atomic_path",
    "bin_events",
    "event_summary",
    "file_kind",
    "read_array_cube",
    "read_cube",
    "read_fits_cube",
    "read_maps_fits",
    "write_cube_fits",
    "write_maps_fits",
]

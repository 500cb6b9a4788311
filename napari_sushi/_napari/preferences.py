"""Make napari open FITS cubes and event lists with napari-sushi, without the reader-choice dialog.

How napari 0.9.2 picks a reader (``napari/components/viewer_model.py``): ``ViewerModel.open(path)``
defaults to ``plugin='napari'`` and so always uses napari's built-in reader, which shows a FITS event
list as a (258419, 78) uint8 image; **no plugin can intercept that call** (pass
``plugin='napari-sushi'`` or ``plugin=None``). File > Open, drag-and-drop and ``napari file.fits``
call ``viewer.open(..., plugin=None)`` (``napari/_qt/qt_viewer.py: _qt_open``), which uses the
reader saved in ``settings.plugins.extension2reader`` for the file's pattern and otherwise raises
``MultipleReaderError`` (the Qt dialog) when two plugins match (``*.fits``, ``*.fit`` match napari's
reader too). :func:`prefer_our_reader` saves napari-sushi as that choice for the FITS and event-list
patterns the user has not chosen a reader for. It runs on plugin activation (npe2 ``on_activate``:
the first time napari uses any napari-sushi contribution: the reader, a dock widget, the sample) and
in ``napari-sushi demo`` before the window shows.
"""

from __future__ import annotations

from typing import Any

PLUGIN = "napari-sushi"
PATTERNS = ("*.fits", "*.fit", "*.fts", "*.fits.gz", "*.evt", "*.evt2")


def prefer_our_reader(patterns: tuple[str, ...] = PATTERNS) -> dict[str, str]:
    """Set napari-sushi as the reader of ``patterns`` where the user has chosen none; return what was set.

    A pattern the user already gave a reader (any plugin, ours or not) is left alone. The change goes
    through napari's settings, which save it to the user's settings file.
    """
    from napari.settings import get_settings

    plugins = get_settings().plugins
    current = dict(plugins.extension2reader)
    added = {p: PLUGIN for p in patterns if p not in current}
    if added:
        plugins.extension2reader = {**current, **added}
    return added


def activate(context: Any = None) -> None:
    """npe2 ``on_activate`` hook: prefer our reader for FITS files (never fails the activation)."""
    try:
        prefer_our_reader()
    except Exception as exc:  # settings unreadable or napari absent: opening still works via the dialog
        import warnings

        warnings.warn(
            f"napari-sushi could not set itself as the FITS reader ({exc}); choose it in the "
            "reader dialog or in Preferences > Plugins.",
            RuntimeWarning,
            stacklevel=2,
        )

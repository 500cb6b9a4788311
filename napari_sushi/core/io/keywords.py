"""FITS header keywords for provenance: safe copying, HIERARCH for long keys, JSON for the rest.

Headers of outputs carry where the data came from (source file, band, binning, model identities).
Keys longer than 8 characters become ``HIERARCH`` cards; values a card cannot hold (nested dicts,
lists, long strings under long keys) are skipped here and kept whole in the JSON dump that the
writers store beside the header.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from astropy.io import fits

# Keywords that describe the layout of the HDU they sit in, or its WCS: never copied between HDUs.
_STRUCTURAL = re.compile(
    r"^(SIMPLE|BITPIX|NAXIS\d*|EXTEND|XTENSION|PCOUNT|GCOUNT|TFIELDS|EXTNAME|EXTVER|HDUNAME|BSCALE|BZERO|"
    r"BLANK|BUNIT|CHECKSUM|DATASUM|THEAP|T(TYPE|FORM|UNIT|DIM|NULL|SCAL|ZERO|DISP|LMIN|LMAX|CTYP|CRVL|CRPX|"
    r"CDLT|CUNI|CNAM|CROT)\d+|WCSAXES|C(TYPE|RVAL|RPIX|DELT|UNIT|ROTA|NAME)\d+|(PC|CD)\d+_\d+|PV\d+_\d+|"
    r"LONPOLE|LATPOLE|HISTORY|COMMENT|)$"
)
# Provenance keywords worth carrying from an event list or cube header into derived products.
PROVENANCE_KEYS = (
    "TELESCOP",
    "INSTRUME",
    "DETNAM",
    "FILTER",
    "GRATING",
    "OBJECT",
    "OBS_ID",
    "OBSERVER",
    "DATE-OBS",
    "DATE-END",
    "MJD-OBS",
    "MJDREF",
    "TIMESYS",
    "TSTART",
    "TSTOP",
    "EXPOSURE",
    "LIVETIME",
    "ONTIME",
    "RA_NOM",
    "DEC_NOM",
    "ROLL_NOM",
    "RA_PNT",
    "DEC_PNT",
    "RA_TARG",
    "DEC_TARG",
    "EQUINOX",
    "RADESYS",
    "RADECSYS",
    # written by napari_sushi.core.io.events.bin_events
    "SRCFILE",
    "ENERSRC",
    "BAND_LO",
    "BAND_HI",
    "CHANWID",
    "NATIVE",
    "CHGROUP",
    "SPBIN",
    "FIELDX0",
    "FIELDX1",
    "FIELDY0",
    "FIELDY1",
)


def is_structural(key: str) -> bool:
    """True for keywords that belong to an HDU's layout or WCS (not to be copied)."""
    return bool(_STRUCTURAL.match(key.upper()))


def copy_provenance(source: fits.Header | None, target: fits.Header) -> None:
    """Copy the known provenance keywords present in ``source`` into ``target``."""
    if not source:
        return
    for key in PROVENANCE_KEYS:
        if key in source and key not in target:
            try:
                target[key] = (source[key], source.comments[key])
            except (ValueError, KeyError):
                continue


def _scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return value


def add_keywords(header: fits.Header, values: Mapping[str, Any] | fits.Header | None) -> list[str]:
    """Add ``values`` to ``header`` as cards; return the keys that could not be written as cards.

    Keys of up to 8 characters from ``A-Z 0-9 _ -`` become standard keywords, others HIERARCH
    cards. Values must be scalars (bool, int, float, str); anything else is skipped and reported.
    """
    skipped: list[str] = []
    if values is None:
        return skipped
    if isinstance(values, fits.Header):
        for card in values.cards:
            if not is_structural(card.keyword):
                try:
                    header.append(card.copy() if hasattr(card, "copy") else fits.Card(*card), end=True)
                except (ValueError, fits.VerifyError):
                    skipped.append(card.keyword)
        return skipped
    for key, value in values.items():
        key = str(key)
        value = _scalar(value)
        if value is None or not isinstance(value, (bool, int, float, str)):
            skipped.append(key)
            continue
        if isinstance(value, float) and not np.isfinite(value):
            skipped.append(key)
            continue
        if isinstance(value, str) and not value.isascii():
            skipped.append(key)
            continue
        if re.fullmatch(r"[A-Za-z0-9_-]{1,8}", key) and not is_structural(key):
            card_key = key.upper()
        elif key.isascii() and key.isprintable() and "=" not in key and len(key) <= 60:
            card_key = f"HIERARCH {key}"
        else:
            skipped.append(key)
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                card = fits.Card(card_key, value)
                card.verify("exception")
                text = str(card)
                if card_key.startswith("HIERARCH") and len(text) > 80:
                    raise ValueError("too long for one card")
            header.append(card, end=True)
        except (ValueError, fits.VerifyError):
            skipped.append(key)
    return skipped


def to_jsonable(obj: Any) -> Any:
    """Convert numpy values, paths and other objects to JSON-serialisable ones (str as last resort)."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        if isinstance(obj, float) and not np.isfinite(obj):
            return str(obj)
        return obj
    return str(obj)


def provenance_hdu(provenance: Mapping[str, Any]) -> fits.BinTableHDU:
    """A one-row table extension ``PROVENANCE`` holding the full provenance as JSON text."""
    text = json.dumps(to_jsonable(provenance), sort_keys=True)
    raw = text.encode("utf-8")
    col = fits.Column(name="JSON", format=f"{max(len(raw), 1)}A", array=np.array([raw]))
    hdu = fits.BinTableHDU.from_columns([col], name="PROVENANCE")
    hdu.header["COMMENT"] = "Full provenance of this file as JSON (keys too long or nested for cards)."
    return hdu


def read_provenance_hdu(hdu: fits.BinTableHDU) -> dict[str, Any]:
    """Parse the JSON text stored by :func:`provenance_hdu`."""
    raw = hdu.data["JSON"][0]
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    value = json.loads(raw)
    return value if isinstance(value, dict) else {"provenance": value}

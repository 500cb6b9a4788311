"""Simulated supernova-remnant cubes with ground truth, and folded spectra for training models.

Presets (:data:`PRESETS`) describe everything a training set or a test cube needs: the instrument
response (by name), the band and the channels in it, and per emission component its parameters
(name, unit, validity box, default) plus the parameters held fixed (abundance, N_H, ...).

- ``toy``: like the published SUSHI toy: 94x94 pixels, Chandra ACIS-I PI channels 207-581
  (3.0076-8.4826 keV, 375 channels; the nominal band 3-8.48 keV selects 374 whole channels of this
  RMF, so the band is written 3.0-8.483 keV to keep the published 375), thermal kT 1-4 keV,
  line-of-sight velocity +-5000 km/s from an expanding shell, power-law index 2-3.5 on rim
  filaments, a few hundred counts in the brightest pixels, no absorption.
- ``faint``: ``toy`` at 1/10 of the counts.
- ``wide``: 0.5-8 keV on the same response, cooler plasma (kT 0.6-3 keV) where the O/Ne/Mg/Fe-L
  lines matter, both components absorbed by N_H = 0.5e22 cm-2 (Wilms et al. 2000 abundances).

:func:`response_preset` makes a preset for one's own instrument response (RMF/ARF files, band,
channel grouping, absorption), and :func:`preset_for_cube` one whose channels are exactly those of
a cube binned on that response's native channels, so a model trained on it fits that cube.

Amplitudes are expected counts of a component in the band, so ``cube = sum_c A_c * S_c`` with
``S_c`` the unit-sum folded spectrum, as in the solver's forward model. Output is deterministic
for a seed (``numpy.random.default_rng(seed)``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from napari_sushi.core.cube import HyperCube
from napari_sushi.core.physics import Absorption, Apec, Model, PhysicsError, PowerLaw, Thermal
from napari_sushi.core.response import RESPONSES, Response, load_response, response_identity
from napari_sushi.core.spectral.base import ParameterInfo

if TYPE_CHECKING:
    from napari_sushi.core.io.atable import TableModel

COMPONENT_MODELS = {"thermal": Thermal, "powerlaw": PowerLaw}
# emission physics a component can be simulated with: the built-in approximation, or APEC (optional extra)
PHYSICS: dict[str, dict[str, type[Model]]] = {
    "thermal": {"builtin": Thermal, "apec": Apec},
    "powerlaw": {"builtin": PowerLaw},
}


TABLE_PREFIX = "table:"  # physics "table:<path>": an XSPEC additive table model (core.io.atable)


def component_model(component: str, physics: str = "builtin") -> Model:
    """The emission model of ``component`` with ``physics`` ("builtin"; "apec" for a thermal plasma;
    ``"table:<path>"`` for an XSPEC additive table model, any component name)."""
    if physics.startswith(TABLE_PREFIX):
        return _table(physics[len(TABLE_PREFIX) :])
    if component not in PHYSICS:
        raise SimulationError(f"unknown component {component!r}; choose one of {sorted(PHYSICS)}.")
    if physics not in PHYSICS[component]:
        raise SimulationError(f"the {component} component has physics {sorted(PHYSICS[component])}; got {physics!r}.")
    if physics == "apec":
        from napari_sushi.core.physics import apec

        if not apec.available():
            raise SimulationError(f"APEC physics needs its emulator: {apec.INSTALL_HINT}.")
    return PHYSICS[component][physics]()


_CHUNK = 4096  # parameter sets evaluated at once (bounds memory to ~ chunk x input bins)


class SimulationError(ValueError):
    """Bad simulation request (unknown preset/component, bad parameters)."""


@dataclass(frozen=True)
class ComponentSpec:
    """One emission component of a preset: its free parameters and the ones held fixed."""

    name: str
    parameters: tuple[ParameterInfo, ...]
    fixed: dict[str, float] = field(default_factory=dict)
    description: str = ""
    physics: str = "builtin"  # key of PHYSICS[name]: which emission code makes the spectra

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.parameters]


@dataclass(frozen=True)
class Preset:
    """A simulation/training configuration (see the module docstring)."""

    name: str
    description: str
    response: str | tuple[str, ...]  # a name for load_response, or (rmf,) / (rmf, arf) file paths
    band: tuple[float, float]  # keV; channels wholly inside are used
    shape: tuple[int, int]  # (ny, nx)
    components: dict[str, ComponentSpec]
    truth_ranges: dict[str, tuple[float, float]]  # stated ranges of the truth maps
    peak_counts: float  # brightest pixel's expected counts (both components)
    kt_range: tuple[float, float] = (1.0, 4.0)
    abundance_table: str = "wilm"
    exposure: float = 1.0e5  # nominal exposure (s) written to the cube header
    group: int = 1  # consecutive native channels summed per bin (grouped from the band's first channel)

    @property
    def response_id(self) -> str:
        """The response as a string identity: its name, or ``"<rmf name>+<arf name>"`` for files."""
        if isinstance(self.response, (tuple, list)):
            return response_identity(*self.response)
        return Path(self.response).name if _is_response_file(self.response) else str(self.response)

    @property
    def response_files(self) -> dict[str, str | None] | None:
        """``{"rmf": path, "arf": path or None}`` when the response comes from files, else None."""
        if isinstance(self.response, (tuple, list)):
            rmf, arf = (list(self.response) + [None])[:2]
            assert rmf is not None  # (rmf,) or (rmf, arf)
            return {
                "rmf": str(Path(rmf).expanduser().resolve()),
                "arf": None if arf is None else str(Path(arf).expanduser().resolve()),
            }
        if _is_response_file(self.response):
            return {"rmf": str(Path(self.response).expanduser().resolve()), "arf": None}
        return None

    @property
    def restricted_response(self) -> Response:
        """The response restricted to the band and grouped (cached per response, band and grouping)."""
        return _restricted(_response_key(self.response), tuple(float(b) for b in self.band), int(self.group))

    @property
    def channel_edges(self) -> np.ndarray:
        return self.restricted_response.channel_edges.copy()

    @property
    def channels(self) -> np.ndarray:
        return self.restricted_response.channels.copy()

    @property
    def n_channels(self) -> int:
        return self.restricted_response.n_channels

    def folded_spectra(self, component: str, params: dict[str, np.ndarray], exposure: float = 1.0) -> np.ndarray:
        """:func:`folded_spectra` with this preset's response, band and fixed parameters."""
        spec = _component(self, component)
        return folded_spectra(
            component,
            {**spec.fixed, **params},
            self.restricted_response,
            self.band,
            exposure,
            abundance_table=self.abundance_table,
            physics=spec.physics,
        )


@lru_cache(maxsize=8)
def _restricted(response: str | tuple[str, ...], band: tuple[float, float], group: int = 1) -> Response:
    return load_response(response).restrict(*band).group(group)


def _response_key(response) -> str | tuple[str, ...]:
    """A hashable cache key of a response given by name, path or (rmf, arf) paths."""
    if isinstance(response, (tuple, list)):
        return tuple(str(Path(r).expanduser()) for r in response)
    return str(response)


def _is_response_file(response) -> bool:
    return (
        not isinstance(response, (tuple, list))
        and str(response) not in RESPONSES
        and (Path(str(response)).suffix.lower() in (".rmf", ".rsp", ".fits", ".fit", ".gz"))
    )


def _component(preset: Preset, component: str) -> ComponentSpec:
    if component not in preset.components:
        raise SimulationError(f"preset {preset.name!r} has components {sorted(preset.components)}; got {component!r}.")
    return preset.components[component]


_THERMAL_DESCRIPTION = {
    "builtin": "bremsstrahlung + K-shell/Fe-L lines (approximate CIE plasma, napari_sushi.core.physics)",
    "apec": "APEC CIE plasma (AtomDB, AG89 abundances) via the nnapec emulator (napari_sushi.core.physics.apec)",
}


VELOCITY = ParameterInfo(
    "velocity", "km/s", -6000.0, 6000.0, 0.0, "line-of-sight velocity, positive = receding (E_obs = E_rest (1 - v/c))"
)


def _thermal_spec(kt_lo: float, kt_hi: float, fixed: dict[str, float], physics: str = "builtin") -> ComponentSpec:
    return ComponentSpec(
        "thermal",
        (
            ParameterInfo("kT", "keV", kt_lo, kt_hi, 2.0, "plasma temperature"),
            VELOCITY,
        ),
        fixed={"abundance": 1.0, "sigma_v": 0.0, **fixed},
        description=_THERMAL_DESCRIPTION[physics],
        physics=physics,
    )


def _powerlaw_spec(fixed: dict[str, float]) -> ComponentSpec:
    return ComponentSpec(
        "powerlaw",
        (ParameterInfo("index", "", 1.5, 4.0, 2.5, "photon index"),),
        fixed=dict(fixed),
        description="power law (synchrotron)",
    )


_TRUTH_TOY = {"thermal kT": (1.0, 4.0), "thermal velocity": (-5000.0, 5000.0), "powerlaw index": (2.0, 3.5)}

PRESETS: dict[str, Preset] = {
    "toy": Preset(
        "toy",
        "94x94 toy remnant, Chandra ACIS-I channels 3-8.48 keV (375), a few hundred counts in bright pixels",
        "chandra-acis-i-cy0",
        (3.0, 8.483),
        (94, 94),
        {"thermal": _thermal_spec(0.5, 5.0, {}), "powerlaw": _powerlaw_spec({})},
        _TRUTH_TOY,
        peak_counts=400.0,
    ),
    "faint": Preset(
        "faint",
        "the toy remnant at 1/10 of the counts",
        "chandra-acis-i-cy0",
        (3.0, 8.483),
        (94, 94),
        {"thermal": _thermal_spec(0.5, 5.0, {}), "powerlaw": _powerlaw_spec({})},
        _TRUTH_TOY,
        peak_counts=40.0,
    ),
    "wide": Preset(
        "wide",
        "94x94 cooler remnant, 0.5-8 keV on ACIS-I, absorbed by N_H = 0.5e22 cm-2 (wilm)",
        "chandra-acis-i-cy0",
        (0.5, 8.0),
        (94, 94),
        {"thermal": _thermal_spec(0.2, 5.0, {"nH": 0.5}), "powerlaw": _powerlaw_spec({"nH": 0.5})},
        {"thermal kT": (0.6, 3.0), "thermal velocity": (-5000.0, 5000.0), "powerlaw index": (2.0, 3.5)},
        peak_counts=600.0,
        kt_range=(0.6, 3.0),
    ),
}


def get_preset(name: str | Preset) -> Preset:
    """The preset called ``name`` (clear error listing the choices otherwise); a Preset is returned as is."""
    if isinstance(name, Preset):
        return name
    if name not in PRESETS:
        raise SimulationError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}.")
    return PRESETS[name]


@lru_cache(maxsize=4)
def _table(path: str) -> TableModel:
    """The table at ``path`` as simulation physics: extrapolated up to 20 % of each axis beyond its grid,
    for the grid emulator's boundary nodes (the component's validity box stays the grid)."""
    from napari_sushi.core.io.atable import read_atable

    return replace(read_atable(path), margin=0.2)


def table_preset(
    table: str | os.PathLike,
    rmf: str | os.PathLike,
    arf: str | os.PathLike | None = None,
    band: tuple[float, float] = (0.5, 8.0),
    group: int = 1,
    nH: float | None = None,
    component: str = "thermal",
    velocity: bool = True,
    fixed: dict[str, float] | None = None,
    ranges: dict[str, tuple[float, float]] | None = None,
    name: str | None = None,
) -> Preset:
    """A preset whose one component is an XSPEC additive table model (e.g. APEC or vnei made in
    XSPEC), on one's own response, to train a model for it.

    The table's interpolated parameters become the component's (validity box = the table's grid);
    ``velocity`` adds our exact Doppler shift as a free parameter (-6000..6000 km/s); ``nH`` absorbs;
    ``fixed``/``ranges`` as in :func:`customise_preset` (e.g. ``{"Abundanc": 1.0}`` to hold a table
    parameter). Bad tables fail here with a :class:`~napari_sushi.core.io.atable.TableError`.
    """
    tpath = Path(table).expanduser().resolve()
    tm = _table(str(tpath))
    base = response_preset(rmf, arf, band=band, group=group, nH=nH, components=("powerlaw",))
    params = [
        ParameterInfo(q.name, q.unit, q.low, q.high, float(tm.defaults[q.name]), f"table {tm.name} parameter")
        for q in tm.parameters
        if q.values.size > 1
    ]
    held = {q.name: float(q.values[0]) for q in tm.parameters if q.values.size == 1}
    if velocity:
        params.append(VELOCITY)
    else:
        held["velocity"] = 0.0
    if nH is not None:
        held["nH"] = float(nH)
    spec = ComponentSpec(
        component,
        tuple(params),
        fixed=held,
        description=f"XSPEC table model {tm.name} ({tpath.name})",
        physics=f"{TABLE_PREFIX}{tpath}",
    )
    label = name or f"{tm.name} table on {base.name}"
    pre = replace(
        base,
        name=label,
        description=f"{spec.description}; {base.description}",
        components={component: spec},
        truth_ranges={},
    )
    if fixed or ranges:
        pre = replace(customise_preset(pre, component, fixed=fixed, ranges=ranges), name=label)
    return pre


# ====================================================================== folded spectra
def customise_preset(
    preset: Preset | str,
    component: str,
    fixed: dict[str, float] | None = None,
    ranges: dict[str, tuple[float, float]] | None = None,
    physics: str | None = None,
) -> Preset:
    """``preset`` with one component changed, to train models for one's own source.

    ``fixed``: physical parameters held at a value (e.g. ``{"nH": 0.95}`` for that absorption in
    1e22 cm-2, ``{"velocity": 0.0}``, ``{"abundance": 0.5}``); a free parameter named here stops being
    one. ``ranges``: a new validity box (low, high) for a free parameter (its default is moved inside).
    ``physics``: another emission code for the component (``"apec"`` for the thermal plasma).
    The response, band and other component are the preset's.
    """
    pre = get_preset(preset)
    spec = _component(pre, component)
    if physics is not None and physics != spec.physics:
        component_model(component, physics)  # checks the name and that the code is available
        desc = _THERMAL_DESCRIPTION[physics] if component == "thermal" else spec.description
        spec = replace(spec, physics=physics, description=desc)
        pre = replace(pre, name=f"{pre.name} {physics}", components={**pre.components, component: spec})
    fixed = {str(k): float(v) for k, v in (fixed or {}).items()}
    ranges = {str(k): (float(v[0]), float(v[1])) for k, v in (ranges or {}).items()}
    known = set(component_model(component, spec.physics).param_names) | {"nH"}
    for k, v in fixed.items():
        if k not in known:
            raise SimulationError(f"{component} has no parameter {k!r} to fix; it has {sorted(known)}.")
        if not np.isfinite(v):
            raise SimulationError(f"fixed {k} must be a finite number; got {v}.")
    params = [q for q in spec.parameters if q.name not in fixed]
    if not params:
        raise SimulationError(f"fixing {sorted(fixed)} leaves {component} no free parameter to learn.")
    free = {q.name for q in params}
    for k, (lo, hi) in ranges.items():
        if k not in free:
            raise SimulationError(f"{component} has no free parameter {k!r} to give a range; free: {sorted(free)}.")
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise SimulationError(f"the range of {k} must be two finite numbers, low < high; got {lo}, {hi}.")
    params = [
        replace(
            q,
            low=ranges[q.name][0],
            high=ranges[q.name][1],
            default=min(max(q.default, ranges[q.name][0]), ranges[q.name][1]),
        )
        if q.name in ranges
        else q
        for q in params
    ]
    changes = [f"{k}={v:g}" for k, v in fixed.items()] + [f"{k} {lo:g}..{hi:g}" for k, (lo, hi) in ranges.items()]
    new_spec = replace(spec, parameters=tuple(params), fixed={**spec.fixed, **fixed})
    return replace(
        pre,
        name=f"{pre.name}[{component}: {', '.join(changes)}]" if changes else pre.name,
        components={**pre.components, component: new_spec},
    )


def response_preset(
    rmf: str | os.PathLike,
    arf: str | os.PathLike | None = None,
    band: tuple[float, float] = (0.5, 8.0),
    group: int = 1,
    nH: float | None = None,
    abundance: float | None = None,
    ranges: dict[str, tuple[float, float]] | None = None,
    components: tuple[str, ...] | list[str] = ("thermal", "powerlaw"),
    name: str | None = None,
    fixed: dict[str, float] | None = None,
    physics: str = "builtin",
) -> Preset:
    """A preset on one's own instrument response (OGIP RMF, optional ARF), to train models for that data.

    The channels are those of the RMF's EBOUNDS lying entirely inside ``band`` (keV), summed ``group``
    at a time from the first of them, exactly as ``bin_events(..., band=band, native=True, group=group)``
    bins an event list on the same channels, so a model trained on the preset matches such a cube.
    The components are the ``wide`` preset's (thermal: kT 0.2-5 keV, velocity +-6000 km/s; power law:
    index 1.5-4), each absorbed by ``nH`` (1e22 cm-2) when given; ``abundance`` sets the plasma's
    metal abundance (solar units). ``ranges``: new validity boxes, keyed by a parameter (``"kT"``,
    applied to every component that has it) or ``"<component> <parameter>"``; ``fixed``: more
    parameters held at a value (e.g. ``{"velocity": 0.0}``), by the same keys. ``physics``: the thermal
    plasma's emission code, ``"builtin"`` or ``"apec"`` (the optional APEC emulator). The response is read
    now, so bad files fail here with a :class:`~napari_sushi.core.response.ResponseError` naming them.
    """
    comps = [components] if isinstance(components, str) else list(components)
    if not comps or len(set(comps)) != len(comps) or any(c not in COMPONENT_MODELS for c in comps):
        raise SimulationError(f"components must be distinct names among {sorted(COMPONENT_MODELS)}; got {comps}.")
    try:
        lo, hi = (float(b) for b in band)
    except (TypeError, ValueError):
        raise SimulationError(f"band must be two energies (keV), low < high; got {band!r}.") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo < hi):
        raise SimulationError(f"band must be two finite energies 0 <= low < high (keV); got {lo:g}, {hi:g}.")
    if isinstance(group, bool) or not isinstance(group, (int, np.integer)) or group < 1:
        raise SimulationError(f"group must be a whole number of channels >= 1; got {group!r}.")
    if nH is not None and not (np.isfinite(nH) and nH >= 0):
        raise SimulationError(f"nH must be a finite column >= 0 (1e22 cm-2); got {nH}.")
    if abundance is not None and not (np.isfinite(abundance) and abundance > 0):
        raise SimulationError(f"abundance must be a finite number > 0 (solar units); got {abundance}.")
    rmf_path = Path(rmf).expanduser()
    key = (str(rmf_path),) if arf is None else (str(rmf_path), str(Path(arf).expanduser()))
    if "thermal" in comps:
        component_model("thermal", physics)  # unknown physics or a missing APEC extra fail before any work
    resp = _restricted(key, (lo, hi), int(group))  # reads and checks the files now
    base_fixed = {} if nH is None else {"nH": float(nH)}
    specs = {
        "thermal": _thermal_spec(
            0.2, 5.0, {**base_fixed, **({} if abundance is None else {"abundance": float(abundance)})}, physics
        ),
        "powerlaw": _powerlaw_spec(base_fixed),
    }
    label = name or (
        f"{rmf_path.stem} {lo:g}-{hi:g} keV"
        + (f" group {group}" if group > 1 else "")
        + ("" if nH is None else f" nH={nH:g}")
        + ("" if physics == "builtin" or "thermal" not in comps else f" {physics}")
    )
    pre = Preset(
        label,
        f"{resp.n_channels} channels {resp.channel_edges[0]:.4f}-{resp.channel_edges[-1]:.4f} keV of "
        f"{response_identity(*key)}" + ("" if nH is None else f", absorbed by N_H = {nH:g}e22 cm-2 (wilm)"),
        key,
        (lo, hi),
        (94, 94),
        {c: specs[c] for c in comps},
        {k: v for k, v in PRESETS["wide"].truth_ranges.items() if k.split()[0] in comps},
        peak_counts=600.0,
        kt_range=(0.6, 3.0),
        group=int(group),
    )
    per_comp = _per_component(comps, pre, ranges or {}, fixed or {})
    for c, (fx, rg) in per_comp.items():
        if fx or rg:
            pre = replace(customise_preset(pre, c, fixed=fx, ranges=rg), name=label)
    if "thermal" in pre.components:  # keep the simulated morphology's temperatures inside the box
        q = pre.components["thermal"].parameters
        box = next((p for p in q if p.name == "kT"), None)
        if box is not None:
            k_lo, k_hi = max(0.6, box.low), min(3.0, box.high)
            pre = replace(pre, kt_range=(k_lo, k_hi) if k_lo < k_hi else (box.low, box.high))
    return pre


def _per_component(comps: list[str], pre: Preset, ranges: dict, fixed: dict) -> dict[str, tuple[dict, dict]]:
    """Split ``{"kT": ..., "thermal kT": ...}`` keys of fixed values and ranges per component."""
    out: dict[str, tuple[dict, dict]] = {c: ({}, {}) for c in comps}
    for which, table in ((0, fixed), (1, ranges)):
        for k, v in table.items():
            parts = str(k).split()
            if len(parts) == 2 and parts[0] in comps:
                targets = [(parts[0], parts[1])]
            else:
                targets = [(c, str(k)) for c in comps if str(k) in set(COMPONENT_MODELS[c]().param_names) | {"nH"}]
                if not targets:
                    what = "fix" if which == 0 else "give a range"
                    raise SimulationError(f"no component among {comps} has a parameter {k!r} to {what}.")
            for c, name in targets:
                out[c][which][name] = v
    return out


def preset_for_cube(cube: HyperCube, rmf: str | os.PathLike, arf: str | os.PathLike | None = None, **kw) -> Preset:
    """:func:`response_preset` on the band and channel grouping of ``cube``, so its models match the cube.

    The cube must be binned on native channels of this response (e.g. ``bin_events(native=True)`` or
    ``napari-sushi bin --native``): its energy edges must be edges of the RMF's EBOUNDS (within 1e-4
    keV), every bin holding the same number of consecutive channels; otherwise a SimulationError
    says so. Other keywords (nH, abundance, ranges, components, name, fixed) go to :func:`response_preset`.
    """
    for k in ("band", "group"):
        if k in kw:
            raise SimulationError(f"preset_for_cube takes the {k} from the cube; do not give {k}=.")
    key = (str(Path(rmf).expanduser()),) if arf is None else (str(Path(rmf).expanduser()), str(Path(arf).expanduser()))
    full = load_response(key)
    ce, re_ = np.asarray(cube.energy_edges, float), full.channel_edges
    n = ce.size - 1
    advice = (
        f"the cube ({n} bins {ce[0]:.4f}-{ce[-1]:.4f} keV) is not on native channels of "
        f"{response_identity(*key)}: bin the event list on them (`napari-sushi bin --native --rmf "
        f"{Path(rmf).name}`) or train for the cube's grid from a spectral library"
    )
    hits = np.flatnonzero(np.abs(re_ - ce[0]) <= 1e-4)
    if hits.size == 0:
        raise SimulationError(f"{advice} (its first edge {ce[0]:.4f} keV is no channel edge).")
    i0 = int(hits[0])
    if cube.channels is not None and len(cube.channels) > 1:
        steps = np.diff(np.asarray(cube.channels, np.int64))
        group = int(steps[0])
    else:
        nxt = np.flatnonzero(np.abs(re_ - ce[1]) <= 1e-4)
        group = int(nxt[0]) - i0 if nxt.size else 0
    if group < 1 or i0 + n * group >= re_.size:
        raise SimulationError(f"{advice} (its bins are not whole groups of channels inside the response).")
    want = re_[i0 : i0 + n * group + 1 : group]
    if not np.allclose(want, ce, rtol=0, atol=1e-4):
        raise SimulationError(f"{advice} (its bins are not groups of {group} consecutive channels).")
    if cube.channels is not None and not np.array_equal(
        np.asarray(cube.channels), full.channels[i0 : i0 + n * group : group]
    ):
        raise SimulationError(
            f"{advice} (its channel numbers {int(cube.channels[0])}... differ from the RMF's "
            f"{int(full.channels[i0])}...)."
        )
    pre = response_preset(rmf, arf, band=(float(ce[0]), float(ce[-1])), group=group, **kw)
    if pre.n_channels != n or not np.allclose(pre.channel_edges, ce, rtol=0, atol=1e-4):
        raise SimulationError(f"{advice} (the band {ce[0]:.4f}-{ce[-1]:.4f} keV selects {pre.n_channels} bins).")
    return pre


def folded_spectra(
    component: str,
    params: Mapping[str, float | np.ndarray],
    response: Response | str,
    band: tuple[float, float],
    exposure: float = 1.0,
    abundance_table: str = "wilm",
    physics: str = "builtin",
) -> np.ndarray:
    """Expected counts per channel (n, C) of ``component`` folded through ``response`` in ``band``.

    ``component`` is ``"thermal"`` (params kT [keV], velocity [km/s], optional abundance, sigma_v
    [km/s], norm) or ``"powerlaw"`` (index, optional norm, e_cut [keV]); an ``nH`` entry (1e22 cm-2)
    multiplies by interstellar absorption. Parameters are scalars or (n,) arrays; normalisations
    follow :mod:`napari_sushi.core.physics` (divide by the row sum for unit-sum shapes).
    """
    emin, emax = (float(b) for b in band)
    if isinstance(response, (str, tuple, list)):
        resp = _restricted(_response_key(response), (emin, emax))  # cached per (response, band)
    elif response.band is None or abs(response.band[0] - emin) > 1e-9 or abs(response.band[1] - emax) > 1e-9:
        resp = response.restrict(emin, emax)
    else:
        resp = response
    model = component_model(component, physics)
    p = {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in params.items()}
    needed = [k for k in model.param_names if k not in model.defaults]
    missing = [k for k in needed if k not in p]
    if missing:
        raise SimulationError(f"component {component!r} needs parameters {missing}; got {sorted(p)}.")
    unknown = set(p) - set(model.param_names) - {"nH"}
    if unknown:
        raise SimulationError(
            f"component {component!r} has no parameters {sorted(unknown)}; it takes {list(model.param_names)} and nH."
        )
    sizes = {v.size for v in p.values() if v.size != 1}
    if len(sizes) > 1:
        raise SimulationError(f"parameter arrays have different lengths {sorted(sizes)}.")
    n = sizes.pop() if sizes else 1
    full = Absorption(abundance_table) * model if "nH" in p else model
    out = np.empty((n, resp.n_channels))
    for i0 in range(0, n, _CHUNK):
        chunk = {k: (v if v.size == 1 else v[i0 : i0 + _CHUNK]) for k, v in p.items()}
        if n > 1:  # broadcast scalars to the chunk length
            m = min(_CHUNK, n - i0)
            chunk = {k: np.broadcast_to(v, (m,)) if v.size == 1 else v for k, v in chunk.items()}
        try:
            flux = full(resp.energy_edges, chunk)
        except PhysicsError as exc:
            raise SimulationError(f"{component}: {exc}") from None
        out[i0 : i0 + flux.shape[0]] = resp.fold(flux, exposure)
    return out


def unit_spectra(preset: Preset, component: str, params: dict[str, np.ndarray]) -> np.ndarray:
    """Unit-sum folded spectra (n, C) of a preset's component (the shapes the solver's models learn)."""
    s = preset.folded_spectra(component, params)
    return s / s.sum(axis=1, keepdims=True)


# ====================================================================== morphology
@dataclass
class SimulatedRemnant:
    """A simulated cube with its truth maps (keyed ``"<component> amplitude"``/``"<component> <param>"``)."""

    cube: HyperCube
    truth: dict[str, np.ndarray]
    units: dict[str, str]
    expected: np.ndarray  # noiseless expected counts (E, Y, X)
    preset: str
    seed: int


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field smoothed on ``sigma`` pixels (FFT, periodic)."""
    from scipy.ndimage import gaussian_filter

    f = gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (f - f.mean()) / f.std()


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _shell_path(r: np.ndarray, r_in: float, r_out: float) -> np.ndarray:
    """Projected path length through a uniform spherical shell r_in..r_out at projected radius r."""
    outer = np.sqrt(np.clip(r_out**2 - r**2, 0.0, None))
    inner = np.sqrt(np.clip(r_in**2 - r**2, 0.0, None))
    return 2.0 * (outer - inner)


def remnant_maps(preset: Preset, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Truth maps of a remnant-like source: shell + knots (thermal) and rim filaments (power law)."""
    ny, nx = preset.shape
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    scale = min(ny, nx) / 94.0
    cy, cx = (ny - 1) / 2.0 + 1.5 * scale, (nx - 1) / 2.0 - 1.0 * scale
    radius = 38.0 * scale
    dx, dy = x - cx, y - cy
    r = np.hypot(dx, dy)
    theta = np.arctan2(dy, dx)

    # thermal: limb-brightened ejecta shell, lumpy, with a brighter side and a dozen knots
    shell = _shell_path(r, 0.72 * radius, radius) / radius
    lumps = np.exp(0.35 * _smooth_field(rng, (ny, nx), 2.5 * scale))
    side = 1.0 + 0.35 * np.cos(theta - rng.uniform(0, 2 * np.pi))
    knots = np.zeros((ny, nx))
    for _ in range(12):
        kr = radius * rng.uniform(0.55, 0.95)
        ka = rng.uniform(0, 2 * np.pi)
        ks = rng.uniform(1.5, 3.0) * scale
        knots += rng.uniform(0.6, 1.6) * np.exp(
            -((x - cx - kr * np.cos(ka)) ** 2 + (y - cy - kr * np.sin(ka)) ** 2) / (2 * ks**2)
        )
    th_amp = (shell * side * lumps + knots * (r < radius)) * (r < 1.02 * radius)

    # power law: thin filaments at the forward shock on two opposite limbs (bipolar, like SN 1006)
    axis = rng.uniform(0, np.pi)
    r_fil = radius * (1.04 + 0.015 * np.sin(3 * theta + rng.uniform(0, 2 * np.pi)))
    filament = np.exp(-0.5 * ((r - r_fil) / (1.1 * scale)) ** 2)
    polar = np.cos(theta - axis) ** 2
    arcs = polar**3
    pl_amp = filament * arcs * np.exp(0.25 * _smooth_field(rng, (ny, nx), 3.0 * scale))
    pl_amp += 0.04 * shell * arcs  # faint projected synchrotron shell inside the bright limbs

    # parameter maps (defined everywhere, smooth)
    k_lo, k_hi = preset.kt_range
    grad_dir = rng.uniform(0, 2 * np.pi)
    grad = (dx * np.cos(grad_dir) + dy * np.sin(grad_dir)) / radius
    kt = k_lo + (k_hi - k_lo) * _sigmoid(1.6 * grad + 0.6 * _smooth_field(rng, (ny, nx), 6.0 * scale))
    vel_dir = rng.uniform(0, 2 * np.pi)
    proj = (dx * np.cos(vel_dir) + dy * np.sin(vel_dir)) / radius
    depth = np.sqrt(np.clip(1.0 - (r / radius) ** 2, 0.0, None))
    velocity = 5000.0 * depth * np.tanh(proj / 0.08) + 250.0 * _smooth_field(rng, (ny, nx), 4.0 * scale) * depth
    velocity = np.clip(velocity, -5000.0, 5000.0)
    # hardest (index ~2) where the filaments cross the bipolar axis, softer (~3.5) towards their ends
    across = np.abs(-dx * np.sin(axis) + dy * np.cos(axis)) / radius  # distance from the axis
    index = 2.0 + 1.5 * _sigmoid(6.0 * (across - 0.45) + 0.6 * _smooth_field(rng, (ny, nx), 5.0 * scale))

    total = 0.8 * th_amp / th_amp.max() + 0.5 * pl_amp / pl_amp.max()
    norm = preset.peak_counts / total.max()
    th_amp = np.where(th_amp > 1e-9 * th_amp.max(), th_amp, 0.0)
    pl_amp = np.where(pl_amp > 1e-9 * pl_amp.max(), pl_amp, 0.0)
    return {
        "thermal amplitude": 0.8 * th_amp / th_amp.max() * norm,
        "thermal kT": kt,
        "thermal velocity": velocity,
        "powerlaw amplitude": 0.5 * pl_amp / pl_amp.max() * norm,
        "powerlaw index": index,
    }


TRUTH_UNITS = {
    "thermal amplitude": "count",
    "thermal kT": "keV",
    "thermal velocity": "km/s",
    "powerlaw amplitude": "count",
    "powerlaw index": "",
}


def _wcs(shape: tuple[int, int]) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [350.85, 58.815]  # a toy placed at Cas A's position
    w.wcs.crpix = [(shape[1] + 1) / 2.0, (shape[0] + 1) / 2.0]
    w.wcs.cdelt = [-1.968 / 3600.0, 1.968 / 3600.0]  # 4 x 0.492" ACIS pixels
    w.wcs.cunit = ["deg", "deg"]
    return w


def simulate_remnant(preset: str | Preset = "toy", seed: int = 0) -> SimulatedRemnant:
    """Simulate a remnant cube (Poisson counts) and its truth maps; bit-for-bit reproducible per seed.

    The preset's own morphology (:func:`remnant_maps`) drawn from ``default_rng(seed)``, then
    :func:`simulate_from_maps` with the same generator.
    """
    pre = get_preset(preset)
    _check_seed(seed)
    rng = np.random.default_rng(int(seed))
    return _simulate(pre, _check_truth_maps(pre, remnant_maps(pre, rng)), rng, int(seed), None)


def _check_seed(seed) -> None:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise SimulationError(f"seed must be a non-negative integer; got {seed!r}.")


def _check_truth_maps(pre: Preset, maps: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The truth maps as float arrays of one image shape, every component's amplitude and parameters present."""
    needed = [f"{c} amplitude" for c in pre.components] + [
        f"{c} {p}" for c, spec in pre.components.items() for p in spec.param_names
    ]
    missing = [k for k in needed if k not in maps]
    if missing:
        raise SimulationError(f"truth maps lack {missing}; give a (Y, X) map for each of {needed}.")
    out = {k: np.asarray(maps[k], dtype=float) for k in needed}
    shapes = {v.shape for v in out.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise SimulationError(
            f"truth maps must all be 2-D images of one shape; got shapes { {k: v.shape for k, v in out.items()} }."
        )
    for k, v in out.items():
        if not np.all(np.isfinite(v)):
            raise SimulationError(f"truth map {k!r} has NaN or infinite values; give finite values.")
        if k.endswith(" amplitude") and (v < 0).any():
            raise SimulationError(f"truth map {k!r} has negative expected counts; amplitudes must be >= 0.")
    for c, spec in pre.components.items():
        for q in spec.parameters:
            v = out[f"{c} {q.name}"]
            if v.min() < q.low or v.max() > q.high:
                raise SimulationError(
                    f"truth map '{c} {q.name}' spans {v.min():g}..{v.max():g}, outside the "
                    f"preset's box {q.low:g}..{q.high:g} {q.unit}; clip it or widen the box."
                )
    return out


def simulate_from_maps(
    preset: str | Preset,
    truth_maps: dict[str, np.ndarray],
    seed: int | np.random.Generator = 0,
    *,
    name: str | None = None,
) -> SimulatedRemnant:
    """A Poisson cube from any truth maps: ``cube = Poisson(sum_c A_c S_c(theta_c))`` with the preset's physics.

    ``truth_maps`` holds, for every component of the preset, ``"<component> amplitude"`` (expected
    counts of that component in the band per pixel) and ``"<component> <parameter>"`` maps, all of
    one (Y, X) shape (the preset's ``shape`` is not used); parameter maps must lie in the preset's
    boxes. ``seed``: an integer (``numpy.random.default_rng(seed)``) or a Generator to draw the noise
    from; :func:`simulate_remnant` is this function applied to :func:`remnant_maps` with the generator
    that drew them, so a user's maps and the presets go through exactly the same path.
    """
    pre = get_preset(preset)
    if isinstance(seed, np.random.Generator):
        rng, seed_value = seed, -1
    else:
        _check_seed(seed)
        rng, seed_value = np.random.default_rng(int(seed)), int(seed)
    return _simulate(pre, _check_truth_maps(pre, truth_maps), rng, seed_value, name)


def _simulate(
    pre: Preset, maps: dict[str, np.ndarray], rng: np.random.Generator, seed_value: int, name: str | None
) -> SimulatedRemnant:
    ny, nx = next(iter(maps.values())).shape
    expected = np.zeros((ny * nx, pre.n_channels))
    for c, spec in pre.components.items():
        params = {p: maps[f"{c} {p}"].ravel() for p in spec.param_names}
        expected += unit_spectra(pre, c, params) * maps[f"{c} amplitude"].reshape(-1, 1)
    expected = np.ascontiguousarray(expected.T.reshape(-1, ny, nx))
    counts = rng.poisson(expected).astype(np.int32)
    header = fits.Header()
    header["OBJECT"] = (f"simulated remnant ({pre.name})", "napari-sushi simulate")
    header["SIMPRES"] = (pre.name[:68], "napari-sushi simulation preset")
    header["SIMSEED"] = (seed_value, "random seed (numpy default_rng; -1: a Generator)")
    header["RESPONSE"] = (pre.response_id[:68], "instrument response used to fold the spectra")
    if pre.group > 1:
        header["CHGROUP"] = (int(pre.group), "channels per energy bin")
    header["EXPNOTE"] = ("nominal", "amplitudes are counts; EXPOSURE nominal")
    fixed = {k: v for spec in pre.components.values() for k, v in spec.fixed.items()}
    header["ABUND"] = (float(fixed.get("abundance", 1.0)), "metal abundance of the plasma (solar)")
    header["NH"] = (float(fixed.get("nH", 0.0)), "[1e22 cm-2] absorption column (fixed)")
    header["ABUNDTAB"] = (pre.abundance_table, "abundance table of the absorption")
    cube = HyperCube(
        counts=counts,
        energy_edges=pre.channel_edges,
        wcs=_wcs((ny, nx)),
        exposure=pre.exposure,
        header=header,
        channels=pre.channels,
        name=name or f"{pre.name}-seed{seed_value}",
    )
    units = {k: TRUTH_UNITS.get(k, "count" if k.endswith(" amplitude") else "") for k in maps}
    return SimulatedRemnant(cube, maps, units, expected, pre.name, seed_value)


def write_simulation(sim: SimulatedRemnant, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write the cube (primary HDU) and every truth map (IMAGE extension, TRUTH=T) in one FITS file."""
    from napari_sushi.core.io.fits_cube import write_cube_fits

    cube = sim.cube
    if cube.counts.max() <= np.iinfo(np.int16).max:
        from dataclasses import replace

        cube = replace(cube, counts=cube.counts.astype(np.int16))
    maps = {k: v.astype(np.float32) for k, v in sim.truth.items()}  # float32 keeps the file compact
    return write_cube_fits(
        cube, path, maps=maps, units=sim.units, header=None, overwrite=overwrite, map_header={"TRUTH": True}
    )


__all__ = [
    "PRESETS",
    "ComponentSpec",
    "Preset",
    "SimulatedRemnant",
    "SimulationError",
    "folded_spectra",
    "customise_preset",
    "get_preset",
    "preset_for_cube",
    "remnant_maps",
    "response_preset",
    "simulate_from_maps",
    "simulate_remnant",
    "unit_spectra",
    "write_simulation",
]

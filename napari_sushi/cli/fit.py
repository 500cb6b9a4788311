"""``napari-sushi fit``: SUSHI parameter maps from a cube, written to a multi-extension FITS file.

Shared with ``napari-sushi pixelfit`` (same options, no regularisation). Ctrl-C sets the fit's
cancel flag, so the fit stops cleanly at the next iteration and nothing is written (exit 130); a
second Ctrl-C aborts at once.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from napari_sushi.cli import CLIError
from napari_sushi.cli.bin import add_response_options, describe_response
from napari_sushi.core.solver.links import merge_links

if TYPE_CHECKING:  # astropy (via the result module) loads only when a fit runs, not for --help
    from napari_sushi.core.solver.result import FitMaps
from napari_sushi.core.solver.settings import FitSettings

_DEFAULTS = FitSettings()


def add_common(p: argparse.ArgumentParser, regularised: bool) -> None:
    """Options shared by ``fit`` and ``pixelfit``."""
    p.add_argument("cube", type=Path, help="cube file (FITS cube, .npy/.npz), or an event list with --bin-events")
    p.add_argument("-o", "--output", type=Path, required=True, help="output maps (multi-extension FITS)")
    p.add_argument(
        "--model",
        action="append",
        metavar="NAME_OR_FILE",
        help="spectral model per component: a shipped name (see `napari-sushi models`) or a file; "
        "repeat for several components; NAME=MODEL sets the component name. Default: the "
        "thermal and power-law models whose energy grid matches the cube",
    )
    if regularised:
        p.add_argument(
            "--kmad",
            action="append",
            metavar="K or COMP.PARAM=K",
            help=f"regularisation strength (default {_DEFAULTS.kmad_default:g}): one number for every map, "
            "or per map; repeatable",
        )
        p.add_argument(
            "--scales",
            type=int,
            default=_DEFAULTS.n_scales,
            metavar="J",
            help=f"number of thresholded starlet scales (default {_DEFAULTS.n_scales})",
        )
        p.add_argument(
            "--step-rule",
            choices=["newton", "fixed"],
            default="newton",
            help="parameter step: Fisher-preconditioned (default) or the reference fixed step",
        )
        p.add_argument(
            "--threshold-only",
            action="store_true",
            help="stop after the fast thresholding phase instead of minimising the objective from "
            "there (quicker; that result depends on the step rule)",
        )
        p.add_argument(
            "--uncertainty",
            choices=["fisher", "bootstrap"],
            default=_DEFAULTS.uncertainty,
            help="sigma maps: per-pixel Fisher bounds (default; ignore the regulariser) or a parametric "
            "bootstrap of the regularised fit (also writes '<map> bias' maps; about N x 40 "
            "iterations more)",
        )
        p.add_argument(
            "--bootstrap",
            type=int,
            default=_DEFAULTS.n_bootstrap,
            metavar="N",
            help=f"bootstrap replicas with --uncertainty bootstrap (>= 2; default {_DEFAULTS.n_bootstrap})",
        )
        p.add_argument(
            "--start",
            choices=["scan", "default"],
            default=_DEFAULTS.start,
            help="scan: a global grid scan of every parameter box starts the coarse fit (default; "
            "--init values are then not used); default: start from the models' defaults or --init",
        )
        t = p.add_argument_group("tiled fits of large fields")
        t.add_argument(
            "--tile",
            type=int,
            metavar="N",
            help="fit in N x N tiles that share the field's start and penalty weights, stitched without "
            "their halos (for fields too large for one device; tiles run in parallel with --workers)",
        )
        t.add_argument(
            "--halo",
            type=int,
            metavar="H",
            help="pixels each tile reaches beyond its own (default: the starlet's reach + 2, 16 at J = 3)",
        )
        t.add_argument(
            "--tile-rounds",
            type=int,
            default=3,
            metavar="R",
            help="passes over the tiles at most; later ones re-fit from the stitched maps (default 3)",
        )
        from napari_sushi.cli.batch import add_cluster_options

        add_cluster_options(t)
        p.add_argument(
            "--regularise-shares",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="regularise each pixel's split of the counts between components like a parameter map "
            "(amplitudes = total x shares; strength --kmad share=K); on by default, --no-regularise-shares "
            "for free per-pixel amplitudes (the published scheme)",
        )
        p.add_argument(
            "--anchor",
            action="append",
            metavar="auto|start|coarse|free or COMP.PARAM=MODE",
            help="what the penalty holds a map to: 'auto' (default) chooses per map from how it trades off "
            "against the others, measured on each fit (with the shipped models: 'coarse' for temperature, "
            "index and shares, 'start' for a velocity; recorded in the output's provenance); 'start' "
            "its departure from the coarse start, large scales included; 'coarse' its own detail, and its large "
            "scales to the start's; 'free' its own detail only, its level set by the data (the published "
            "scheme); for every map or per map (share=MODE for the shares); repeatable",
        )
    else:
        p.add_argument("--starts", type=int, default=4, metavar="N", help="starting points per pixel (default 4)")
    p.add_argument(
        "--fix",
        action="append",
        default=[],
        metavar="COMP.PARAM=VALUE",
        help="hold a parameter fixed at a value or a map (.npy or 2-D FITS file); repeatable",
    )
    p.add_argument(
        "--init",
        action="append",
        default=[],
        metavar="COMP.PARAM=VALUE",
        help="initial value of a free parameter: a number or a .npy/FITS map (default: SUSHI starts "
        "from a fit of the 4x4-binned cube, the per-pixel fit from the model's default); SUSHI "
        "uses it with --start default only (the global scan does not take starting values)",
    )
    p.add_argument(
        "--warm-start",
        type=Path,
        metavar="MAPS.fits",
        help="start from the maps of an earlier napari-sushi fit or pixelfit (its FITS output), at any "
        "binning of this cube (e.g. refine a --binning 4 run at full resolution); --init values "
        "take precedence",
    )
    p.add_argument(
        "--link",
        action="append",
        default=[],
        metavar="A.P,B.P",
        help="parameters sharing one map, comma-separated; repeatable",
    )
    p.add_argument(
        "--band",
        nargs=2,
        type=float,
        metavar=("EMIN", "EMAX"),
        help="energy band in keV (default: the models'; with --bin-events also the binning band, default 0.5 8)",
    )
    p.add_argument(
        "--binning",
        type=int,
        default=None,
        metavar="F",
        help="spatial binning F x F before fitting (default 1); with --bin-events: sky pixels per image "
        "pixel (default: the image within 512 pixels)",
    )
    ev = p.add_argument_group("event lists (with --bin-events)")
    ev.add_argument(
        "--bin-events",
        action="store_true",
        help="CUBE is an event list: bin it here on the instrument's native channels (as "
        "`napari-sushi bin --native` does) before fitting",
    )
    ev.add_argument("--group", type=int, default=1, metavar="N", help="native channels per energy bin (default 1)")
    ev.add_argument(
        "--cutout",
        nargs=4,
        type=float,
        metavar=("X0", "X1", "Y0", "Y1"),
        help="keep sky pixels X0 <= x < X1, Y0 <= y < Y1 (see `napari-sushi info EVENTS`)",
    )
    add_response_options(ev)
    p.add_argument("--mask", type=Path, help="pixel mask (.npy or 2-D FITS; non-zero = use)")
    p.add_argument("--background", type=Path, help="expected background counts: spectrum (E,) or cube (.npy/FITS)")
    p.add_argument("--cost", choices=["poisson", "chi2"], default="poisson", help="statistic (default poisson)")
    p.add_argument("--max-iter", type=int, default=300 if regularised else 100, metavar="N", help="iteration limit")
    p.add_argument(
        "--tol",
        type=float,
        default=_DEFAULTS.tol,
        metavar="T",
        help=f"relative cost change over {_DEFAULTS.window} iterations to stop (default {_DEFAULTS.tol:g})",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads of the fit (default 1: faster for the solver's small blocks, see README 'Speed')",
    )
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--with-cubes", action="store_true", help="also write model, per-component and residual cubes")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "fit",
        help="SUSHI fit: regularised physical parameter maps",
        description="Fit a cube with SUSHI (Poisson likelihood + starlet sparsity of the parameter maps) and "
        "write amplitude, parameter, 1-sigma and goodness-of-fit maps to FITS.",
        epilog="example: napari-sushi fit toy.fits --model toy-thermal-emulator --model toy-powerlaw-emulator "
        "-o maps.fits",
    )
    add_common(p, regularised=True)
    return p


def _read_array(path: Path, what: str) -> np.ndarray:
    """A 2-D map from .npy or FITS (first image HDU), every failure a CLIError naming the file."""
    from napari_sushi.core.io.map_file import read_map_array

    return read_map_array(path, what, error=CLIError)


def _number_or_map(text: str, what: str):
    try:
        return float(text)
    except ValueError:
        return _read_array(Path(text), what)


def build_request(args: argparse.Namespace, regularised: bool):
    """(cube, components, settings) from the command line, with clear errors."""
    from napari_sushi.core.solver.settings import Component, FitSettings, unique_name
    from napari_sushi.core.solver.objective import ANCHORS, anchor_values, free_map_keys
    from napari_sushi.core.spectral.registry import load_model

    from napari_sushi.cli.paths import check_output

    check_output(
        args.output,
        args.overwrite,
        inputs=(
            args.cube,
            getattr(args, "mask", None),
            getattr(args, "background", None),
            getattr(args, "warm_start", None),
        ),
    )
    if not args.cube.exists():
        raise CLIError(f"cube file {args.cube} does not exist; check the path.")
    cube, binning = _read_input(args)
    comps = []
    names = set()
    specs = args.model or _default_models(cube, quiet=args.quiet)
    for spec in specs:
        name, _, ref = spec.rpartition("=") if "=" in spec and not Path(spec).exists() else ("", "", spec)
        model = load_model(ref)
        name = unique_name(name or model.component, names)
        names.add(name)
        comps.append(Component(name, model))
    by_name = {c.name: c for c in comps}
    for opt, items, field in (("--fix", args.fix, "fixed"), ("--init", args.init, "init")):
        for item in items:
            key, eq, val = item.partition("=")
            comp, dot, param = key.partition(".")
            if not eq or not dot:
                raise CLIError(f"{opt} wants COMPONENT.PARAMETER=VALUE; got {item!r}.")
            if comp not in by_name:
                raise CLIError(f"{opt} {item!r}: no component {comp!r} (components: {', '.join(by_name)}).")
            getattr(by_name[comp], field)[param] = _number_or_map(val, f"{opt} {key}")
    links = []
    for item in args.link:
        keys = tuple(k.strip() for k in item.split(",") if k.strip())
        if len(keys) < 2:
            raise CLIError(f"--link wants at least two COMPONENT.PARAMETER names separated by commas; got {item!r}.")
        links.append(keys)
    st = FitSettings(
        links=merge_links(links),
        cost=args.cost,
        band=None if args.band is None else tuple(args.band),
        binning=binning,
        max_iter=args.max_iter,
        tol=args.tol,
        device=args.device,
        dtype=args.dtype,
        seed=args.seed,
        threads=args.threads,
    )
    if args.threads is not None and args.threads < 1:
        raise CLIError(f"--threads wants a whole number >= 1; got {args.threads}.")
    if regularised:
        st.n_scales = args.scales
        st.step_rule = args.step_rule
        st.minimise_objective = not args.threshold_only
        if args.bootstrap < 2:
            raise CLIError(f"--bootstrap wants at least 2 replicas (a spread needs two); got {args.bootstrap}.")
        st.uncertainty = args.uncertainty
        st.n_bootstrap = args.bootstrap
        if args.regularise_shares is not None:
            st.regularise_shares = bool(args.regularise_shares)
        st.start = args.start
        per = {}
        for item in args.kmad or []:
            if "=" in item:
                k, _, v = item.partition("=")
                per[k.strip()] = _float(v, "--kmad")
            else:
                st.kmad_default = _float(item, "--kmad")
        st.kmad = per or st.kmad_default  # per-map values; maps not named use kmad_default
        anchors: dict[str, str] = {}
        for item in args.anchor or []:
            k, eq, v = item.partition("=")
            if eq:
                anchors[k.strip()] = v.strip()
            else:
                st.anchor = item.strip()
        if anchors:  # per-map values over the one given for every map (maps not named: "auto")
            base = st.anchor if isinstance(st.anchor, str) else "auto"
            every = {k: base for k in free_map_keys(comps, st.regularise_shares)}
            st.anchor = anchors if base == "auto" else every | anchors
        for v in anchor_values(st.anchor):
            if v not in ANCHORS:
                raise CLIError(
                    f"--anchor wants one of {', '.join(ANCHORS)} (for every map, or COMP.PARAM=MODE); got {v!r}."
                )
    else:
        st.kmad = 0.0
        st.n_starts = args.starts
    if args.warm_start is not None:
        st.warm_start = _warm_start(args.warm_start)
    if args.mask is not None:
        st.mask = _read_array(args.mask, "mask") != 0
    if args.background is not None:
        st.background = _read_array(args.background, "background")
    return cube, comps, st


_EVENT_OPTIONS = ("group", "cutout", "rmf", "arf")


def _read_input(args: argparse.Namespace):
    """(cube, fit binning): a cube file as it is, or an event list binned here with --bin-events."""
    from napari_sushi.core.io.read import file_kind, read_cube

    kind = file_kind(args.cube)
    given = [f"--{k}" for k in _EVENT_OPTIONS if getattr(args, k) not in (None, 1)]
    if kind != "events":
        if args.bin_events or given:
            raise CLIError(
                f"{' '.join(['--bin-events'] * args.bin_events + given)} apply to event lists only; "
                f"{args.cube} is a {kind} file."
            )
        return read_cube(args.cube), 1 if args.binning is None else args.binning
    if not args.bin_events:
        raise CLIError(
            f"{args.cube} is an event list, not a cube: bin it first with `napari-sushi bin {args.cube} -o cube.fits "
            "--native` (then fit cube.fits), or add --bin-events to bin it here (native channels over 0.5-8 keV; "
            "--band, --group, --binning, --cutout, --rmf/--arf)."
        )
    opts = {
        "band": None if args.band is None else tuple(args.band),
        "group": args.group,
        "binning": args.binning,
        "cutout": None if args.cutout is None else tuple(args.cutout),
        "rmf": args.rmf,
        "arf": args.arf,
    }
    cube = read_cube(args.cube, **opts)
    if not args.quiet:
        ne, ny, nx = cube.shape
        kind = "native channels" if cube.channels is not None else "channels"
        print(
            f"binned {args.cube}: {ne} {kind} ({cube.energy_edges[0]:.4g}-{cube.energy_edges[-1]:.4g} keV) x {ny} x "
            f"{nx} pixels of {cube.header.get('SPBIN', '?')} sky pixels, {int(cube.total_counts):,} counts; "
            f"{describe_response(cube)}",
            file=sys.stderr,
        )
    return cube, 1  # --binning was the events' spatial binning


def _default_models(cube, quiet: bool = False) -> list[str]:
    """The thermal and power-law models whose grid matches the cube (:func:`~napari_sushi.core.spectral.defaults.default_models`)."""
    from napari_sushi.core.spectral.defaults import NoMatchingModelError, default_models

    try:
        chosen = default_models(cube)
    except NoMatchingModelError as exc:
        raise CLIError(str(exc).replace("or name the models", "or give --model")) from None
    if not quiet:
        print(
            "models matching the cube: "
            + ", ".join(chosen.names)
            + (
                f" (no {' or '.join(chosen.missing)} model matches; train one with `napari-sushi train --rmf RMF ...`)"
                if chosen.missing
                else ""
            ),
            file=sys.stderr,
        )
    return chosen.paths


def _warm_start(path: Path) -> FitMaps:
    """The maps of an earlier fit's FITS output, as ``FitSettings.warm_start`` (the fit checks they match)."""
    from napari_sushi.core.io.errors import CubeError
    from napari_sushi.core.io.maps import read_maps_fits

    if not path.exists():
        raise CLIError(f"--warm-start file {path} does not exist.")
    try:
        from napari_sushi.core.solver.result import split_maps

        return split_maps(read_maps_fits(path).maps)
    except (CubeError, OSError) as exc:
        raise CLIError(f"cannot read --warm-start {path}: {exc}") from None


def _float(text: str, opt: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise CLIError(f"{opt} wants a number; got {text!r}.") from None


def run_fit(args: argparse.Namespace, regularised: bool) -> int:
    """Run SUSHI or the per-pixel fit with a progress bar; Ctrl-C cancels and writes nothing."""
    from napari_sushi.core.solver.pixelfit import pixelfit
    from napari_sushi.core.solver.sushi import fit

    cube, comps, st = build_request(args, regularised)
    fn = fit if regularised else pixelfit
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(
            total=st.max_iter * (1 if regularised else st.n_starts),
            desc="sushi" if regularised else "pixelfit",
            unit="it",
            file=sys.stderr,
            disable=None,
            leave=False,
        )

    def progress(p) -> None:
        if bar is not None:
            bar.total = p.max_iter
            bar.update(p.iteration - bar.n)
            bar.set_postfix(cost=f"{p.cost:.6g}", refresh=False)

    cancel = threading.Event()

    def on_sigint(signum, frame) -> None:  # first Ctrl-C: stop at the next iteration; second: abort
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    if not args.quiet:
        ne, ny, nx = cube.shape
        print(
            f"fitting {args.cube} ({ne}x{ny}x{nx}) with {', '.join(c.name for c in comps)}; Ctrl-C cancels",
            file=sys.stderr,
            flush=True,
        )
    previous = (
        signal.signal(signal.SIGINT, on_sigint) if threading.current_thread() is threading.main_thread() else None
    )
    try:
        if regularised and args.tile is not None:
            res = _tiled(args, cube, comps, st, cancel, bar)
        else:
            if getattr(args, "workers", None) is not None or getattr(args, "scheduler", None):
                raise CLIError("--workers and --scheduler apply to tiled fits (--tile N); a whole-cube fit runs here.")
            res = fn(cube, comps, st, callback=progress, cancel=cancel)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        if bar is not None:
            bar.close()
    if cancel.is_set() or res is None or res.stop_reason == "cancelled":
        print("napari-sushi: fit cancelled; nothing was written.", file=sys.stderr)
        return 130
    if isinstance(res.provenance, dict):  # the data's response travels to the maps' provenance
        res.provenance["data_response"] = None if cube.response is None else cube.response.as_meta()
        res.provenance["data_file"] = str(args.cube)
    res.to_fits(args.output, include_cubes=args.with_cubes, overwrite=args.overwrite)
    if not args.quiet:
        ny, nx = res.gof.shape
        print(
            f"wrote {args.output}: {len(res.all_maps())} maps of {ny}x{nx} pixels; {res.method} "
            f"{res.stop_reason} after {res.n_iter} iterations in {res.wall_time:.1f} s on {res.device}"
        )
        for line in parameter_summary(res):
            print(line)
    return 0


def _tiled(args: argparse.Namespace, cube, comps, st, cancel: threading.Event, bar):
    """The tiled fit of ``fit --tile``, here or on the cluster of --workers/--scheduler (None if cancelled)."""
    from napari_sushi.core.cluster import dask_client
    from napari_sushi.core.solver.tiled import tiled_fit

    if args.tile < 8:
        raise CLIError(f"--tile wants a tile size >= 8 pixels; got {args.tile}.")
    if args.halo is not None and args.halo < 0:
        raise CLIError(f"--halo wants a whole number >= 0; got {args.halo}.")
    if args.tile_rounds < 1:
        raise CLIError(f"--tile-rounds wants a whole number >= 1; got {args.tile_rounds}.")

    def on_tile(rnd: int, done: int, n: int) -> None:
        if bar is not None:
            if done == 1:
                bar.reset(total=n)
                bar.set_description(f"tiles, round {rnd}")
            bar.update(1)

    with dask_client(args.scheduler, args.workers) as client:
        return tiled_fit(
            cube,
            comps,
            st,
            tile=args.tile,
            halo=args.halo,
            rounds=args.tile_rounds,
            client=client,
            on_tile=on_tile,
            cancel=cancel,
        )


def parameter_summary(res) -> list[str]:
    """One line per fitted parameter map: its median and the share of pixels its own data leave free
    (:meth:`~napari_sushi.core.solver.result.FitResult.unconstrained_share`)."""
    lines = []
    boot = str((res.provenance or {}).get("sigma_method", "")).startswith("parametric bootstrap")
    for key, share in res.unconstrained_share().items():
        unit = res.units.get(key, "")
        median = np.nanmedian(res.params[key])
        what = (
            "whose bootstrap sigma (the regularised fit's) reaches the validity box's spread"
            if boot
            else "not constrained by their own data (sigma >= the validity box's spread)"
        )
        lines.append(f"  {key}: median {median:.4g}{' ' + unit if unit else ''}; {100 * share:.0f} % of pixels {what}")
    if lines and res.method == "sushi" and not boot:
        lines.append("  (there a SUSHI map follows its neighbours and its start; see the sigma maps)")
    edges = res.edge_summary()
    if edges:
        lines.append(f"  warning: {edges}")
    return lines


def run(args: argparse.Namespace) -> int:
    return run_fit(args, regularised=True)

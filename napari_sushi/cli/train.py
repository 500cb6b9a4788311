"""``napari-sushi train``: train a spectral model from the simulator (a preset, or your own RMF/ARF)
or from a spectral library.

With ``--rmf`` (and ``--arf``) the model is built for that response's channels inside ``--band``,
grouped ``--group`` at a time, exactly as ``napari-sushi bin --native`` bins an event list on them;
without ``-o`` it is saved in your user model folder and can be loaded by name.
"""

from __future__ import annotations

import argparse

from napari_sushi.cli import CLIError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="train a spectral model (emulator, iae or reference)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n"
        "  napari-sushi train --preset toy --component thermal --family emulator -o thermal.safetensors\n"
        "  napari-sushi train --rmf acis.rmf --arf acis.arf --component thermal --nH 0.95 --band 0.5 8 "
        "--range kT=0.2,5\n"
        "      (saved in your model folder as acis-thermal-emulator; fit with --model acis-thermal-emulator)",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", help="simulator preset (instrument and band), e.g. toy or wide")
    src.add_argument("--library", metavar="FILE", help="spectral library (.fits or .npz; format in the docs)")
    src.add_argument("--rmf", metavar="FILE", help="your instrument's OGIP RMF (or RSP): train for its channels")
    p.add_argument("--arf", metavar="FILE", help="with --rmf: the matching ARF (effective area)")
    p.add_argument("--component", help="component to simulate: thermal or powerlaw (with --preset or --rmf)")
    p.add_argument(
        "--nH",
        type=float,
        metavar="COLUMN",
        help="absorption column in 1e22 cm-2 held fixed (with --preset: the same as --fix nH=COLUMN)",
    )
    p.add_argument("--abundance", type=float, help="metal abundance of the thermal plasma (solar units) held fixed")
    p.add_argument(
        "--physics",
        choices=["builtin", "apec"],
        default=None,
        help="emission code of the thermal plasma: builtin (approximate, default) or apec (AtomDB APEC "
        "through the nnapec emulator; pip install 'napari-sushi[apec]')",
    )
    p.add_argument(
        "--band",
        nargs=2,
        type=float,
        metavar=("EMIN", "EMAX"),
        default=None,
        help="with --rmf: energy band in keV (default 0.5 8); the RMF channels lying inside are used, as "
        "`napari-sushi bin --native` bins them",
    )
    p.add_argument(
        "--group",
        type=int,
        default=None,
        metavar="N",
        help="with --rmf: N consecutive channels per bin (default 1), as `napari-sushi bin --group N`",
    )
    p.add_argument(
        "--fix",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="with --preset or --rmf: hold a physical parameter at a value for your source, e.g. nH=0.95 "
        "(absorption, 1e22 cm-2), velocity=0, abundance=0.5; a free parameter named here stops "
        "being one; repeatable",
    )
    p.add_argument(
        "--range",
        action="append",
        default=[],
        metavar="NAME=LOW,HIGH",
        help="with --preset or --rmf: the validity box of a free parameter, e.g. index=1,3.5; repeatable",
    )
    p.add_argument("--family", default="emulator", choices=["emulator", "iae", "reference"])
    out = p.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", help="model file to write (.safetensors)")
    out.add_argument(
        "--name",
        help="save in your user model folder under this name (the default without -o: "
        "<rmf stem>-<component>-<family>); load it later by that name",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file / user model")
    p.add_argument("--quick", action="store_true", help="a small model in seconds (coarser grid, fewer epochs)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/validation split and initialisation")
    p.add_argument("--val-fraction", type=float, default=0.1, help="validation share (networks)")
    p.add_argument("--max-epochs", type=int, default=None, help="epoch cap (networks; default 2000, --quick 60)")
    p.add_argument(
        "--patience",
        type=int,
        default=None,
        help="early-stopping patience in epochs (networks; default 60, --quick 15)",
    )
    p.add_argument("--time-limit", type=float, default=None, help="stop training after this many seconds (networks)")
    p.add_argument(
        "--n-random",
        type=int,
        default=None,
        help="random simulator draws added to the grid (networks; default 3000, --quick 300)",
    )
    p.add_argument(
        "--schedule",
        choices=["plateau", "cosine"],
        default="plateau",
        help="learning-rate schedule (networks): halve on a plateau, or cosine decay over --time-limit "
        "(the shipped thermal IAEs: cosine, --time-limit 390, --polish-minutes 2)",
    )
    p.add_argument(
        "--polish-minutes",
        type=float,
        default=0.0,
        help="then full-batch float64 L-BFGS for this long, kept only if it improves (networks)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    from napari_sushi.core.spectral.files import save_model
    from napari_sushi.core.spectral.training import train_model

    _check_options(args)
    preset = _preset(args)  # reads the response files now: bad ones fail before any training
    target, name = _output(args)  # checked before training: no time is spent on a model that cannot be saved
    model = train_model(
        args.family,
        preset=preset,
        component=args.component,
        library=args.library,
        seed=args.seed,
        val_frac=args.val_fraction,
        max_epochs=args.max_epochs,
        patience=args.patience,
        time_limit=args.time_limit,
        n_random=args.n_random,
        progress=not args.quiet,
        schedule=args.schedule,
        polish_seconds=60.0 * args.polish_minutes,
        quick=args.quick,
    )
    if name is None:
        save_model(model, target, overwrite=args.overwrite)
        print(f"wrote {target}: {model.describe()}")
    else:
        from napari_sushi.core.spectral.user_models import save_user_model

        target = save_user_model(model, name, overwrite=args.overwrite)
        print(f"saved your model {name!r} in {target}: {model.describe()}")
        print(f"use it by name, e.g. `napari-sushi fit CUBE --model {name} ...`; list yours with `napari-sushi models`")
    tr = model.meta.extra.get("training", {})
    secs = tr.get("seconds")
    acc = model.meta.extra.get("accuracy") or {}
    line = f"identity {model.identity()}; " + (
        f"trained in {secs:g} s" if isinstance(secs, (int, float)) else "trained"
    )
    if acc.get("median") is not None:
        line += (
            f"; held-out spectral error (relative L2, {acc['n']} draws): median {acc['median']:.3g}, "
            f"p99 {acc['p99']:.3g}"
        )
    else:
        curve = model.meta.extra.get("loss_curve") or [{}]
        last = curve[-1] or {}
        vals = ", ".join(f"{k}={v:.3g}" for k, v in last.items() if isinstance(v, float))
        line += f"; final validation {vals}" if vals else ""
    print(line)
    return 0


def _check_options(args: argparse.Namespace) -> None:
    """Option combinations that cannot work, refused before anything is read or trained."""
    if (args.preset or args.rmf) and not args.component:
        raise CLIError(f"{'--preset' if args.preset else '--rmf'} needs --component (thermal or powerlaw)")
    if args.library and args.component:
        raise CLIError("--component applies to --preset or --rmf; a library holds one component already")
    if not args.rmf:
        for opt, val in (("--arf", args.arf), ("--band", args.band), ("--group", args.group)):
            if val is not None:
                raise CLIError(f"{opt} goes with --rmf (your own response); presets have their own band and channels")
    if args.library:
        for opt, val in (
            ("--nH", args.nH),
            ("--abundance", args.abundance),
            ("--fix", args.fix or None),
            ("--range", args.range or None),
            ("--physics", args.physics),
        ):
            if val is not None:
                raise CLIError(f"{opt} changes simulated spectra: give --preset or --rmf, not --library")
    if args.physics == "apec" and args.component != "thermal":
        raise CLIError("--physics apec is a thermal plasma: use it with --component thermal")
    if args.abundance is not None and args.component != "thermal":
        raise CLIError("--abundance applies to the thermal component (--component thermal)")
    if args.group is not None and args.group < 1:
        raise CLIError(f"--group must be a whole number >= 1; got {args.group}")
    if not 0 < args.val_fraction < 0.9:
        raise CLIError("--val-fraction must be between 0 and 0.9")
    if args.polish_minutes < 0:
        raise CLIError("--polish-minutes must be >= 0")
    if args.family == "emulator" and (args.schedule != "plateau" or args.polish_minutes):
        raise CLIError(
            "--schedule and --polish-minutes apply to the network families (iae, reference), not to the grid emulator"
        )


def _output(args: argparse.Namespace):
    """(file path, None) for -o, or (path in the user folder, user model name); every check done now."""
    from pathlib import Path

    if args.output:
        out = Path(args.output).expanduser()
        if out.suffix != ".safetensors":
            raise CLIError(f"the output must be a .safetensors file; got {out.name}")
        if out.is_dir():
            raise CLIError(f"{out} is a folder; give a model file name (.safetensors)")
        folder = out.parent if str(out.parent) else Path(".")
        if not folder.is_dir():
            raise CLIError(f"cannot write {out}: the folder {folder} does not exist; create it first")
        if out.exists() and not args.overwrite:
            raise CLIError(f"{out} already exists; choose another name or pass --overwrite")
        return out, None
    from napari_sushi.core.spectral.registry import pretrained_dir
    from napari_sushi.core.spectral.user_models import ENV_VAR, check_model_name, user_model_path

    if args.name:
        name = args.name
    elif args.rmf:
        name = f"{Path(args.rmf).name.split('.')[0]}-{args.component}-{args.family}"
    elif args.preset:
        name = f"my-{args.preset}-{args.component}-{args.family}"
    else:
        name = f"{Path(args.library).name.split('.')[0]}-{args.family}"
    try:
        name = check_model_name(name)
    except ValueError as exc:
        raise CLIError(f"{exc} (give --name NAME or -o FILE)") from None
    if (pretrained_dir() / f"{name}.safetensors").exists():
        raise CLIError(f"{name!r} is the name of a shipped model; choose another with --name")
    target = user_model_path(name)
    if target.is_dir():
        raise CLIError(f"{target} is a folder; choose another --name")
    if target.exists() and not args.overwrite:
        raise CLIError(f"you already have a model named {name!r} ({target}); choose another --name or pass --overwrite")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(
            f"cannot create the user model folder {target.parent} ({exc.strerror}); set {ENV_VAR} "
            "to a writable folder or give -o FILE"
        ) from None
    return target, name


def _preset(args: argparse.Namespace):
    """The simulator preset to train on (None for a library): a named preset, customised, or one of --rmf."""
    from napari_sushi.core.simulate import SimulationError, customise_preset, response_preset

    fixed = _pairs(args.fix, "--fix", 1)
    ranges = _pairs(args.range, "--range", 2)
    for opt, key, val in (("--nH", "nH", args.nH), ("--abundance", "abundance", args.abundance)):
        if val is not None:
            if key in fixed and fixed[key] != val:
                raise CLIError(f"{opt} {val:g} and --fix {key}={fixed[key]:g} disagree; give one of them")
            fixed[key] = val
    try:
        if args.rmf:
            nH = fixed.pop("nH", None)
            abundance = fixed.pop("abundance", None) if args.component == "thermal" else None
            band = tuple(args.band) if args.band is not None else (0.5, 8.0)
            return response_preset(
                args.rmf,
                args.arf,
                band=band,
                group=args.group or 1,
                nH=nH,
                abundance=abundance,
                ranges=ranges or None,
                fixed=fixed or None,
                components=(args.component,),
                physics=args.physics or "builtin",
            )
        if args.preset and (fixed or ranges or args.physics):
            return customise_preset(args.preset, args.component, fixed=fixed, ranges=ranges, physics=args.physics)
    except SimulationError as exc:
        raise CLIError(str(exc)) from None
    return args.preset


def _pairs(items: list[str], option: str, n: int) -> dict:
    """``NAME=V`` (n = 1) or ``NAME=LO,HI`` (n = 2) strings as a dict of floats / (lo, hi) tuples."""
    out: dict = {}
    for item in items:
        name, sep, value = item.partition("=")
        parts = value.split(",")
        try:
            nums = [float(v) for v in parts]
        except ValueError:
            nums = []
        if not sep or not name.strip() or len(nums) != n:
            form = "NAME=VALUE" if n == 1 else "NAME=LOW,HIGH"
            raise CLIError(f"{option} takes {form}; got {item!r}")
        out[name.strip()] = nums[0] if n == 1 else (nums[0], nums[1])
    return out

"""``napari-sushi train``: train a spectral model from the simulator or from a spectral library."""

from __future__ import annotations

import argparse

from napari_sushi.cli import CLIError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train", help="train a spectral model (emulator, iae or reference)", description=__doc__,
        epilog="Example: napari-sushi train --preset toy --component thermal --family emulator -o thermal.safetensors",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", help="simulator preset (instrument and band), e.g. toy or wide")
    src.add_argument("--library", metavar="FILE", help="spectral library (.fits or .npz; format in the docs)")
    p.add_argument("--component", help="component to simulate: thermal or powerlaw (with --preset)")
    p.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                   help="with --preset: hold a physical parameter at a value for your source, e.g. nH=0.95 "
                        "(absorption, 1e22 cm-2), velocity=0, abundance=0.5; a free parameter named here stops "
                        "being one; repeatable")
    p.add_argument("--range", action="append", default=[], metavar="NAME=LOW,HIGH",
                   help="with --preset: the validity box of a free parameter, e.g. index=1,3.5; repeatable")
    p.add_argument("--family", default="emulator", choices=["emulator", "iae", "reference"])
    p.add_argument("-o", "--output", required=True, help="model file to write (.safetensors)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/validation split and initialisation")
    p.add_argument("--val-fraction", type=float, default=0.1, help="validation share (networks)")
    p.add_argument("--max-epochs", type=int, default=2000, help="epoch cap (networks)")
    p.add_argument("--patience", type=int, default=60, help="early-stopping patience in epochs (networks)")
    p.add_argument("--time-limit", type=float, default=None, help="stop training after this many seconds (networks)")
    p.add_argument("--n-random", type=int, default=3000, help="random simulator draws added to the grid (networks)")
    p.add_argument("--schedule", choices=["plateau", "cosine"], default="plateau",
                   help="learning-rate schedule (networks): halve on a plateau, or cosine decay over --time-limit "
                        "(the shipped thermal IAEs: cosine, --time-limit 390, --polish-minutes 2)")
    p.add_argument("--polish-minutes", type=float, default=0.0,
                   help="then full-batch float64 L-BFGS for this long, kept only if it improves (networks)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from napari_sushi.core.spectral.files import save_model
    from napari_sushi.core.spectral.training import train_model

    out = Path(args.output)
    if out.suffix != ".safetensors":
        raise CLIError(f"the output must be a .safetensors file; got {out.name}")
    if out.exists() and not args.overwrite:
        raise CLIError(f"{out} already exists; choose another name or pass --overwrite")
    if args.preset and not args.component:
        raise CLIError("--preset needs --component (thermal or powerlaw)")
    if not 0 < args.val_fraction < 0.9:
        raise CLIError("--val-fraction must be between 0 and 0.9")
    if args.polish_minutes < 0:
        raise CLIError("--polish-minutes must be >= 0")
    if args.family == "emulator" and (args.schedule != "plateau" or args.polish_minutes):
        raise CLIError("--schedule and --polish-minutes apply to the network families (iae, reference), "
                       "not to the grid emulator")
    preset = args.preset
    if args.fix or args.range:
        if not args.preset:
            raise CLIError("--fix and --range change a simulator preset: give --preset and --component")
        from napari_sushi.core.simulate import SimulationError, customise_preset

        try:
            preset = customise_preset(args.preset, args.component, fixed=_pairs(args.fix, "--fix", 1),
                                      ranges=_pairs(args.range, "--range", 2))
        except SimulationError as exc:
            raise CLIError(str(exc)) from None
    model = train_model(
        args.family, preset=preset, component=args.component, library=args.library, seed=args.seed,
        val_frac=args.val_fraction, max_epochs=args.max_epochs, patience=args.patience,
        time_limit=args.time_limit, n_random=args.n_random, progress=not args.quiet,
        schedule=args.schedule, polish_seconds=60.0 * args.polish_minutes,
    )
    save_model(model, out, overwrite=args.overwrite)
    tr = model.meta.extra.get("training", {})
    curve = model.meta.extra.get("loss_curve") or [{}]
    last = curve[-1] or {}
    print(f"wrote {out}: {model.describe()}")
    print(f"identity {model.identity()}; trained in {tr.get('seconds', '?')} s; final validation "
          + ", ".join(f"{k}={v:.3g}" for k, v in last.items() if isinstance(v, float)))
    return 0


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

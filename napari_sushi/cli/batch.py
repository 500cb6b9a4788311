"""``napari-sushi batch SPEC.toml``: fit every cube of a batch file, each to its own maps file.

Here one after another by default, or on a Dask cluster (``--workers N`` starts a local one,
``--scheduler ADDRESS`` uses a running one). Resumable: cubes whose output exists are skipped. A cube
that fails is reported and the others go on; the exit code is 1 when any failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_cluster_options(p: argparse.ArgumentParser) -> None:
    """--workers / --scheduler, shared with ``fit --tile``."""
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="run on a local Dask cluster of N worker processes (one thread each; needs napari-sushi[cluster])",
    )
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on the Dask cluster whose scheduler is at ADDRESS, e.g. tcp://10.0.0.5:8786",
    )


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "batch",
        help="fit many cubes listed in a TOML file, each to its own maps file",
        description="Fit every [[cube]] of a batch file (TOML) and write each one's maps atomically; cubes "
        "whose output exists are skipped, so an interrupted batch resumes where it stopped. Keys of a "
        "[[cube]]: input, output, name, events, models, method, settings, fixed, init, mask, background, "
        "tiles, with_cubes ([defaults] sets them for all); see README 'Many cubes and big fields'.",
        epilog="example: napari-sushi batch epochs.toml --workers 4",
    )
    p.add_argument("spec", type=Path, help="batch file (TOML)")
    add_cluster_options(p)
    p.add_argument("--redo", action="store_true", help="fit every cube again, replacing existing outputs")
    p.add_argument("--dry-run", action="store_true", help="check the batch file and list what would run")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar; failures are still reported")
    return p


def run(args: argparse.Namespace) -> int:
    from napari_sushi.core.batch import load_spec, run_batch
    from napari_sushi.core.cluster import dask_client

    jobs = load_spec(args.spec)
    if args.dry_run:
        for job in jobs:
            state = "exists, skipped" if job.output.exists() and not args.redo else "to fit"
            tiles = f", tiles {job.tiles['size']}" if job.tiles else ""
            print(f"{job.name}: {job.input} -> {job.output} ({job.method}{tiles}; {state})")
        return 0
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="batch", unit="cube", file=sys.stderr, disable=None)
    failures = []

    def done(outcome) -> None:
        if outcome.status == "failed":
            failures.append(outcome)
            print(f"napari-sushi batch: {outcome.name} failed: {outcome.message}", file=sys.stderr)
        elif not args.quiet:
            extra = "" if outcome.status == "skipped" else f" in {outcome.seconds:.1f} s ({outcome.stop_reason})"
            print(f"{outcome.name}: {outcome.status}{extra} -> {outcome.output}", file=sys.stderr)
        if bar is not None:
            bar.update(1)

    with dask_client(args.scheduler, args.workers) as client:
        outcomes = run_batch(jobs, client=client, redo=args.redo, on_done=done)
    if bar is not None:
        bar.close()
    n = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    print(f"batch: {n['done']} fitted, {n['skipped']} skipped (output existed), {n['failed']} failed")
    return 1 if failures else 0

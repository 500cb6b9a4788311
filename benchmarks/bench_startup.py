"""Start-up time of the command line (issue target: ``napari-sushi --help`` < 0.5 s on the 2-core machine).

    .venv/bin/python benchmarks/bench_startup.py [--repeat 7]

Runs each command line ``--repeat`` times in a fresh process, side by side, and writes the medians to
``benchmarks/results/startup.md``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXE = str(Path(sys.executable).with_name("napari-sushi"))
CASES = [["--help"], ["--version"], ["bin", "--help"], ["fit", "--help"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    times: dict[str, list[float]] = {" ".join(c): [] for c in CASES}
    for _ in range(args.repeat):  # interleaved: the machine's load hits every case alike
        for c in CASES:
            t0 = time.perf_counter()
            subprocess.run([EXE, *c], capture_output=True, check=False)
            times[" ".join(c)].append(time.perf_counter() - t0)
    lines = [
        "# CLI start-up (median of %d fresh processes, interleaved)" % args.repeat,
        "",
        "| command | median s | min s | max s |",
        "|---|---|---|---|",
    ]
    for k, v in times.items():
        lines.append(f"| `napari-sushi {k}` | {statistics.median(v):.3f} | {min(v):.3f} | {max(v):.3f} |")
    out = ROOT / "benchmarks" / "results" / "startup.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

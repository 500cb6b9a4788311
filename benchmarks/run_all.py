"""Run every benchmark script in this folder; each writes its figures to benchmarks/results/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve().parent
    rc_all = 0
    for script in sorted(here.glob("bench_*.py")):
        print(f"== {script.name}", flush=True)
        rc = subprocess.call([sys.executable, str(script), *sys.argv[1:]])
        rc_all = rc_all or rc
    return rc_all


if __name__ == "__main__":
    sys.exit(main())

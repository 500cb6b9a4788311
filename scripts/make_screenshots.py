"""Regenerate every README picture from the real app (run under Xvfb: ``make screenshots``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPTS = [
    ["plot_model_spectra.py"],
    ["screenshot_binned_cube.py"],
    ["screenshot_toy_truth.py"],
    ["make_app_screenshots.py", "--binning", "1", "--max-iter", "400"],
    # the README's pixel-spectrum picture is of a 2x2-binned pixel (more counts per spectrum)
    ["make_app_screenshots.py", "--spectrum-only", "--binning", "2", "--max-iter", "300"],
    # the "Your own data" walk-through (needs ../shared/data)
    ["make_own_data_screenshots.py"],
]


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = []
    for script, *args in SCRIPTS:
        print(f"== {script} {' '.join(args)}", flush=True)
        rc = subprocess.call([sys.executable, str(here / script), *args])
        if rc != 0:
            failed.append(script)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

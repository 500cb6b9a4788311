"""Copy docs/readme_solver.md into README.md between the SOLVER START/END markers.

The fragment's links are relative to docs/ (images/..., solver_measurements.md); in the README they
become docs/images/..., docs/solver_measurements.md. Run:  python scripts/sync_readme.py
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- SOLVER START -->", "<!-- SOLVER END -->"


def synced(readme: str, fragment: str) -> str:
    """``readme`` with the text between the markers replaced by ``fragment`` (links rewritten)."""
    fragment = re.sub(r"\]\((?!https?:|#|docs/)([^)]+)\)", r"](docs/\1)", fragment.rstrip("\n"))
    a = readme.index(START) + len(START)
    b = readme.index(END)
    return readme[:a] + "\n" + fragment + "\n" + readme[b:]


def main() -> None:
    readme = (ROOT / "README.md").read_text()
    fragment = (ROOT / "docs" / "readme_solver.md").read_text()
    (ROOT / "README.md").write_text(synced(readme, fragment))


if __name__ == "__main__":
    main()

"""Every zoo case, one SUSHI label of one results file against another's (e.g. before/after a physics change).

Skill before -> after per parameter and the thermal share, with the RMSE ratio to the per-pixel fit of
the 'after' file in brackets; the velocity slope; how many of the four keys improved.

    .venv/bin/python benchmarks/zoo_compare.py BEFORE.json LABEL AFTER.json LABEL OUT.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KEYS = ["thermal kT", "thermal velocity", "powerlaw index", "thermal share"]


def _rows(path: Path, label: str) -> dict[str, dict]:
    return {r["case"]: r for r in json.loads(path.read_text()) if r["label"] == label}


def table(before: Path, label_before: str, after: Path, label_after: str) -> list[str]:
    old, new, pix = _rows(before, label_before), _rows(after, label_after), _rows(after, "pixelfit")
    out = [
        f"# Zoo, case by case: `{label_before}` ({before.name}) -> `{label_after}` ({after.name})",
        "",
        "Skill (RMSE / constant map's) before -> after; in brackets the RMSE ratio to the per-pixel fit, after.",
        "",
        "| case | " + " | ".join(KEYS) + " | velocity slope | better |",
        "|---" * (len(KEYS) + 3) + "|",
    ]
    for case, r in new.items():
        if case not in old:
            continue
        cells, better = [], 0
        for k in KEYS:
            a, b = old[case]["scores"][k]["skill"], r["scores"][k]["skill"]
            ratio = r["scores"][k]["rmse"] / pix[case]["scores"][k]["rmse"] if case in pix else float("nan")
            cells.append(f"{a:.2f} -> {b:.2f} ({ratio:.2f})")
            better += b < a
        sa, sb = (x["scores"]["thermal velocity"]["slope"] for x in (old[case], r))
        out.append(f"| {case} | " + " | ".join(cells) + f" | {sa:.2f} -> {sb:.2f} | {better}/{len(KEYS)} |")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    lines = table(Path(argv[0]), argv[1], Path(argv[2]), argv[3])
    Path(argv[4]).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Every ```python block of README.md runs as written, twice in a row, in a fresh working directory.

Twice, because a reader runs an example again: a block that writes a file must pass ``overwrite=True``.
Each run is a fresh interpreter (the venv's python) in an empty temporary folder, with its own user
model folder, and a time budget; a block too slow for the suite carries a line
``# not run by tests: <reason>`` and is skipped with that reason. Blocks that read ``../shared/data``
skip when it is absent.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHARED_DATA = ROOT.parent / "shared" / "data"
BUDGET_S = 90.0  # per run of one block; longer examples must say why they are not run
SKIP_MARK = re.compile(r"^\s*#\s*not run by tests:\s*(?P<reason>.*\S)?\s*$", re.MULTILINE)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number of the opening fence, code) of every ```python block of a Markdown text."""
    blocks = []
    for m in re.finditer(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, re.MULTILINE | re.DOTALL):
        blocks.append((text.count("\n", 0, m.start()) + 1, m.group(1)))
    return blocks


def skip_reason(code: str) -> str | None:
    """The block's ``# not run by tests: <reason>`` reason, or None when the block is to be run."""
    m = SKIP_MARK.search(code)
    if m is None:
        return None
    return m.group("reason") or ""


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_its_examples_and_says_why_any_is_not_run():
    assert len(BLOCKS) >= 3, "README.md lost its ```python examples (or the fence pattern changed)"
    for line, code in BLOCKS:
        reason = skip_reason(code)
        assert reason != "", f"README.md line {line}: '# not run by tests:' needs a reason after the colon"
    assert sum(skip_reason(code) is None for _, code in BLOCKS) >= 3, "most README examples must be run"


def test_block_parsing_and_skip_mark():
    text = "intro\n```python\nx = 1\n```\n\n```bash\nls\n```\n```python\n# not run by tests: needs a GPU\ny = 2\n```\n"
    blocks = python_blocks(text)
    assert [ln for ln, _ in blocks] == [2, 9] and blocks[0][1] == "x = 1\n"
    assert skip_reason(blocks[0][1]) is None and skip_reason(blocks[1][1]) == "needs a GPU"


def _run(code: str, cwd: Path, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=BUDGET_S * 2
    )
    return time.perf_counter() - t0, proc


@pytest.mark.slow
@pytest.mark.parametrize("line, code", BLOCKS, ids=[f"README.md:{ln}" for ln, _ in BLOCKS])
def test_readme_example_runs_twice(line, code, tmp_path):
    reason = skip_reason(code)
    if reason:
        pytest.skip(f"README.md line {line}: {reason}")
    if "shared/data" in code and not SHARED_DATA.is_dir():
        pytest.skip(f"README.md line {line} reads {SHARED_DATA}, which is absent")
    work = tmp_path / "work"
    work.mkdir()
    env = dict(
        os.environ,
        OMP_WAIT_POLICY="PASSIVE",
        MPLBACKEND="Agg",
        PYTHONHASHSEED="0",
        NAPARI_SUSHI_MODEL_DIR=str(tmp_path / "models"),
    )
    env.pop("PYTHONPATH", None)  # the installed package, as a reader has it
    for attempt in ("first", "second"):
        try:
            seconds, proc = _run(code, work, env)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"README.md line {line}: the {attempt} run took over {2 * BUDGET_S:.0f} s; make it smaller "
                "or mark it '# not run by tests: <reason>'"
            )
        assert proc.returncode == 0, (
            f"README.md line {line}: the {attempt} run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        )
        assert seconds < BUDGET_S, (
            f"README.md line {line}: the {attempt} run took {seconds:.0f} s (budget "
            f"{BUDGET_S:.0f} s); make it smaller or mark it '# not run by tests: <reason>'"
        )


def test_core_writers_tell_python_users_how_to_overwrite(tmp_path):
    """The hint of a refused overwrite names the keyword a Python user passes (and the CLI flag)."""
    import numpy as np

    from napari_sushi.core.io import write_maps_fits

    path = write_maps_fits(tmp_path / "m.fits", {"kT": np.ones((2, 2))})
    with pytest.raises(FileExistsError, match=r"pass overwrite=True"):
        write_maps_fits(path, {"kT": np.ones((2, 2))})
    write_maps_fits(path, {"kT": np.zeros((2, 2))}, overwrite=True)


def test_api_default_iterations_match_the_cli_and_dock():
    from napari_sushi.cli import build_parser
    from napari_sushi.core.solver.settings import FitSettings

    args = build_parser().parse_args(["fit", "cube.fits", "-o", "maps.fits"])
    assert FitSettings().max_iter == args.max_iter == 300

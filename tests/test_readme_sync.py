"""The README's solver section is docs/readme_solver.md, copied by scripts/sync_readme.py."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _sync_module():
    spec = importlib.util.spec_from_file_location("sync_readme", ROOT / "scripts" / "sync_readme.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_solver_section_matches_its_source():
    sync = _sync_module()
    readme = (ROOT / "README.md").read_text()
    fragment = (ROOT / "docs" / "readme_solver.md").read_text()
    assert sync.synced(readme, fragment) == readme, (
        "README.md's solver section differs from docs/readme_solver.md: edit the latter, then run "
        "`python scripts/sync_readme.py`"
    )


def test_links_are_rewritten_for_the_readme():
    sync = _sync_module()
    out = sync.synced(
        f"a\n{sync.START}\nold\n{sync.END}\nb",
        "see ![x](images/a.png), [r](solver_measurements.md#s), [w](https://e.org) and [h](#top)",
    )
    assert "](docs/images/a.png)" in out and "](docs/solver_measurements.md#s)" in out
    assert "](https://e.org)" in out and "](#top)" in out and "old" not in out

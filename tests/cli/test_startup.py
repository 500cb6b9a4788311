"""Start-up of the command line: --help/--version import no science, Ctrl-C during start-up exits 130
without a traceback, and every command's own help still works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from napari_sushi.cli import SUBCOMMANDS, SUMMARIES, build_parser

EXE = str(Path(sys.executable).with_name("napari-sushi"))


def _run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_help_and_version_import_no_torch():
    code = (
        "import sys\nfrom napari_sushi.cli import main\n"
        "for argv in (['--help'], ['--version']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'LIGHT', 'ASTROPY' if 'astropy.io.fits' in sys.modules else '')"
    )
    out = _run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith("LIGHT"), out.stdout
    assert "napari-sushi" in out.stdout and all(name in out.stdout for name in SUBCOMMANDS)


def test_every_command_has_its_summary_and_full_help(capsys):
    full = build_parser()  # every subcommand built (what the tests of each command use)
    for name in SUBCOMMANDS:
        assert name in SUMMARIES
        with pytest.raises(SystemExit) as exc:
            full.parse_args([name, "--help"])
        assert exc.value.code == 0
    assert "--output" in capsys.readouterr().out  # the full help of the commands, not their summaries


@pytest.mark.skipif(not Path(EXE).exists(), reason="the napari-sushi console script is not installed in this venv")
def test_ctrl_c_during_start_up_exits_130_without_traceback(tmp_path):
    cube = tmp_path / "cube.fits"
    cube.write_bytes(b"")  # never reached: the interrupt comes while torch imports
    proc = subprocess.Popen(
        [EXE, "fit", str(cube), "-o", str(tmp_path / "maps.fits")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Traceback" not in err and "interrupted" in err, err
    assert not (tmp_path / "maps.fits").exists()


def test_help_texts_have_no_markup_backquotes(capsys):
    for name in SUBCOMMANDS:
        with pytest.raises(SystemExit):
            build_parser(name).parse_args([name, "--help"])
        out = capsys.readouterr().out
        assert "`" not in out, (name, [line for line in out.splitlines() if "`" in line][:3])

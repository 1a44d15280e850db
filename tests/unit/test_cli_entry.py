"""The process entry point (``cdc`` / ``python -m cdc``): :func:`cdc.cli.entry` ends the process without
Python's slow finalization, but only once nothing is left to do: atexit handlers run, output is flushed,
the exit code is kept, and a worker thread that is still running is waited for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_atexit_handlers_run_and_the_exit_code_is_kept() -> None:
    proc = _python(
        "import atexit, sys, cdc.cli as c\n"
        "atexit.register(lambda: print('atexit ran', flush=True))\n"
        "def main():\n"
        "    print('said before exit')\n"  # buffered: a pipe is not a terminal
        "    sys.exit(3)\n"
        "c.main = main\n"
        "c.entry()\n"
    )
    assert proc.returncode == 3
    assert proc.stdout.splitlines() == ["said before exit", "atexit ran"]


def test_a_message_as_exit_code_is_printed_and_fails() -> None:
    proc = _python("import sys, cdc.cli as c\nc.main = lambda: sys.exit('went wrong')\nc.entry()\n")
    assert proc.returncode == 1 and "went wrong" in proc.stderr


def test_a_worker_thread_still_running_is_waited_for() -> None:
    proc = _python(
        "import threading, time, cdc.cli as c\n"
        "def late():\n"
        "    time.sleep(0.3)\n"
        "    print('worker finished', flush=True)\n"
        "c.main = lambda: threading.Thread(target=late).start()\n"
        "c.entry()\n"
    )
    assert proc.returncode == 0 and proc.stdout == "worker finished\n"


def test_the_module_entry_point_prints_everything_to_a_pipe() -> None:
    """``python -m cdc --help`` (quick exit) writes exactly what ``main`` writes when the interpreter exits
    as usual."""
    usual = _python("import sys\nsys.argv = ['cdc', 'backup', '--help']\nfrom cdc.cli import main\nmain()\n")
    quick = subprocess.run(
        [sys.executable, "-m", "cdc", "backup", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert usual.returncode == quick.returncode == 0
    assert quick.stdout == usual.stdout and "prune" in quick.stdout

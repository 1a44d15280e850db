"""Running the real ``cdc`` command line from tests: one-shot verbs and a supervised ``cdc run``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cdc(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``cdc ARGS`` to completion, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "cdc", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def sink_process(
    config: Path, log: Path, failpoint: str | None = None, sink: str = "replica", instance: str | None = None
) -> subprocess.Popen[bytes]:
    """``cdc run -c CONFIG --only sink:SINK`` in the background, its output appended to ``log``; with
    ``failpoint`` (``name:N``, see cdc/failpoints.py) it SIGKILLs itself there; with ``instance``, as
    ``--instance INSTANCE`` (a static group member)."""
    env = {k: v for k, v in os.environ.items() if k != "CDC_FAILPOINTS"}
    if failpoint:
        env["CDC_FAILPOINTS"] = failpoint
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cdc", "run", "-c", str(config), "--only", f"sink:{sink}"]
            + (["--instance", instance] if instance else []),
            cwd=ROOT,
            stdout=out,
            stderr=out,
            env=env,
        )


class CdcRun:
    """``cdc run -c CONFIG [ARGS]`` in the background, its output in files beside the config."""

    def __init__(self, config: Path, *args: str, name: str = "run") -> None:
        self.out = config.parent / f"{name}.out"
        self.err = config.parent / f"{name}.err"
        with self.out.open("ab") as out, self.err.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cdc", "run", "-c", str(config), *args],
                cwd=ROOT,
                stdout=out,
                stderr=err,
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Send ``sig`` and wait; returns the exit code (kills and fails the caller's check if it hangs)."""
        if self.alive():
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"cdc run did not exit within {timeout}s of signal {sig}:\n{self.stderr()}") from None

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, run: CdcRun | None = None, every: float = 0.5
) -> None:
    """Poll ``condition`` until true; fail with ``what`` (and the process's stderr) on timeout or if
    ``run`` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if run is not None and not run.alive():
            raise AssertionError(f"cdc run exited ({run.proc.returncode}) while waiting for {what}:\n{run.stderr()}")
        if time.monotonic() > deadline:
            extra = f"\n--- cdc run stderr ---\n{run.stderr()}" if run is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(every)

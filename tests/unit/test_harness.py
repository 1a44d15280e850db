"""The test harness itself: under CI=true a missing server fails the test; elsewhere it skips."""

from __future__ import annotations

import os
import subprocess
import sys

from services import ROOT

TARGET = "tests/integration/test_smoke_mariadb.py::test_server_settings_allow_row_capture"


def _run(ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    # port 1 on loopback never answers: the explicit variable wins and nothing else is tried
    env["CDC_TEST_MYSQL_URL"] = "mysql://root@127.0.0.1:1/"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TARGET],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_missing_server_fails_under_ci() -> None:
    proc = _run("true")
    assert proc.returncode == 1, proc.stdout
    assert "1 error" in proc.stdout or "1 failed" in proc.stdout, proc.stdout
    assert "CI=true and CDC_TEST_MYSQL_URL is set but" in proc.stdout


def test_missing_server_skips_outside_ci() -> None:
    proc = _run(None)
    assert proc.returncode == 0, proc.stdout
    assert "1 skipped" in proc.stdout, proc.stdout

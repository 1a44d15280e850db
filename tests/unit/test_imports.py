"""`cdc --help` and the unit tests import no database driver (architecture rule 6)."""

from __future__ import annotations

import subprocess
import sys

DRIVERS = ("pymysql", "pymysqlreplication", "psycopg", "kafka", "sqlalchemy", "confluent_kafka")


def test_cli_help_imports_no_driver() -> None:
    code = (
        "import sys\n"
        "from cdc import cli\n"
        "try:\n"
        "    cli.main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {DRIVERS!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "Usage: cdc" in out
    assert out.strip().splitlines()[-1] == "[]"


def test_unit_test_process_has_no_driver_loaded() -> None:
    # runs inside the unit-test process: earlier unit tests must not have imported a driver either
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in DRIVERS)
    assert loaded == []

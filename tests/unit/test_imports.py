"""`cdc --help` and the unit tests import no database driver (architecture rule 6)."""

from __future__ import annotations

import subprocess
import sys

from services import ROOT

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


def test_unit_tests_import_no_driver() -> None:
    """Collecting every unit test module (and this package's core) loads no driver."""
    code = (
        "import sys, pytest\n"
        "rc = pytest.main(['-q', '--collect-only', '-m', 'unit', '-p', 'no:cacheprovider', 'tests/unit'])\n"
        "import cdc, cdc.errors, cdc.events, cdc.positions\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {DRIVERS!r}))\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout

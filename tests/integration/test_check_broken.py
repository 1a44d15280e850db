"""``cdc check`` against deliberately broken setups (issue #7's acceptance).

Each case breaks one thing on a real server and runs the real command line: the problem is
reported in its own line, the exit code is 1 (check ran and found problems), nothing looks
like a traceback, and the password in the config appears nowhere in the output. One case
breaks several things at once and expects every one of them in a single run.

The PostgreSQL cases need ``wal_level=replica`` and password authentication, which the shared
stack server does not have, so they start a throwaway cluster of their own from the same
PostgreSQL binaries (``initdb`` + ``pg_ctl``, a few seconds).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from services import free_port
from support.cdc_process import cdc

pytestmark = pytest.mark.integration

MYSQL_PASSWORD = "Sx9-mysql-Secret"
PG_PASSWORD = "Pq7-postgres-Secret"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _check(config: Path) -> tuple[int, str]:
    res = cdc("check", "-c", str(config), timeout=120)
    return res.returncode, res.stdout + res.stderr


def _assert_clean(output: str, *secrets: str) -> None:
    assert "Traceback" not in output, output
    assert 'File "' not in output, output
    for secret in secrets:
        assert secret not in output, f"the secret {secret!r} leaked:\n{output}"


def _problems(output: str) -> list[str]:
    return [line.strip()[2:] for line in output.splitlines() if line.strip().startswith("- ")]


def _mysql_config(tmp: Path, url: str, server_id: int, db: str, extra_sink: str = "") -> Path:
    path = tmp / "cdc.yaml"
    path.write_text(
        f"name: broken\n"
        f"source:\n  type: mysql\n  url: {url}\n  server_id: {server_id}\n  tables: ['{db}.*']\n"
        f"bus:\n  type: direct\n"
        f"sinks:\n  - name: replica\n    url: sqlite:///{tmp / 'replica.db'}\n{extra_sink}"
    )
    return path


@pytest.fixture
def mysql_user(mysql_db: Any) -> Iterator[str]:
    """A user with SELECT on the test database only: no replication grants."""
    user = f"u{mysql_db.name[-10:]}"
    conn = mysql_db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, MYSQL_PASSWORD))
            cur.execute(f"GRANT SELECT ON `{mysql_db.name}`.* TO %s@'%%'", (user,))
        yield user
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))
        conn.close()


def _user_url(admin_url: str, user: str, password: str) -> str:
    rest = admin_url.split("@", 1)[1]
    return f"mysql://{user}:{password}@{rest}"


def test_mysql_missing_grants_are_each_reported(mysql_db: Any, mysql_user: str, tmp_path: Path) -> None:
    config = _mysql_config(tmp_path, _user_url(mysql_db.server_url, mysql_user, MYSQL_PASSWORD), 6101, mysql_db.name)
    code, out = _check(config)
    assert code == 1, out
    _assert_clean(out, MYSQL_PASSWORD)
    problems = " | ".join(_problems(out))
    assert "REPLICATION SLAVE" in problems, out
    assert "REPLICATION CLIENT" in problems or "BINLOG MONITOR" in problems, out


def test_mysql_wrong_password(mysql_db: Any, mysql_user: str, tmp_path: Path) -> None:
    wrong = "Wr0ng-Password-Zz"
    config = _mysql_config(tmp_path, _user_url(mysql_db.server_url, mysql_user, wrong), 6102, mysql_db.name)
    code, out = _check(config)
    assert code in (1, 2), out
    _assert_clean(out, wrong)
    assert "refused the login" in out or "password" in out.lower(), out
    assert mysql_user in out, "the message names the user"


@pytest.fixture
def statement_binlog(mysql_db: Any) -> Iterator[None]:
    """``binlog_format=STATEMENT`` server-wide for the test, restored afterwards."""
    conn = mysql_db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@GLOBAL.binlog_format")
            (before,) = cur.fetchone()
            cur.execute("SET GLOBAL binlog_format = 'STATEMENT'")
        yield
    finally:
        with conn.cursor() as cur:
            cur.execute("SET GLOBAL binlog_format = %s", (before,))
        conn.close()


def test_mysql_statement_binlog_format(mysql_db: Any, statement_binlog: None, tmp_path: Path) -> None:
    url = mysql_db.server_url.replace("mysql://", "mysql://", 1)
    config = _mysql_config(tmp_path, url, 6103, mysql_db.name)
    code, out = _check(config)
    assert code == 1, out
    _assert_clean(out)
    assert any("binlog_format" in p and "STATEMENT" in p and "ROW" in p for p in _problems(out)), out


def test_every_problem_in_one_run(mysql_db: Any, mysql_user: str, statement_binlog: None, tmp_path: Path) -> None:
    """Missing grants and a wrong server setting at once: one run lists them all."""
    config = _mysql_config(tmp_path, _user_url(mysql_db.server_url, mysql_user, MYSQL_PASSWORD), 6104, mysql_db.name)
    code, out = _check(config)
    assert code == 1, out
    _assert_clean(out, MYSQL_PASSWORD)
    problems = _problems(out)
    assert any("binlog_format" in p for p in problems), out
    assert any("REPLICATION SLAVE" in p for p in problems), out
    assert len(problems) >= 3, out


def test_unknown_config_key_suggests_the_nearest(mysql_db: Any, tmp_path: Path) -> None:
    config = _mysql_config(
        tmp_path,
        _user_url(mysql_db.server_url, "root", MYSQL_PASSWORD),
        6105,
        mysql_db.name,
        extra_sink="    schema_evolutoin: basic\n    batch_sise: 10\n",
    )
    code, out = _check(config)
    assert code == 1, out
    _assert_clean(out, MYSQL_PASSWORD)
    problems = _problems(out)
    assert any("schema_evolutoin" in p and "schema_evolution" in p for p in problems), out
    assert any("batch_sise" in p for p in problems), out


# --------------------------------------------------------------------------- PostgreSQL: a cluster of its own


@pytest.fixture(scope="module")
def pg_replica_level() -> Iterator[str]:
    """A PostgreSQL 15 cluster with ``wal_level=replica`` and SCRAM passwords; yields its admin URL."""
    if not (PG_BIN / "initdb").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{PG_BIN / 'initdb'} is missing (make stack-up installs PostgreSQL 15)")
        pytest.skip("PostgreSQL 15 binaries are not installed")
    base = Path(tempfile.mkdtemp(prefix="cdc-pg-broken-"))
    data, port = base / "data", free_port()
    pwfile = base / "pw"
    pwfile.write_text(PG_PASSWORD)
    user_args: dict[str, Any] = {}
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: the stack runs it as 'postgres'
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        user_args = {"user": pw.pw_uid, "group": pw.pw_gid}

    def run(*cmd: str) -> None:
        subprocess.run(cmd, check=True, capture_output=True, timeout=120, **user_args)

    try:
        run(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256", f"--pwfile={pwfile}")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\nwal_level = replica\n")
            conf.write(f"unix_socket_directories = '{base}'\n")
        run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-t", "60", "start")
        yield f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
            **user_args,
        )
        shutil.rmtree(base, ignore_errors=True)


def _pg_config(tmp: Path, url: str) -> Path:
    path = tmp / "cdc.yaml"
    path.write_text(
        f"name: brokenpg\n"
        f"source:\n  type: postgres\n  url: {url}\n  tables: ['public.*']\n"
        f"bus:\n  type: direct\n"
        f"sinks:\n  - name: replica\n    url: sqlite:///{tmp / 'replica.db'}\n"
    )
    return path


def test_postgres_wal_level_replica(pg_replica_level: str, tmp_path: Path) -> None:
    import psycopg

    with psycopg.connect(pg_replica_level, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, v text)")
    code, out = _check(_pg_config(tmp_path, pg_replica_level))
    assert code == 1, out
    _assert_clean(out, PG_PASSWORD)
    assert any("wal_level" in p and "replica" in p and "logical" in p for p in _problems(out)), out


def test_postgres_wrong_password_and_missing_attribute(pg_replica_level: str, tmp_path: Path) -> None:
    import psycopg

    wrong = "Wr0ng-Pg-Password-Zz"
    code, out = _check(_pg_config(tmp_path, pg_replica_level.replace(PG_PASSWORD, wrong)))
    assert code in (1, 2), out
    _assert_clean(out, wrong, PG_PASSWORD)
    assert "password" in out.lower(), out

    with psycopg.connect(pg_replica_level, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS plain")
        conn.execute("CREATE ROLE plain LOGIN PASSWORD 'Plain-Secret-1'")
    url = pg_replica_level.replace(f"postgres:{PG_PASSWORD}@", "plain:Plain-Secret-1@")
    code, out = _check(_pg_config(tmp_path, url))
    assert code == 1, out
    _assert_clean(out, "Plain-Secret-1")
    problems = _problems(out)
    assert any("REPLICATION" in p for p in problems), out
    assert any("wal_level" in p for p in problems), out

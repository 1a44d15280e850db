"""The local stack behaves as the README says: URLs that work from a shell, an idempotent
``stack-up``, and a ``stack-down`` that leaves no process of the stack running."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from services import ROOT, free_port

STACK_PY = ROOT / "deploy" / "stack" / "stack.py"


def _env_lines() -> dict[str, str]:
    out = subprocess.run(["make", "-s", "stack-env"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    found = dict(re.findall(r"^export (CDC_[A-Z_]+)=(\S+)$", out, flags=re.M))
    assert set(found) == {"CDC_MYSQL_URL", "CDC_PG_URL", "CDC_KAFKA_BOOTSTRAP"}, out
    return found


@pytest.fixture
def local_stack(mysql_url: str, pg_url: str, kafka_bootstrap: str) -> dict[str, str]:
    env = _env_lines()
    if (env["CDC_MYSQL_URL"], env["CDC_PG_URL"], env["CDC_KAFKA_BOOTSTRAP"]) != (mysql_url, pg_url, kafka_bootstrap):
        pytest.skip("the tests were pointed at servers other than the local stack")
    return env


def test_stack_env_urls_work_from_a_shell(local_stack: dict[str, str]) -> None:
    shell = 'eval "$(make -s stack-env)"; psql "$CDC_PG_URL" -tAc "select current_setting(\'wal_level\')"'
    out = subprocess.run(["bash", "-c", shell], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "logical"

    url = urlsplit(local_stack["CDC_MYSQL_URL"])
    out = subprocess.run(["mariadb", "-h", url.hostname or "", "-P", str(url.port), "-u", url.username or "root",
                          "-N", "-e", "SELECT @@binlog_format"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "ROW"

    # a Kafka round trip from the shell, with the project's Python client
    script = (
        "import os, uuid\n"
        "from kafka import KafkaProducer, KafkaConsumer\n"
        "bs = os.environ['CDC_KAFKA_BOOTSTRAP']; t = 'cdc_t_shell_' + uuid.uuid4().hex[:8]\n"
        "p = KafkaProducer(bootstrap_servers=bs); p.send(t, b'ping').get(timeout=30); p.close()\n"
        "c = KafkaConsumer(t, bootstrap_servers=bs, auto_offset_reset='earliest', consumer_timeout_ms=20000)\n"
        "print(next(iter(c)).value.decode()); c.close()\n"
        "from kafka import KafkaAdminClient\n"
        "a = KafkaAdminClient(bootstrap_servers=bs); a.delete_topics([t]); a.close()\n"
    )
    shell = f'eval "$(make -s stack-env)"; {sys.executable} -c "$0"'
    out = subprocess.run(["bash", "-c", shell, script], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "ping"


def _pids(stack_dir: Path) -> dict[str, int]:
    run = stack_dir / "run"
    return {
        "postgres": int((stack_dir / "postgres" / "data" / "postmaster.pid").read_text().split()[0]),
        "mariadb": int((run / "mariadb.pid").read_text().split()[0]),
        "kafka": int((run / "kafka.pid").read_text().split()[0]),
    }


def test_second_stack_up_is_a_no_op(local_stack: dict[str, str]) -> None:
    stack_dir = ROOT / ".stack"
    before = _pids(stack_dir)
    proc = subprocess.run([sys.executable, str(STACK_PY), "up"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "starting" not in proc.stdout and "installing" not in proc.stdout, proc.stdout
    assert proc.stdout.count("already running") == 3, proc.stdout
    assert _pids(stack_dir) == before


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in {"Z", "X"}


def test_isolated_stack_up_twice_then_down_leaves_nothing(local_stack: dict[str, str]) -> None:
    """A second stack on other ports in its own directory: up, up again (no-op), down; nothing stays."""
    # under the checkout, not /tmp: as root, PostgreSQL runs as 'postgres' and needs to reach it
    stack_dir = Path(tempfile.mkdtemp(prefix="t-", dir=ROOT / ".stack"))
    ports = {k: str(free_port()) for k in ("PG", "MYSQL", "KAFKA", "KAFKA_CONTROLLER")}
    env = dict(os.environ, CDC_STACK_DIR=str(stack_dir), **{f"CDC_STACK_{k}_PORT": v for k, v in ports.items()})
    # reuse the broker jars already fetched, so the test does not depend on Maven being reachable twice
    shared_libs = ROOT / ".stack" / "kafka"
    for jar_dir in shared_libs.glob("kafka_*"):
        shutil.copytree(jar_dir, stack_dir / "kafka" / jar_dir.name, symlinks=True)
    try:
        up = subprocess.run([sys.executable, str(STACK_PY), "up"], env=env, capture_output=True, text=True,
                            timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        pids = _pids(stack_dir)
        assert all(_alive(p) for p in pids.values()), pids
        assert json.loads((stack_dir / "env.json").read_text())["CDC_PG_URL"].endswith(f":{ports['PG']}/postgres")

        again = subprocess.run([sys.executable, str(STACK_PY), "up"], env=env, capture_output=True, text=True)
        assert again.returncode == 0 and again.stdout.count("already running") == 3, again.stdout
        assert _pids(stack_dir) == pids

        down = subprocess.run([sys.executable, str(STACK_PY), "down"], env=env, capture_output=True, text=True,
                              timeout=180)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not [name for name, pid in pids.items() if _alive(pid)]
        for port in ports.values():
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", int(port))) != 0, f"port {port} still open"
        # the main stack was not touched
        assert all(_alive(p) for p in _pids(ROOT / ".stack").values())
    finally:
        subprocess.run([sys.executable, str(STACK_PY), "down"], env=env, capture_output=True, timeout=180)
        shutil.rmtree(stack_dir, ignore_errors=True)

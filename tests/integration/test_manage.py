"""``cdc sources …`` and ``cdc sinks …`` through the real command line, against the real servers."""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path
from typing import Any

import pytest
from support.cdc_process import CdcRun, cdc, wait_for

pytestmark = pytest.mark.integration

PASSWORD = "Mg7-manage-Secret"


def _ok(*args: str) -> str:
    res = cdc(*args, timeout=120)
    assert res.returncode == 0, f"cdc {' '.join(args)} exited {res.returncode}:\n{res.stdout}{res.stderr}"
    assert "Traceback" not in res.stderr
    return res.stdout


def test_sources_and_sinks_lifecycle(mysql_db: Any, tmp_path: Path) -> None:
    conn = mysql_db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20))")
        cur.executemany("INSERT INTO items VALUES (%s, %s)", [(i, f"n{i}") for i in range(1, 51)])
    config = tmp_path / "cdc.yaml"
    url = mysql_db.server_url
    _ok(
        "sources", "add", "-c", str(config), "--name", f"m_{mysql_db.name}", "--type", "mysql",
        "--url", url, "--tables", f"{mysql_db.name}.*", "--server-id", str(random.randint(10_000, 4_000_000)),
    )
    # a direct bus without a sink is written, but is not runnable until a sink is added
    assert "sinks: []" in config.read_text()
    assert cdc("check", "-c", str(config)).returncode != 0

    # comments survive edits; the previous version is kept as .bak
    config.write_text("# my pipeline\n" + config.read_text().replace("bus:", "bus:  # no Kafka here"))
    replica = tmp_path / "replica.db"
    _ok("sinks", "add", "-c", str(config), "local", "--url", f"sqlite:///{replica}", "--schema-evolution", "basic")
    text = config.read_text()
    assert "# my pipeline" in text and "# no Kafka here" in text
    assert (tmp_path / "cdc.yaml.bak").exists()

    # every problem of an edit is reported, and nothing is written
    before = config.read_text()
    bad = cdc("sinks", "add", "-c", str(config), "local", "--url", f"sqlite:///{tmp_path / 'other.db'}")
    assert bad.returncode == 2 and "exists already" in bad.stderr, bad.stderr
    bad = cdc("sinks", "add", "-c", str(config), "two", "--url", "redis://h/0")
    assert bad.returncode == 2 and "not a supported target" in bad.stderr, bad.stderr
    bad = cdc("sinks", "add", "-c", str(config), "pw", "--url", f"postgresql://u:{PASSWORD}@h/db", "--tables", "x")
    assert bad.returncode == 2 and PASSWORD not in bad.stdout + bad.stderr
    assert config.read_text() == before

    listed = json.loads(_ok("sinks", "list", "-c", str(config), "--json"))
    assert [s["name"] for s in listed] == ["local"]

    sources = json.loads(_ok("sources", "list", "-c", str(config), "--json"))
    assert sources[0]["type"] == "mysql" and sources[0]["sinks"] == ["local"]
    assert sources[0]["phase"] in ("not started", None)

    _ok("check", "-c", str(config))
    run = CdcRun(config)
    try:
        def streaming() -> bool:
            view = json.loads(_ok("sources", "list", "-c", str(config), "--json"))[0]
            return view.get("phase") == "streaming"

        wait_for(streaming, 60, "the source to stream", run, every=1.0)
        assert run.stop(signal.SIGTERM) == 0, run.stderr()
    finally:
        if run.alive():
            run.kill9()
    import sqlite3

    with sqlite3.connect(replica) as db:
        assert db.execute("SELECT count(*) FROM items").fetchone()[0] == 50

    # the last sink of a direct bus cannot go: the config would not run
    last = cdc("sinks", "remove", "-c", str(config), "local")
    assert last.returncode == 2 and "needs at least one sink" in last.stderr, last.stderr
    _ok("sinks", "add", "-c", str(config), "other", "--url", f"sqlite:///{tmp_path / 'other.db'}")
    _ok("sinks", "remove", "-c", str(config), "local")
    assert "local" not in config.read_text() and "other" in config.read_text()
    assert replica.exists(), "removing a sink leaves its target alone"
    bad = cdc("sinks", "remove", "-c", str(config), "local")
    assert bad.returncode == 2 and "no sink named 'local'" in bad.stderr

    _ok("sources", "remove", "-c", str(config), "--yes")
    assert not config.exists() and (tmp_path / "cdc.yaml.bak").exists()


def test_sources_add_refuses_to_overwrite(tmp_path: Path) -> None:
    config = tmp_path / "cdc.yaml"
    config.write_text("keep me\n")
    res = cdc("sources", "add", "-c", str(config), "--name", "x", "--type", "postgres", "--url", "postgresql://h/db")
    assert res.returncode == 2 and "exists already" in res.stderr
    assert config.read_text() == "keep me\n"


def test_removing_a_postgres_source_can_drop_its_slot(pg_db: Any, tmp_path: Path) -> None:
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO t SELECT g, 'v' FROM generate_series(1, 20) g")
    config = tmp_path / "cdc.yaml"
    name = f"p_{pg_db.name}"
    _ok("sources", "add", "-c", str(config), "--name", name, "--type", "postgres", "--url", pg_db.url,
        "--tables", "public.*")
    _ok("sinks", "add", "-c", str(config), "local", "--url", f"sqlite:///{tmp_path / 'r.db'}")
    run = CdcRun(config)
    try:
        def streaming() -> bool:
            return json.loads(_ok("sources", "list", "-c", str(config), "--json"))[0].get("phase") == "streaming"

        wait_for(streaming, 60, "the source to stream", run, every=1.0)
        # the slot is in use while the pipeline runs: refused, nothing removed
        busy = cdc("sources", "remove", "-c", str(config), "--drop-slot", "--yes")
        assert busy.returncode == 2 and "in use" in busy.stderr, busy.stderr
        assert config.exists()
        assert run.stop(signal.SIGTERM) == 0, run.stderr()
    finally:
        if run.alive():
            run.kill9()
    with pg_db.connect() as conn:
        slots = conn.execute("SELECT slot_name FROM pg_replication_slots WHERE database = %s", (pg_db.name,)).fetchall()
    assert len(slots) == 1
    out = _ok("sources", "remove", "-c", str(config), "--drop-slot", "--yes")
    assert "dropped the replication slot" in out
    with pg_db.connect() as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_replication_slots WHERE database = %s", (pg_db.name,)
        ).fetchone()[0] == 0

"""Restore points against real servers: MariaDB source, Kafka change topics, PostgreSQL and MariaDB targets.

The main scenario runs a live pipeline (MySQL source → Kafka) while a writer thread commits small
transactions; a backup is taken in the middle of them. Every write transaction also inserts a
**ledger** row stamped with its own ``UNIX_TIMESTAMP()``, so the state of the source at a time T is
known independently of cdc: the initial rows plus the writes of the transactions whose ledger
stamp is at or before T. A restore to T must give exactly that, into PostgreSQL and into MariaDB.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import services

from cdc.backup.catalog import Catalog
from cdc.backup.create import create_backup
from cdc.backup.format import MANIFEST, Manifest
from cdc.backup.restore import Until, restore
from cdc.backup.topics import CLOCK_MARGIN_MS, ChangeTopics
from cdc.config import Config, load_config
from cdc.errors import BackupCorruptError

ROOT = Path(__file__).resolve().parents[2]
KEY_HEX = "5a" * 32

ITEMS = (
    "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(60), qty INT NOT NULL, price DECIMAL(12,2), "
    "updated DATETIME(6))"
)
ACCOUNTS = (
    "CREATE TABLE accounts (id BIGINT PRIMARY KEY, owner VARCHAR(40) NOT NULL, balance DECIMAL(14,2) NOT NULL, "
    "opened DATE)"
)
LEDGER = "CREATE TABLE ledger (txn INT PRIMARY KEY, ts BIGINT NOT NULL)"
COLUMNS = {"items": "id, name, qty, price, updated", "accounts": "id, owner, balance, opened", "ledger": "txn, ts"}

Rows = dict[str, dict[Any, tuple[Any, ...]]]


def _mysql(url: str, database: str) -> Any:
    import pymysql

    return pymysql.connect(**services.mysql_params(url, database))


def _write_config(
    path: Path,
    name: str,
    mysql_server: str,
    database: str,
    bootstrap: str | None,
    *,
    key: bool = False,
    chunk_rows: int = 50_000,
    server_id: int | None = None,
) -> Path:
    bus = (
        f"bus:\n  type: kafka\n  bootstrap_servers: {bootstrap}\n  partitions: 2\n"
        if bootstrap
        else f"bus:\n  type: direct\nsinks:\n  - name: unused\n    url: sqlite:///{path.parent / 'unused.db'}\n"
    )
    key_line = ""
    if key:
        (path.parent / "backup.key").write_text(KEY_HEX + "\n")
        key_line = "  encryption_key_file: backup.key\n"
    path.write_text(
        f"name: {name}\n"
        f"source:\n  type: mysql\n  url: {mysql_server}\n"
        f"  server_id: {server_id or random.randint(100_000, 4_000_000)}\n"
        f"  tables: ['{database}.*']\n  snapshot_chunk_rows: 2000\n  heartbeat_interval_ms: 500\n"
        f"{bus}"
        f"backups:\n  destination: backups\n  chunk_rows: {chunk_rows}\n{key_line}"
    )
    return path


def _target_rows(url: str, kind: str, schema: str, table: str) -> dict[Any, tuple[Any, ...]]:
    cols = COLUMNS[table]
    if kind == "postgres":
        import psycopg
        from psycopg import sql

        with psycopg.connect(url, autocommit=True) as conn:
            q = sql.SQL("SELECT {} FROM {}.{}").format(sql.SQL(cols), sql.Identifier(schema), sql.Identifier(table))
            rows = conn.execute(q).fetchall()
    else:
        conn = _mysql(url, schema)
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT {cols} FROM `{table}`")
                rows = cur.fetchall()
        finally:
            conn.close()
    return {r[0]: tuple(r) for r in rows}


def _source_rows(conn: Any, table: str) -> dict[Any, tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT {COLUMNS[table]} FROM `{table}`")
        return {r[0]: tuple(r) for r in cur.fetchall()}


def _drop_topics(bootstrap: str, prefix: str) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="cdc-tests-cleanup")
    try:
        doomed = [t for t in admin.list_topics() if prefix in t]
        if doomed:
            admin.delete_topics(doomed, timeout_ms=30_000)
    finally:
        admin.close()


# ---------------------------------------------------------------------------------------------
# The live scenario: pipeline, writer, backup in between
# ---------------------------------------------------------------------------------------------


@dataclass
class Writer:
    """Sequential write transactions, each ending with its ledger row; remembers what each one wrote."""

    conn: Any
    rng: random.Random
    state: Rows
    deltas: list[list[tuple[str, Any, tuple[Any, ...] | None]]] = field(default_factory=list)
    next_item: int = 100_000
    next_account: int = 10_000

    def transaction(self) -> None:
        txn = len(self.deltas) + 1
        delta: list[tuple[str, Any, tuple[Any, ...] | None]] = []
        cur = self.conn.cursor()
        cur.execute("BEGIN")
        for _ in range(self.rng.randint(1, 4)):
            kind = self.rng.random()
            items = self.state["items"]
            if kind < 0.35 or len(items) < 10:
                self.next_item += 1
                row = (
                    self.next_item,
                    f"new {txn} ✓",
                    self.rng.randint(0, 99),
                    Decimal(self.rng.randint(0, 10**6)) / 100,
                    datetime(2025, 1, 1) + timedelta(microseconds=self.rng.randint(0, 10**12)),
                )
                cur.execute("INSERT INTO items VALUES (%s, %s, %s, %s, %s)", row)
                delta.append(("items", row[0], row))
            elif kind < 0.65:
                key = self.rng.choice(sorted(items))
                old = items[key]
                row = (key, old[1], old[2] + 1, (old[3] or Decimal(0)) + Decimal("0.25"), old[4])
                cur.execute("UPDATE items SET qty = %s, price = %s WHERE id = %s", (row[2], row[3], key))
                delta.append(("items", key, row))
            elif kind < 0.8:
                key = self.rng.choice(sorted(items))
                cur.execute("DELETE FROM items WHERE id = %s", (key,))
                delta.append(("items", key, None))
            else:
                accounts = self.state["accounts"]
                a, b = self.rng.sample(sorted(accounts), 2)
                amount = Decimal(self.rng.randint(1, 5000)) / 100
                ra, rb = accounts[a], accounts[b]
                ra = (a, ra[1], ra[2] - amount, ra[3])
                rb = (b, rb[1], rb[2] + amount, rb[3])
                cur.execute("UPDATE accounts SET balance = %s WHERE id = %s", (ra[2], a))
                cur.execute("UPDATE accounts SET balance = %s WHERE id = %s", (rb[2], b))
                delta += [("accounts", a, ra), ("accounts", b, rb)]
            for table, key, row in delta[-2:]:
                if row is None:
                    self.state[table].pop(key, None)
                else:
                    self.state[table][key] = row
        cur.execute("INSERT INTO ledger VALUES (%s, UNIX_TIMESTAMP())", (txn,))
        cur.execute("COMMIT")
        self.deltas.append(delta)


@dataclass
class Scenario:
    config_path: Path
    config: Config
    database: str
    mysql_server: str
    bootstrap: str
    initial: Rows
    deltas: list[list[tuple[str, Any, tuple[Any, ...] | None]]]
    ledger: dict[int, int]  # txn -> its ledger stamp (epoch seconds), read back from the source
    manifest: Manifest
    t_ms: int  # a time between the backup and the end of the writes
    end_ms: int  # a time after the last write
    source: Any  # an autocommit connection to the source database

    def expected_at(self, t_ms: int) -> Rows:
        """The source as it was at ``t_ms``, from the initial rows and the ledger: independent of cdc."""
        state = {t: dict(rows) for t, rows in self.initial.items()}
        state["ledger"] = {}
        for txn, delta in enumerate(self.deltas, start=1):
            if self.ledger[txn] * 1000 > t_ms:
                break  # one writer: ledger stamps never decrease
            for table, key, row in delta:
                if row is None:
                    state[table].pop(key, None)
                else:
                    state[table][key] = row
            state["ledger"][txn] = (txn, self.ledger[txn])
        return state


class _Pipeline(threading.Thread):
    """MySqlSource → KafkaPublisher, as ``cdc run --only source`` does, until stopped."""

    def __init__(self, config: Config) -> None:
        super().__init__(daemon=True)
        self.config = config
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        from cdc.bus.kafka import KafkaPublisher
        from connectors.mysql.source import MySqlSource

        try:
            pub = KafkaPublisher(self.config.bus.to_settings(), self.config.name)  # type: ignore[union-attr]
            src = MySqlSource(self.config.source, self.config.name)  # type: ignore[arg-type]
            src.open(pub.open())
            try:
                while not self.halt.is_set():
                    pub.publish(src.read_batch(2000, 0.2))
                    pub.pump()
                pub.flush(60)
            finally:
                src.close()
                pub.close()
        except BaseException as exc:  # reported by the test
            self.error = exc


@pytest.fixture(scope="module")
def scenario(mysql_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    name = f"cdc_t_{uuid.uuid4().hex[:10]}"
    admin = _mysql(mysql_url, "")
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    pipeline: _Pipeline | None = None
    try:
        conn = _mysql(mysql_url, name)
        rng = random.Random(8)
        initial: Rows = {
            "items": {
                i: (i, f"item {i} ☕", i % 50, Decimal(i) / 4, datetime(2024, 1, 1, 0, 0, i % 60, i))
                for i in range(1, 3001)
            },
            "accounts": {
                10**12 + i: (10**12 + i, f"owner {i}", Decimal(1000), date(2020, 1, 1) + timedelta(days=i))
                for i in range(500)
            },
        }
        with conn.cursor() as cur:
            cur.execute(ITEMS)
            cur.execute(ACCOUNTS)
            cur.execute(LEDGER)
            cur.executemany("INSERT INTO items VALUES (%s, %s, %s, %s, %s)", list(initial["items"].values()))
            cur.executemany("INSERT INTO accounts VALUES (%s, %s, %s, %s)", list(initial["accounts"].values()))
        directory = tmp_path_factory.mktemp("backup")
        config_path = _write_config(
            directory / "cdc.yaml", name, mysql_url, name, kafka_bootstrap, key=True, chunk_rows=700
        )
        config = load_config(config_path)
        pipeline = _Pipeline(config)
        pipeline.start()

        writer = Writer(conn, rng, {t: dict(r) for t, r in initial.items()})
        halt = threading.Event()
        failure: list[BaseException] = []

        def write() -> None:
            try:
                while not halt.is_set():
                    writer.transaction()
                    time.sleep(0.02)
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        time.sleep(1.5)
        manifest = create_backup(config)  # while the writer goes on
        time.sleep(1.5)
        t_ms = int(time.time() * 1000)
        time.sleep(2.5)
        halt.set()
        thread.join(30)
        time.sleep(1.2)
        end_ms = int(time.time() * 1000)
        assert not failure, failure
        assert pipeline.error is None, pipeline.error

        ledger = {int(k): int(v[1]) for k, v in _source_rows(conn, "ledger").items()}
        assert sorted(ledger) == list(range(1, len(writer.deltas) + 1))
        yield Scenario(
            config_path,
            config,
            name,
            mysql_url,
            kafka_bootstrap,
            initial,
            writer.deltas,
            ledger,
            manifest,
            t_ms,
            end_ms,
            conn,
        )
    finally:
        if pipeline is not None:
            pipeline.halt.set()
            pipeline.join(60)
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
        _drop_topics(kafka_bootstrap, name)


@pytest.fixture
def mysql_target(mysql_url: str) -> Iterator[str]:
    """A fresh, empty MariaDB database to restore into; its URL."""
    name = f"cdc_t_{uuid.uuid4().hex[:10]}"
    admin = _mysql(mysql_url, "")
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield services.with_database(mysql_url, name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def _check_restore_to_time(scenario: Scenario, url: str, kind: str, schema: str) -> None:
    result = restore(scenario.config, scenario.manifest.id, url, until=Until.parse(str(scenario.t_ms)))
    expected = scenario.expected_at(scenario.t_ms)
    for table in ("items", "accounts", "ledger"):
        got = _target_rows(url, kind, schema, table)
        assert got == expected[table], f"{table}: {len(got)} rows restored, {len(expected[table])} expected"
    # T lies between the backup and the end of the writes: the replay mattered and stopped early
    stamps = scenario.ledger.values()
    backup_s = scenario.manifest.snapshot_ms // 1000
    assert any(backup_s < s <= scenario.t_ms // 1000 for s in stamps)
    assert any(s * 1000 > scenario.t_ms for s in stamps)
    assert result.replay == "time" and result.cut is not None and result.replayed > 0
    assert result.loaded_rows == scenario.manifest.rows
    # a second run finds the restore done and changes nothing
    again = restore(scenario.config, scenario.manifest.id, url, until=Until.parse(str(scenario.t_ms)))
    assert again.already_done
    assert _target_rows(url, kind, schema, "ledger") == expected["ledger"]


def test_restore_to_a_time_between_backup_and_now_into_postgres(scenario: Scenario, pg_db: Any) -> None:
    _check_restore_to_time(scenario, pg_db.url, "postgres", scenario.database)


def test_restore_to_a_time_between_backup_and_now_into_mariadb(scenario: Scenario, mysql_target: str) -> None:
    _check_restore_to_time(scenario, mysql_target, "mysql", mysql_target.rstrip("/").rsplit("/", 1)[-1])


def test_the_backup_holds_the_source_at_its_position_and_verifies(scenario: Scenario) -> None:
    m = scenario.manifest
    assert m.encryption == "aes-256-gcm" and m.pipeline == scenario.config.name
    assert [str(t.table).split(".")[1] for t in m.tables] == ["accounts", "items", "ledger"]
    assert sum(len(t.chunks) for t in m.tables) > 5  # chunked (chunk_rows: 700)
    from cdc.backup.create import keys_for

    destination = scenario.config.backups.destination  # type: ignore[union-attr]
    verified = Catalog(destination, keys_for(scenario.config)).verify(m.id)
    assert verified.seal == "hmac-sha256" and verified.rows == m.rows
    # the change topics reach back to it: its point-in-time window is open
    topics = ChangeTopics(scenario.config.bus.to_settings(), scenario.config.topic_prefix)  # type: ignore[union-attr]
    (coverage,) = topics.coverage([m.started_ms - CLOCK_MARGIN_MS])
    assert coverage.reaches_back and coverage.problem is None
    listing = _cdc("backup", "list", "-c", str(scenario.config_path))
    assert listing.returncode == 0, listing.stderr
    assert m.id in listing.stdout and ".. now" in listing.stdout


def test_restore_to_a_time_after_the_last_change_relies_on_heartbeats(scenario: Scenario, pg_db: Any) -> None:
    # no change may come after that time: a heartbeat after it shows the topics hold everything up to it
    result = restore(scenario.config, scenario.manifest.id, pg_db.url, until=Until.parse(str(scenario.end_ms)))
    expected = scenario.expected_at(scenario.end_ms)
    assert len(expected["ledger"]) == len(scenario.deltas)
    for table in ("items", "accounts", "ledger"):
        assert _target_rows(pg_db.url, "postgres", scenario.database, table) == expected[table], table
    assert result.replay == "time"


def test_restore_latest_then_follow_keeps_replicating(scenario: Scenario, pg_db: Any) -> None:
    stop = threading.Event()
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(restore(scenario.config, scenario.manifest.id, pg_db.url, follow=True, stop=stop))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    with scenario.source.cursor() as cur:
        cur.execute("UPDATE items SET name = 'followed' WHERE id <= 5")
        cur.execute("INSERT INTO accounts VALUES (7, 'late', 1.50, '2030-01-01')")
    deadline = time.monotonic() + 120
    try:
        while True:
            assert not outcome, outcome
            try:
                equal = all(
                    _target_rows(pg_db.url, "postgres", scenario.database, t) == _source_rows(scenario.source, t)
                    for t in ("items", "accounts", "ledger")
                )
            except Exception:  # the tables may not exist yet
                equal = False
            if equal:
                break
            assert time.monotonic() < deadline, "the following restore did not converge to the source"
            time.sleep(0.5)
    finally:
        stop.set()
        thread.join(60)
    assert len(outcome) == 1 and not isinstance(outcome[0], BaseException), outcome
    assert outcome[0].replay == "latest"


# ---------------------------------------------------------------------------------------------
# Tampering, killed backups, killed restores (no Kafka needed: bus.type direct)
# ---------------------------------------------------------------------------------------------


def _cdc(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cdc", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def _pg_tables(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    return sorted(r[0] for r in rows)


def _assert_refused(cfg: Path, backup: str, target: str, what: str) -> None:
    verify = _cdc("backup", "verify", "-c", str(cfg), backup)
    assert verify.returncode == 1 and what in verify.stderr, verify.stderr
    refused = _cdc("restore", "-c", str(cfg), "--backup", backup, "--target", target)
    assert refused.returncode == 2, refused.stderr
    assert what in refused.stderr and "Traceback" not in refused.stderr
    assert _pg_tables(target) == []  # nothing was written


def test_a_tampered_backup_is_refused_by_verify_and_restore(mysql_db: Any, pg_db: Any, tmp_path: Path) -> None:
    conn = mysql_db.connect(autocommit=True)
    with conn.cursor() as cur:
        cur.execute(ITEMS)
        cur.executemany(
            "INSERT INTO items VALUES (%s, %s, %s, %s, %s)",
            [(i, f"n{i}", i, Decimal(i), datetime(2024, 5, 1)) for i in range(1, 2001)],
        )
    cfg = _write_config(
        tmp_path / "cdc.yaml", "tamper", mysql_db.server_url, mysql_db.name, None, key=True, chunk_rows=500
    )
    made = _cdc("backup", "create", "-c", str(cfg))
    assert made.returncode == 0, made.stderr
    (backup,) = [p for p in (tmp_path / "backups").iterdir()]
    assert _cdc("backup", "verify", "-c", str(cfg), backup.name).returncode == 0

    chunk = sorted((backup / "data").rglob("*.aes"))[2]
    original = chunk.read_bytes()
    flipped = bytearray(original)
    flipped[100] ^= 0x40
    chunk.write_bytes(bytes(flipped))
    _assert_refused(cfg, backup.name, pg_db.url, "does not match its SHA-256")

    chunk.write_bytes(original)
    manifest = (backup / MANIFEST).read_bytes()
    i = manifest.index(b'"rows": 500')
    (backup / MANIFEST).write_bytes(manifest[:i] + b'"rows": 400' + manifest[i + 11 :])
    _assert_refused(cfg, backup.name, pg_db.url, "does not match its HMAC")
    with pytest.raises(BackupCorruptError):
        restore(load_config(cfg), backup.name, pg_db.url)


def test_a_killed_backup_is_never_complete_and_a_killed_restore_finishes_on_rerun(
    mysql_db: Any, pg_db: Any, tmp_path: Path
) -> None:
    conn = mysql_db.connect(autocommit=True)
    rows = [
        (i, f"row {i}", i % 7, Decimal(i) / 100, datetime(2024, 1, 1) + timedelta(seconds=i)) for i in range(1, 100_001)
    ]
    with conn.cursor() as cur:
        cur.execute(ITEMS)
        for start in range(0, len(rows), 10_000):
            cur.executemany("INSERT INTO items VALUES (%s, %s, %s, %s, %s)", rows[start : start + 10_000])
    cfg = _write_config(tmp_path / "cdc.yaml", "killed", mysql_db.server_url, mysql_db.name, None, chunk_rows=2000)
    destination = tmp_path / "backups"

    # killed (SIGKILL, at a failpoint) right after its third chunk file is written
    killed = subprocess.run(
        [sys.executable, "-m", "cdc", "backup", "create", "-c", str(cfg)],
        cwd=ROOT,
        env={**os.environ, "CDC_FAILPOINTS": "backup.after_chunk:3"},
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(list(destination.glob("*.partial/data/*/*.zst"))) >= 3
    catalog = Catalog(destination, None)
    assert catalog.entries() == []
    listing = _cdc("backup", "list", "-c", str(cfg))
    assert listing.returncode == 0 and "no complete backup" in listing.stdout and "abandoned" in listing.stdout
    pruned = _cdc("backup", "prune", "-c", str(cfg))
    assert pruned.returncode == 0 and "incomplete" in pruned.stdout
    assert list(destination.iterdir()) == []

    made = _cdc("backup", "create", "-c", str(cfg))
    assert made.returncode == 0, made.stderr
    (entry,) = catalog.entries()
    assert entry.status == "ok" and entry.manifest is not None and entry.manifest.rows == 100_000

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cdc",
            "restore",
            "-c",
            str(cfg),
            "--backup",
            entry.id,
            "--target",
            pg_db.url,
            "--parallel",
            "1",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    import psycopg

    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, "the restore ended before it could be killed"
        assert time.monotonic() < deadline
        try:
            with psycopg.connect(pg_db.url, autocommit=True) as pg:
                chunks = pg.execute("SELECT value FROM cdc_positions WHERE pipeline LIKE 'restore:%:%'").fetchall()
        except psycopg.errors.UndefinedTable:
            chunks = []
        if any(json.loads(v)["snapshot"].get("chunk", 0) >= 3 for (v,) in chunks):
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _target_rows(pg_db.url, "postgres", mysql_db.name, "items")
    assert 0 < len(partial) < 100_000

    result = restore(load_config(cfg), entry.id, pg_db.url)
    assert result.skipped_chunks >= 3 and result.loaded_rows + 2000 * result.skipped_chunks == 100_000
    assert _target_rows(pg_db.url, "postgres", mysql_db.name, "items") == _source_rows(conn, "items")

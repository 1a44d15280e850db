"""Restore points of a PostgreSQL source against real servers: PostgreSQL source, Kafka change topics,
PostgreSQL and MariaDB targets.

The main scenario runs a live pipeline (PostgreSQL source → Kafka, as ``cdc run --only source``)
while a writer commits small transactions one after the other; a backup is taken in the middle of
them. Every write transaction also inserts a **ledger** row stamped with the server's
``clock_timestamp()`` just before its COMMIT, and right after the COMMIT returns the writer reads
the server's clock and ``pg_current_wal_lsn()`` again. A transaction's commit time lies between
those two stamps and its commit record before that LSN, so the state of the source at a time or an
LSN that falls between two transactions is known independently of cdc: the initial rows plus the
writes of the transactions before it. A restore to such a time must give exactly that, into
PostgreSQL and into MariaDB; a restore to such an LSN too.
"""

from __future__ import annotations

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
from cdc.backup.create import create_backup, keys_for
from cdc.backup.format import Manifest
from cdc.backup.restore import Until, restore
from cdc.config import Config, load_config
from cdc.positions import PgPosition, format_lsn, parse_lsn

ROOT = Path(__file__).resolve().parents[2]
KEY_HEX = "a5" * 32

ITEMS = (
    "CREATE TABLE items (id integer PRIMARY KEY, name varchar(60), qty integer NOT NULL, price numeric(12,2), "
    "updated timestamp(6))"
)
ACCOUNTS = (
    "CREATE TABLE accounts (id bigint PRIMARY KEY, owner varchar(40) NOT NULL, balance numeric(14,2) NOT NULL, "
    "opened date)"
)
LEDGER = "CREATE TABLE ledger (txn integer PRIMARY KEY, ts bigint NOT NULL)"  # ts: epoch microseconds
COLUMNS = {"items": "id, name, qty, price, updated", "accounts": "id, owner, balance, opened", "ledger": "txn, ts"}
STAMP = "(extract(epoch from clock_timestamp()) * 1000000)::bigint"

Rows = dict[str, dict[Any, tuple[Any, ...]]]
Delta = list[tuple[str, Any, tuple[Any, ...] | None]]


def _pg(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def _mysql(url: str, database: str) -> Any:
    import pymysql

    return pymysql.connect(**services.mysql_params(url, database))


def _target_rows(url: str, kind: str, schema: str, table: str) -> dict[Any, tuple[Any, ...]]:
    cols = COLUMNS[table]
    if kind == "postgres":
        from psycopg import sql

        with _pg(url) as conn:
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


def _drop_topics(bootstrap: str, prefix: str) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="cdc-tests-cleanup")
    try:
        doomed = [t for t in admin.list_topics() if prefix in t]
        if doomed:
            admin.delete_topics(doomed, timeout_ms=30_000)
    finally:
        admin.close()


def _slots(admin_url: str, database: str) -> list[tuple[str, bool]]:
    with _pg(admin_url) as conn:
        rows = conn.execute(
            "SELECT slot_name, temporary FROM pg_replication_slots WHERE database = %s ORDER BY slot_name", (database,)
        ).fetchall()
    return [(str(n), bool(t)) for n, t in rows]


def _drop_database(admin_url: str, name: str) -> None:
    from psycopg import sql

    with _pg(admin_url) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
            "WHERE database = %s AND active_pid IS NOT NULL",
            (name,),
        )
        for _ in range(100):
            rows = admin.execute(
                "SELECT slot_name, active FROM pg_replication_slots WHERE database = %s", (name,)
            ).fetchall()
            if not any(active for _, active in rows):
                break
            time.sleep(0.1)
        for slot, _active in rows:
            admin.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _write_config(
    path: Path,
    name: str,
    url: str,
    bootstrap: str | None,
    *,
    key: bool = False,
    chunk_rows: int = 50_000,
    heartbeat_ms: int = 500,
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
        f"source:\n  type: postgres\n  url: {url}\n"
        f"  tables: ['public.*']\n  snapshot_chunk_rows: 2000\n  heartbeat_interval_ms: {heartbeat_ms}\n"
        f"{bus}"
        f"backups:\n  destination: backups\n  chunk_rows: {chunk_rows}\n{key_line}"
    )
    return path


def _cdc(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cdc", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


# ---------------------------------------------------------------------------------------------
# The live scenario: pipeline, writer, backup in between
# ---------------------------------------------------------------------------------------------


@dataclass
class Writer:
    """Sequential write transactions, each ending with its ledger row; remembers what each one wrote
    and, read from the server right after its COMMIT returned, the server's clock and WAL position."""

    conn: Any
    rng: random.Random
    state: Rows
    deltas: list[Delta] = field(default_factory=list)
    after_us: list[int] = field(default_factory=list)  # server clock once the COMMIT returned
    after_lsn: list[int] = field(default_factory=list)  # pg_current_wal_lsn() once the COMMIT returned
    next_item: int = 100_000

    def transaction(self) -> None:
        txn = len(self.deltas) + 1
        delta: Delta = []
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
        cur.execute(f"INSERT INTO ledger VALUES (%s, {STAMP})", (txn,))
        cur.execute("COMMIT")
        row = cur.execute(f"SELECT {STAMP}, pg_current_wal_lsn()::text").fetchone()
        self.deltas.append(delta)
        self.after_us.append(int(row[0]))
        self.after_lsn.append(parse_lsn(str(row[1])))


@dataclass
class Scenario:
    config_path: Path
    config: Config
    admin_url: str
    database: str
    bootstrap: str
    initial: Rows
    writer: Writer
    ledger: dict[int, int]  # txn -> its ledger stamp (epoch µs, server clock, just before its COMMIT)
    manifest: Manifest
    slots_after_backup: list[tuple[str, bool]]
    pipeline_slot: str
    source: Any  # an autocommit connection to the source database

    @property
    def deltas(self) -> list[Delta]:
        return self.writer.deltas

    def state_after(self, done: int) -> Rows:
        """The source once its first ``done`` write transactions had committed: independent of cdc."""
        state = {t: dict(rows) for t, rows in self.initial.items()}
        state["ledger"] = {}
        for txn, delta in enumerate(self.deltas[:done], start=1):
            for table, key, row in delta:
                if row is None:
                    state[table].pop(key, None)
                else:
                    state[table][key] = row
            state["ledger"][txn] = (txn, self.ledger[txn])
        return state

    def gap_after(self, txn: int) -> int:
        """A time (epoch ms, server clock) strictly after transaction ``txn`` committed and strictly before
        ``txn + 1`` began writing its ledger row, so before its commit: the cut between the two."""
        low_ms = self.writer.after_us[txn - 1] // 1000 + 1  # txn's commit time (ms, truncated) <= this - 1
        high_ms = self.ledger[txn + 1] // 1000 - 1  # txn + 1's commit time (ms, truncated) >= this + 1
        assert low_ms <= high_ms, f"no millisecond between transactions {txn} and {txn + 1}"
        return (low_ms + high_ms) // 2

    def first_txn_after(self, ms: int) -> int:
        """The first transaction that began its ledger row after ``ms`` (epoch ms, server clock)."""
        return next(t for t in sorted(self.ledger) if self.ledger[t] // 1000 > ms)


class _Pipeline(threading.Thread):
    """PostgresSource → KafkaPublisher, as ``cdc run --only source`` does (acknowledging the slot with
    what Kafka acknowledged), until stopped."""

    def __init__(self, config: Config) -> None:
        super().__init__(daemon=True)
        self.config = config
        self.halt = threading.Event()
        self.opened = threading.Event()
        self.error: BaseException | None = None
        self.acked_txid: int | None = None  # the transaction of the last offset Kafka acknowledged

    def run(self) -> None:
        from cdc.bus.kafka import KafkaPublisher
        from connectors.postgres.source import PostgresSource

        try:
            pub = KafkaPublisher(self.config.bus.to_settings(), self.config.name)  # type: ignore[union-attr]
            src = PostgresSource(self.config.source, self.config.name)  # type: ignore[arg-type]
            stored = pub.open()
            src.open(stored)
            first = src.start_offset()
            if stored is None and first is not None:
                pub.save_offset(first)
            self.opened.set()
            acked = stored
            try:
                while not self.halt.is_set():
                    pub.publish(src.read_batch(2000, 0.2))
                    pub.pump()
                    if pub.committed is not None and pub.committed is not acked:
                        acked = pub.committed
                        src.acknowledge(acked)
                        if isinstance(acked.position, PgPosition):
                            self.acked_txid = acked.position.txid
                final = pub.flush(60)
                if final is not None:
                    src.acknowledge(final)
            finally:
                src.close()
                pub.close()
        except BaseException as exc:  # reported by the test
            self.error = exc
            self.opened.set()


@pytest.fixture(scope="module")
def scenario(pg_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    from psycopg import sql

    name = f"cdc_t_{uuid.uuid4().hex[:10]}"
    with _pg(pg_url) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = services.with_database(pg_url, name)
    pipeline: _Pipeline | None = None
    conn = None
    try:
        conn = _pg(url)
        rng = random.Random(8)
        initial: Rows = {
            "items": {
                i: (i, f"item {i} ☕", i % 50, Decimal(i) / 4, datetime(2024, 1, 1, 0, 0, i % 60, i))
                for i in range(1, 3001)
            },
            "accounts": {
                10**12 + i: (10**12 + i, f"owner {i}", Decimal("1000.00"), date(2020, 1, 1) + timedelta(days=i))
                for i in range(500)
            },
        }
        with conn.cursor() as cur:
            cur.execute(ITEMS)
            cur.execute(ACCOUNTS)
            cur.execute(LEDGER)
            cur.executemany("INSERT INTO items VALUES (%s, %s, %s, %s, %s)", list(initial["items"].values()))
            cur.executemany("INSERT INTO accounts VALUES (%s, %s, %s, %s)", list(initial["accounts"].values()))
        directory = tmp_path_factory.mktemp("backup_pg")
        config_path = _write_config(directory / "cdc.yaml", name, url, kafka_bootstrap, key=True, chunk_rows=700)
        config = load_config(config_path)
        pipeline = _Pipeline(config)
        pipeline.start()
        assert pipeline.opened.wait(60) and pipeline.error is None, pipeline.error

        writer = Writer(_pg(url), rng, {t: dict(r) for t, r in initial.items()})
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
        slots_after_backup = _slots(pg_url, name)
        time.sleep(4.0)
        halt.set()
        thread.join(30)
        time.sleep(1.2)  # heartbeats after the last write
        assert not failure, failure
        assert pipeline.error is None, pipeline.error

        ledger = {int(k): int(v[1]) for k, v in _target_rows(url, "postgres", "public", "ledger").items()}
        assert sorted(ledger) == list(range(1, len(writer.deltas) + 1))
        yield Scenario(
            config_path,
            config,
            pg_url,
            name,
            kafka_bootstrap,
            initial,
            writer,
            ledger,
            manifest,
            slots_after_backup,
            config.source.slot,  # type: ignore[union-attr]
            conn,
        )
    finally:
        if pipeline is not None:
            pipeline.halt.set()
            pipeline.join(60)
        if conn is not None:
            conn.close()
        _drop_database(pg_url, name)
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


def _time_after_backup(scenario: Scenario) -> tuple[int, int]:
    """A time T between two transactions, about 1.5 s after the backup, and the transactions before it."""
    target_ms = scenario.manifest.finished_ms + 1500
    txn = scenario.first_txn_after(target_ms) - 1
    t_ms = scenario.gap_after(txn)
    return t_ms, txn


def _check_restore_to_time(scenario: Scenario, url: str, kind: str, schema: str) -> None:
    t_ms, done = _time_after_backup(scenario)
    # the replay matters: transactions after the backup and before T, and after T
    in_backup = len(_backup_ledger(scenario))
    assert 0 < in_backup < done < len(scenario.deltas)
    result = restore(scenario.config, scenario.manifest.id, url, until=Until.parse(str(t_ms)))
    expected = scenario.state_after(done)
    for table in ("items", "accounts", "ledger"):
        got = _target_rows(url, kind, schema, table)
        assert got == expected[table], f"{table}: {len(got)} rows restored, {len(expected[table])} expected"
    assert result.replay == "time" and result.cut is not None and result.replayed > 0
    assert result.loaded_rows == scenario.manifest.rows
    # a second run finds the restore done and changes nothing
    again = restore(scenario.config, scenario.manifest.id, url, until=Until.parse(str(t_ms)))
    assert again.already_done
    assert _target_rows(url, kind, schema, "ledger") == expected["ledger"]


_BACKUP_LEDGER: dict[str, list[int]] = {}


def _backup_ledger(scenario: Scenario) -> list[int]:
    """The ledger's transactions in the backup (read from its chunks)."""
    if scenario.manifest.id not in _BACKUP_LEDGER:
        from cdc.backup.format import iter_rows

        catalog = Catalog(scenario.config.backups.destination, keys_for(scenario.config))  # type: ignore[union-attr]
        path, manifest = catalog.load(scenario.manifest.id)
        entry = next(t for t in manifest.tables if t.table.table == "ledger")
        _BACKUP_LEDGER[manifest.id] = sorted(
            int(row["txn"]) for _, rows in iter_rows(path, manifest, entry, catalog.keys) for row in rows
        )
    return _BACKUP_LEDGER[scenario.manifest.id]


def test_the_backup_is_the_source_at_its_consistent_point_and_leaves_no_slot(scenario: Scenario, pg_db: Any) -> None:
    m = scenario.manifest
    assert m.source == "postgres" and isinstance(m.position, PgPosition) and m.encryption == "aes-256-gcm"
    assert [str(t.table) for t in m.tables] == ["public.accounts", "public.items", "public.ledger"]
    assert sum(len(t.chunks) for t in m.tables) > 5  # chunked (chunk_rows: 700)
    # no slot of the backup's is left; the pipeline's slot is the only one, untouched
    assert scenario.slots_after_backup == [(scenario.pipeline_slot, False)]
    # the backup holds a prefix of the transactions, exactly those that committed before its LSN
    txns = _backup_ledger(scenario)
    done = len(txns)
    assert txns == list(range(1, done + 1)) and 0 < done < len(scenario.deltas)
    assert scenario.writer.after_lsn[done] > m.position.lsn  # txn done+1 ended after the point: not in it
    verified = Catalog(scenario.config.backups.destination, keys_for(scenario.config)).verify(m.id)  # type: ignore[union-attr]
    assert verified.seal == "hmac-sha256" and verified.rows == m.rows
    # restored as it is, it is the source after exactly those transactions
    result = restore(scenario.config, m.id, pg_db.url, until=Until.parse("backup"))
    assert result.replay == "none" and result.replayed == 0
    expected = scenario.state_after(done)
    for table in ("items", "accounts", "ledger"):
        assert _target_rows(pg_db.url, "postgres", "public", table) == expected[table], table


def test_restore_to_a_time_between_backup_and_now_into_postgres(scenario: Scenario, pg_db: Any) -> None:
    _check_restore_to_time(scenario, pg_db.url, "postgres", "public")


def test_restore_to_a_time_between_backup_and_now_into_mariadb(scenario: Scenario, mysql_target: str) -> None:
    _check_restore_to_time(scenario, mysql_target, "mysql", mysql_target.rstrip("/").rsplit("/", 1)[-1])


def test_restore_to_an_lsn_with_the_cli(scenario: Scenario, pg_db: Any) -> None:
    # an LSN read right after a transaction's COMMIT returned: that transaction and every earlier one
    # committed before it, the next one after it
    in_backup = len(_backup_ledger(scenario))
    done = min((in_backup + len(scenario.deltas)) // 2 + 3, len(scenario.deltas) - 1)
    lsn = format_lsn(scenario.writer.after_lsn[done - 1])
    out = _cdc(
        "restore",
        "-c",
        str(scenario.config_path),
        "--backup",
        scenario.manifest.id,
        "--target",
        pg_db.url,
        "--until",
        lsn,
    )
    assert out.returncode == 0, out.stderr
    assert "replayed to the requested position" in out.stdout
    expected = scenario.state_after(done)
    for table in ("items", "accounts", "ledger"):
        assert _target_rows(pg_db.url, "postgres", "public", table) == expected[table], table


def test_restore_to_the_end_replays_everything(scenario: Scenario, pg_db: Any) -> None:
    result = restore(scenario.config, "latest", pg_db.url)
    assert result.replay == "latest"
    expected = scenario.state_after(len(scenario.deltas))
    for table in ("items", "accounts", "ledger"):
        assert _target_rows(pg_db.url, "postgres", "public", table) == expected[table], table


# ---------------------------------------------------------------------------------------------
# A transaction that spans the backup's consistent point
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ddl", [False, True], ids=["rows", "ddl-and-rows"])
def test_a_transaction_open_across_the_consistent_point_is_replayed_not_lost(
    pg_url: str, kafka_bootstrap: str, pg_db: Any, tmp_path: Path, ddl: bool
) -> None:
    """A transaction whose change comes before the backup's consistent point but whose commit comes after
    it is not in the backup, so the replay must apply it: events are placed by their commit LSN.
    With ``ddl`` that transaction also adds a column to another table and writes a row with it: the
    backup's definition lacks the column (the snapshot did not see the commit), the row is replayed,
    and so is the definition it needs, although that was announced before the consistent point.

    PostgreSQL's slot becomes consistent in steps driven by running-transactions records (a CHECKPOINT
    writes one): transactions running when the slot was created must end (A), then those running at
    the next step (B); a transaction that begins after that step (C) may still be open at the
    consistent point, its change before it and its commit after it.
    """
    from psycopg import sql

    name = f"cdc_t_{uuid.uuid4().hex[:10]}"
    with _pg(pg_url) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = services.with_database(pg_url, name)
    pipeline: _Pipeline | None = None
    conns: list[Any] = []
    try:
        setup = _pg(url)
        conns.append(setup)
        setup.execute("CREATE TABLE t (id integer PRIMARY KEY, v text NOT NULL)")
        setup.execute("INSERT INTO t VALUES (0, 'initial')")
        setup.execute("CREATE TABLE u (id integer PRIMARY KEY, v text NOT NULL)")
        setup.execute("INSERT INTO u VALUES (0, 'initial')")
        # no heartbeats: their little transactions would be running transactions too
        config = load_config(_write_config(tmp_path / "cdc.yaml", name, url, kafka_bootstrap, heartbeat_ms=0))
        pipeline = _Pipeline(config)
        pipeline.start()
        assert pipeline.opened.wait(60) and pipeline.error is None, pipeline.error
        a, b, c = _pg(url), _pg(url), _pg(url)
        conns += [a, b, c]
        a.execute("BEGIN")
        a.execute("INSERT INTO t VALUES (1, 'a')")

        made: list[Any] = []

        def backup() -> None:
            try:
                made.append(create_backup(config))
            except BaseException as exc:
                made.append(exc)

        thread = threading.Thread(target=backup, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not any(t for _, t in _slots(pg_url, name)):  # the temporary slot is being created
            assert time.monotonic() < deadline and not made, made
            time.sleep(0.05)
        time.sleep(0.5)
        b.execute("BEGIN")
        b.execute("INSERT INTO t VALUES (2, 'b')")
        a.execute("COMMIT")
        setup.execute("CHECKPOINT")  # a running-transactions record: A has ended
        time.sleep(0.5)
        c.execute("BEGIN")
        c.execute("INSERT INTO t VALUES (3, 'c')")
        if ddl:  # (u, not t: B's row lock on t would make the ALTER wait for B)
            c.execute("ALTER TABLE u ADD COLUMN w text")
            c.execute("INSERT INTO u VALUES (3, 'c', 'w3')")
        row = c.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        c_change_before = parse_lsn(str(row[0]))  # C's change lies before this
        xid = c.execute("SELECT txid_current()").fetchone()
        assert xid is not None
        c_xid = int(xid[0])
        b.execute("COMMIT")
        deadline = time.monotonic() + 20
        while any(t for _, t in _slots(pg_url, name)) and time.monotonic() < deadline:
            setup.execute("CHECKPOINT")  # B has ended: the slot becomes consistent, with C open
            time.sleep(1.0)
        c.execute("COMMIT")
        thread.join(120)
        assert made and not isinstance(made[0], BaseException), made
        manifest = made[0]
        assert isinstance(manifest, Manifest) and isinstance(manifest.position, PgPosition)

        catalog = Catalog(config.backups.destination, None)  # type: ignore[union-attr]
        path, _ = catalog.load(manifest.id)
        from cdc.backup.format import iter_rows

        entry = next(e for e in manifest.tables if e.table.table == "t")
        in_backup = sorted(int(r["id"]) for _, rows in iter_rows(path, manifest, entry, None) for r in rows)
        if in_backup == [0, 1, 2, 3]:
            pytest.skip("other sessions' transactions kept the slot from becoming consistent while C was open")
        assert in_backup == [0, 1, 2]  # C committed after the backup's point...
        assert c_change_before < manifest.position.lsn  # ...while its change came before it

        deadline = time.monotonic() + 60
        while pipeline.acked_txid != c_xid:  # the pipeline has published C, and Kafka acknowledged it
            assert time.monotonic() < deadline and pipeline.error is None, pipeline.error
            time.sleep(0.2)
        result = restore(config, manifest.id, pg_db.url)
        assert _target_rows_t(pg_db.url) == {0: "initial", 1: "a", 2: "b", 3: "c"}
        assert result.replay == "latest" and result.replayed >= 1
        if ddl:
            u = next(e for e in manifest.tables if e.table.table == "u")
            assert "w" not in u.schema().schema.column_names  # the backup's definition lacks it
            with _pg(pg_db.url) as conn:
                rows = conn.execute("SELECT id, v, w FROM public.u ORDER BY id").fetchall()
            assert rows == [(0, "initial", None), (3, "c", "w3")]
    finally:
        if pipeline is not None:
            pipeline.halt.set()
            pipeline.join(60)
        for conn in conns:
            conn.close()
        _drop_database(pg_url, name)
        _drop_topics(kafka_bootstrap, name)


def _target_rows_t(url: str) -> dict[int, str]:
    with _pg(url) as conn:
        return {int(k): str(v) for k, v in conn.execute("SELECT id, v FROM public.t").fetchall()}


# ---------------------------------------------------------------------------------------------
# kill -9 during a backup (no Kafka needed: bus.type direct)
# ---------------------------------------------------------------------------------------------


def test_a_killed_backup_is_never_complete_and_leaves_no_slot(pg_db: Any, tmp_path: Path) -> None:
    with pg_db.connect() as conn:
        conn.execute(ITEMS)
        conn.execute(
            "INSERT INTO items SELECT g, 'row ' || g, g % 7, g / 100.0, timestamp '2024-01-01' + g * interval '1 s' "
            "FROM generate_series(1, 100000) g"
        )
    cfg = _write_config(tmp_path / "cdc.yaml", "killed_pg", pg_db.url, None, chunk_rows=2000)
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
    assert Catalog(destination, None).entries() == []
    # the temporary slot went with the killed session (it existed only until the snapshot was imported)
    deadline = time.monotonic() + 30
    while _slots(pg_db.server_url, pg_db.name):
        assert time.monotonic() < deadline, _slots(pg_db.server_url, pg_db.name)
        time.sleep(0.2)
    listing = _cdc("backup", "list", "-c", str(cfg))
    assert listing.returncode == 0 and "no complete backup" in listing.stdout and "abandoned" in listing.stdout

    made = _cdc("backup", "create", "-c", str(cfg))
    assert made.returncode == 0, made.stderr
    (entry,) = Catalog(destination, None).entries()
    assert entry.status == "ok" and entry.manifest is not None and entry.manifest.rows == 100_000
    assert _slots(pg_db.server_url, pg_db.name) == []

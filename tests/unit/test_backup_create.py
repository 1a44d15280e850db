"""Taking backups through the connector interface (an in-memory snapshot), metrics, and the schedule."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdc.backup import create
from cdc.backup.catalog import Catalog
from cdc.backup.create import create_backup, run_schedule
from cdc.backup.format import ChunkCodec
from cdc.config import Config, parse_config
from cdc.errors import BackupError, ConnectionLostError
from cdc.events import ChangeEvent, Checkpoint, Column, Item, Logical, Op, SchemaChange, TableId, TableSchema, Wire
from cdc.positions import PgPosition, Position, SourceOffset

TABLE = TableId("public", "t")
POSITION = PgPosition(0x16B3748)


class FakeSnapshot:
    """A source's snapshot as the interface describes it; ``fail_after`` batches, it raises."""

    def __init__(self, rows: int, fail_after: int | None = None) -> None:
        self.rows = rows
        self.fail_after = fail_after
        self._position: Position | None = None
        self.closed = False

    @property
    def position(self) -> Position | None:
        return self._position

    def batches(self) -> Iterator[Sequence[Item]]:
        self._position = POSITION
        schema = TableSchema(
            TABLE,
            (
                Column("id", "integer", Logical.INT32, Wire("int32", optional=False), nullable=False, position=1),
                Column("v", "text", Logical.TEXT, Wire("string"), position=2),
            ),
            ("id",),
        )
        source = {"connector": "postgresql", "db": "d", "schema": "public", "table": "t", "ts_ms": 1, "lsn": 1}
        yield [SchemaChange("CREATE", schema, None, source, 1, POSITION)]
        for n, start in enumerate(range(0, self.rows, 7)):
            if self.fail_after is not None and n >= self.fail_after:
                raise ConnectionLostError("the source went away")
            events: list[Item] = [
                ChangeEvent(Op.READ, TABLE, {"id": i}, None, {"id": i, "v": f"v{i}"}, source, 1)
                for i in range(start, min(self.rows, start + 7))
            ]
            yield [*events, Checkpoint(SourceOffset(POSITION, "snapshot", {"chunk": n}), 1)]

    def progress(self) -> dict[str, Any] | None:
        return {"rows_total_estimate": self.rows}

    def close(self) -> None:
        self.closed = True


def _config(tmp_path: Path, **backups: Any) -> Config:
    data = {
        "name": "pg",
        "source": {"type": "postgres", "url": "postgresql://cdc@db/app"},
        "bus": {"type": "kafka", "bootstrap_servers": "kafka:9092"},
        "backups": {"destination": "backups", "chunk_rows": 10, **backups},
    }
    return parse_config(yaml.safe_dump(data), env={}, base_dir=tmp_path)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def backup_done(self, size_bytes: int, duration_s: float, finished_at: float) -> None:
        self.calls.append((size_bytes, duration_s, finished_at))


def test_any_connector_snapshot_becomes_a_backup(tmp_path: Path) -> None:
    config = _config(tmp_path)
    snapshot = FakeSnapshot(33)
    metrics = Recorder()
    manifest = create_backup(config, snapshot=snapshot, metrics=metrics)
    assert snapshot.closed
    assert manifest.position == POSITION and manifest.source == "postgres" and manifest.pipeline == "pg"
    (entry,) = manifest.tables
    assert (entry.table, entry.rows, [c.rows for c in entry.chunks]) == (TABLE, 33, [10, 10, 10, 3])
    rows = [
        r
        for c in entry.chunks
        for r in ChunkCodec(manifest.id, None).decode((tmp_path / "backups" / manifest.id / c.file).read_bytes(), c, "")
    ]
    assert rows == [{"id": i, "v": f"v{i}"} for i in range(33)]
    assert metrics.calls == [
        (manifest.size, pytest.approx((manifest.finished_ms - manifest.started_ms) / 1000), manifest.finished_ms / 1000)
    ]
    assert [e.id for e in Catalog(tmp_path / "backups", None).entries()] == [manifest.id]


def test_a_failed_backup_leaves_nothing(tmp_path: Path) -> None:
    config = _config(tmp_path)
    with pytest.raises(ConnectionLostError):
        create_backup(config, snapshot=FakeSnapshot(100, fail_after=3))
    assert list((tmp_path / "backups").iterdir()) == []


def test_a_snapshot_without_a_position_is_not_a_backup(tmp_path: Path) -> None:
    class NoPosition(FakeSnapshot):
        @property
        def position(self) -> Position | None:
            return None

    with pytest.raises(BackupError, match="without naming its position"):
        create_backup(_config(tmp_path), snapshot=NoPosition(5))
    assert list((tmp_path / "backups").iterdir()) == []


def test_the_schedule_takes_a_backup_when_due_and_prunes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path, schedule="30m", retention={"keep_last": 1, "keep_daily": 0, "keep_weekly": 0})
    monkeypatch.setattr(create, "open_snapshot", lambda _config: FakeSnapshot(5))
    old = create_backup(config, backup_id="old", snapshot=FakeSnapshot(5))
    stop = threading.Event()
    seen: list[tuple[str, list[str]]] = []

    # the newest backup is fresh: nothing is due within the first minute, so the loop only waits
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    run_schedule(config, stop, on_backup=lambda m, pruned: seen.append((m.id, pruned)))
    assert seen == []

    # once it is older than the interval, a backup is taken at once and the old one pruned
    clock = [old.finished_ms + 31 * 60 * 1000]
    monkeypatch.setattr(create, "_now_ms", lambda: clock[0])
    stop.clear()

    def record(m: Any, pruned: list[str]) -> None:
        seen.append((m.id, pruned))
        stop.set()

    run_schedule(config, stop, on_backup=record)
    assert len(seen) == 1 and seen[0][1] == ["old"]
    assert [e.id for e in Catalog(tmp_path / "backups", None).entries()] == [seen[0][0]]

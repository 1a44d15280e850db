"""Taking a backup: a source connector's consistent snapshot, written out in the backup format.

The connector-specific part is one small interface, :class:`BackupSnapshot`, that a source package
provides as ``connectors/<type>/backup.py`` with ``open_snapshot(source_config, prefix)``. It hands
over the same items as the source's initial snapshot (definitions, then ``op: r`` rows) and the
source position of the snapshot's consistent view. A connector may also hand over rows in its
native encoding (:meth:`BackupSnapshot.native_batches`: :class:`NativeTable` and
:class:`NativeChunk`): whole chunks of lines as the server wrote them, with no value converted in
Python. Everything else (chunks, manifest, seal, the atomic completion) is generic, in
:mod:`cdc.backup.format`.
"""

from __future__ import annotations

import gc
import importlib
import logging
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from cdc import registry
from cdc.backup.format import BackupWriter, Manifest
from cdc.backup.keys import BackupKeys
from cdc.envelope import EnvelopeCodec
from cdc.errors import BackupError, ConfigError, TransientError
from cdc.events import ChangeEvent, Op, SchemaChange, TableId

if TYPE_CHECKING:
    from cdc.config import BackupsConfig, Config
    from cdc.events import Item
    from cdc.positions import Position

__all__ = [
    "BackupSnapshot",
    "NativeChunk",
    "NativeTable",
    "Reporter",
    "create_backup",
    "new_backup_id",
    "open_snapshot",
    "run_schedule",
]

log = logging.getLogger("cdc.backup")

#: While a backup streams rows, the cyclic garbage collector runs this often instead of automatically.
GC_INTERVAL_S = 5.0


@dataclass(frozen=True, slots=True)
class NativeTable:
    """A table whose rows come as :class:`NativeChunk` items in ``encoding`` (one of
    :data:`cdc.backup.format.ENCODINGS`); ``native`` is what reading them takes, stored in the manifest
    and handed back to the connector's ``row_decoder`` (see :mod:`cdc.backup.format`)."""

    change: SchemaChange
    encoding: str
    native: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NativeChunk:
    """One chunk of a :class:`NativeTable`'s rows: ``rows`` whole lines, each ending in a line feed."""

    table: TableId
    text: bytes | bytearray
    rows: int


class BackupSnapshot(Protocol):
    """What a source connector provides for backups (``connectors/<type>/backup.py:open_snapshot``).

    Contract: :meth:`batches` yields the snapshot's items in order: a
    :class:`~cdc.events.SchemaChange` for every table before its first row, then ``op: r``
    :class:`~cdc.events.ChangeEvent` rows whose ``after`` holds the row in Debezium's
    representation (other items, such as chunk checkpoints, are ignored). All rows belong to one
    consistent view of the database. Once the first batch has been yielded, :attr:`position` is
    the source position of that view: replaying the changes after it onto the rows gives the
    database at any later point. :meth:`close` releases the connection, also mid-way. Nothing is
    stored anywhere by the source (a backup does not disturb the running pipeline).
    """

    @property
    def position(self) -> Position | None: ...

    def batches(self) -> Iterator[Sequence[Item]]: ...

    def progress(self) -> dict[str, Any] | None:
        """Like :meth:`cdc.connector.Source.snapshot_progress` (``rows``, ``rows_total_estimate``, ...)."""
        ...

    def close(self) -> None: ...

    # Optional (a connector without it is read through batches()):
    #
    # def native_batches(self, chunk_rows: int) -> Iterator[Sequence[Item | NativeTable | NativeChunk]]:
    #     Like batches(), but a table may be announced by a NativeTable (instead of its SchemaChange)
    #     and its rows then come as NativeChunk items of at most chunk_rows rows each; tables it cannot
    #     read natively come as in batches(). The position and progress rules are the same.


class Reporter(Protocol):
    """Progress display: one task per unit of long work (a snapshot, a table being loaded)."""

    def start_task(self, name: str, total: int | None) -> Any: ...

    def advance(self, task: Any, n: int) -> None: ...

    def finish(self, task: Any) -> None: ...


class _Quiet:
    def start_task(self, name: str, total: int | None) -> Any:
        return None

    def advance(self, task: Any, n: int) -> None:
        return None

    def finish(self, task: Any) -> None:
        return None


QUIET: Reporter = _Quiet()


def backups_config(config: Config) -> BackupsConfig:
    """``config.backups``, or a ConfigError saying it is missing."""
    if config.backups is None:
        raise ConfigError(["backups: this command needs a 'backups:' section (at least 'destination: DIR')"])
    return config.backups


def keys_for(config: Config) -> BackupKeys | None:
    """The keys derived from ``backups.encryption_key_file``, or None without one."""
    key = backups_config(config).encryption_key()
    return BackupKeys(key) if key is not None else None


def open_snapshot(config: Config) -> BackupSnapshot:
    """The source connector's snapshot for a backup (``connectors/<type>/backup.py``, imported now)."""
    kind = config.source.type
    package = registry.SOURCES.get(kind)
    if package is None:
        raise ConfigError([f"source.type: unknown connector {kind!r}"])
    name = f"{package}.backup"
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        if exc.name == name:
            raise BackupError(f"the {kind} source does not support backups yet (it has no {name} module)") from exc
        raise ConfigError([f"source.type: the {kind} backup support cannot be loaded: {exc}"]) from exc
    snapshot: BackupSnapshot = module.open_snapshot(config.source, config.topic_prefix)
    return snapshot


def new_backup_id(pipeline: str, now_ms: int) -> str:
    """``<pipeline>-<UTC time>-<4 hex digits>``: sorts by time, unique, safe as a directory name."""
    stamp = datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{pipeline[:100]}-{stamp}-{secrets.token_hex(2)}"


def _now_ms() -> int:
    return int(time.time() * 1000)


def create_backup(
    config: Config,
    *,
    backup_id: str | None = None,
    progress: Reporter = QUIET,
    metrics: Any = None,
    snapshot: BackupSnapshot | None = None,
    native: bool = True,
) -> Manifest:
    """Take one backup of the source's captured tables into ``backups.destination`` and return its manifest.

    The backup is complete (and listed) only once this returns; a failure removes what was
    written, and a killed process leaves only an ignored ``.partial`` directory. ``metrics``, when
    given and when it has ``backup_done(size_bytes, duration_s, finished_at)``, is told about the
    completed backup. ``snapshot`` replaces the connector's (for tests). ``native=False`` stores
    every table as JSON lines even when the connector can read it in its native encoding.

    Raises :class:`~cdc.errors.ConfigError` without a ``backups`` section or with a bad key file,
    :class:`~cdc.errors.BackupError` when the destination cannot take it, and the source
    connector's errors (connect, lost connection).
    """
    cfg = backups_config(config)
    keys = keys_for(config)
    started = _now_ms()
    bid = backup_id or new_backup_id(config.name, started)
    writer = BackupWriter(
        cfg.destination,
        bid,
        keys,
        chunk_rows=cfg.chunk_rows,
        level=cfg.compression_level,
        codec=EnvelopeCodec(config.topic_prefix, schemas=False),
    )
    stream = snapshot if snapshot is not None else open_snapshot(config)
    task = None
    done = 0
    # Rows are acyclic and arrive by the hundred thousand: the cyclic collector would scan every
    # buffered row again and again. It is paused while rows stream and run every few seconds instead.
    collecting = gc.isenabled()
    gc.disable()
    last_collect = time.monotonic()
    try:
        writer.open()
        snapshot_ms: int | None = None
        read = Op.READ
        native_batches = getattr(stream, "native_batches", None) if native else None
        batches: Iterator[Sequence[Any]] = (
            native_batches(cfg.chunk_rows) if callable(native_batches) else stream.batches()
        )
        for batch in batches:
            if snapshot_ms is None:
                snapshot_ms = _now_ms()  # the view was taken before the first batch could be yielded
            rows: dict[TableId, list[dict[str, Any]]] = {}
            table: TableId | None = None
            images: list[dict[str, Any]] = []
            chunked = 0
            for item in batch:
                if type(item) is ChangeEvent or isinstance(item, ChangeEvent):
                    after = item.after
                    if item.op is not read or after is None:
                        continue
                    if item.table is not table:
                        table = item.table
                        images = rows.setdefault(table, [])
                    images.append(after)
                elif type(item) is NativeChunk:
                    writer.add_chunk(item.table, item.text, item.rows)
                    chunked += item.rows
                elif isinstance(item, SchemaChange):
                    writer.add_table(item)
                elif isinstance(item, NativeTable):
                    writer.add_table(item.change, item.encoding, item.native)
            for table_id, table_rows in rows.items():
                writer.add_rows(table_id, table_rows)
            view = stream.progress() or {}
            if task is None:
                task = progress.start_task(f"backup {bid}", int(view.get("rows_total_estimate") or 0) or None)
            n = sum(len(v) for v in rows.values()) + chunked
            if n:
                progress.advance(task, n)
                done += n
            if collecting and time.monotonic() - last_collect > GC_INTERVAL_S:
                gc.collect()
                last_collect = time.monotonic()
        position = stream.position
        if position is None or snapshot_ms is None:
            raise BackupError("the source's snapshot ended without naming its position; the backup is discarded")
        manifest = writer.commit(
            pipeline=config.name,
            source=config.source.type,
            position=position,
            snapshot_ms=snapshot_ms,
            started_ms=started,
            finished_ms=_now_ms(),
        )
    except BaseException:
        writer.abort()
        raise
    finally:
        if collecting:
            gc.enable()
        if task is not None:
            progress.finish(task)
        stream.close()
    done_hook = getattr(metrics, "backup_done", None)
    if callable(done_hook):
        done_hook(manifest.size, (manifest.finished_ms - manifest.started_ms) / 1000, manifest.finished_ms / 1000)
    return manifest


def run_schedule(
    config: Config,
    stop: threading.Event,
    *,
    progress: Reporter = QUIET,
    metrics: Any = None,
    on_backup: Any = None,
) -> None:
    """Take a backup every ``backups.schedule`` and prune after each, until ``stop`` is set.

    The next backup is due one interval after the newest complete one finished (at once if there is
    none), so restarting the scheduler does not take an extra backup. A transient error (a lost
    connection) is logged and retried after a minute at most; any other error ends the loop.
    ``on_backup(manifest, pruned_ids)`` is called after each backup.
    """
    from cdc.backup.catalog import Catalog

    cfg = backups_config(config)
    interval = cfg.interval_s
    if interval is None:
        raise ConfigError(["backups.schedule: required for scheduled backups (e.g. '6h' or '30m')"])
    catalog = Catalog(cfg.destination, keys_for(config))
    while not stop.is_set():
        newest = catalog.newest()
        due_ms = newest.finished_ms + interval * 1000 if newest is not None else 0
        wait = (due_ms - _now_ms()) / 1000
        if wait > 0:
            stop.wait(min(wait, 60.0))
            continue
        try:
            manifest = create_backup(config, progress=progress, metrics=metrics)
        except TransientError as exc:
            log.warning("backup failed, retrying: %s", exc)
            stop.wait(min(60.0, interval))
            continue
        pruned = catalog.prune(cfg.retention)
        if on_backup is not None:
            on_backup(manifest, pruned.deleted)

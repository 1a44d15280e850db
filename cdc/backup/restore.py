"""Restoring a backup into any SQLAlchemy target, then replaying the change topics to a point in time.

:func:`restore` works in three phases, each resumable, with its progress kept **in the target**
(``cdc_positions``, in the same transactions as the rows), so re-running a killed restore with the
same arguments finishes it and gives the same result:

1. **Check.** The manifest's seal and every data file's size and SHA-256 are checked before
   anything is written (a tampered or damaged backup is refused with
   :class:`~cdc.errors.BackupCorruptError`); each chunk is checked again as it is loaded. The
   target remembers the restore's arguments under the pipeline key ``restore:<backup id>``; a
   target holding a restore of that backup with other arguments is refused.
2. **Bulk load.** Every table is created with the sink's type mapping from the definition in
   the manifest; then each chunk is applied as one batch of ``op: r`` events through
   :meth:`~cdc.connector.Sink.write_batch` (PostgreSQL: ``COPY`` into a staging table and one
   merge; MySQL/MariaDB: multi-row upserts), together with a marker that it is done (pipeline key
   ``restore:<id>:<table>#<chunk>``). A table in a native encoding (see :mod:`cdc.backup.format`)
   whose target the source connector's ``native_loader`` accepts (the same engine, every column of
   the same type, nothing lost by the Debezium representation) skips the conversion: its chunks go
   to the target as the source wrote them (``COPY FROM``, ``LOAD DATA``), each again in one
   transaction with its marker; the loader may drop an empty table's primary key first and add it
   back once all chunks are in. Other native tables are decoded by the connector's ``row_decoder``
   into the very row images its snapshot would have published, and applied as above.
   ``--parallel`` chunks load at once, one sink per thread,
   the chunks of one table side by side (one thread converts rows while the target writes
   another's). A rerun skips the chunks done; a chunk that hits a transient error (a deadlock)
   is tried again.
3. **Replay** (Kafka bus). The change topics are read from the first record at or after the
   backup's start (minus :data:`~cdc.backup.topics.CLOCK_MARGIN_MS`); an event whose source
   position is at or before the backup's position is already in the backup and skipped. (The
   position a replay goes by is the event's own for MySQL, the binlog position; for PostgreSQL it
   is its transaction's commit LSN, :class:`PgCommitPosition`, see :data:`REPLAY_POSITION`: an
   event is in the backup exactly when its transaction committed before the backup's consistent
   point.) The schema history's definitions after the backup's position are applied first; a
   replayed row with columns that neither the backup's definition nor those have (a PostgreSQL
   transaction that altered the table before the backup's point and committed after it) takes the
   latest earlier definition that has them. Events are
   applied per partition in order, with the next offset of every partition stored with the rows
   (pipeline key ``restore:<id>``). Where it stops:

   * ``--until POSITION`` (``binlog.000042:1234``, or an LSN ``0/16B3748``): events at or after that
     position are not applied. Use a transaction boundary (a position ``cdc status`` shows). For
     PostgreSQL: exactly the transactions whose commit record lies before that LSN are applied.
   * ``--until TIME``: at the first transaction, in source log order, that has a change stamped
     after TIME; it and everything after it are left out, so the result is a state the source
     really had, and never part of a transaction. A transaction's time is that of its last change
     (MySQL stamps each row change with its statement's start time, in whole seconds; events of
     one transaction are recognized by their transaction id, the GTID; PostgreSQL stamps every change
     with its transaction's commit time, in milliseconds). Technically: each partition
     is scanned up to its first event after TIME; the earliest of those events in log order marks
     the cut; every event of that transaction, and every event at or after its position, is left
     out. This relies on the topics holding each table's changes in commit order (true of the binlog
     and of pgoutput, which sends whole transactions in commit order). PostgreSQL's commit times
     can disagree with its commit order by a few microseconds between concurrent commits; the cut
     is still a prefix of the commit order, so the result is a state the database really had.
   * neither: everything the topics hold now.

   Before stopping at TIME or POSITION the pipeline must have published (and Kafka acknowledged)
   everything up to the cut; otherwise the restore waits a minute for it and then refuses, rather
   than restore a state with holes. With ``--follow`` the restore then keeps applying new changes
   like a normal sink (:class:`~cdc.bus.consumer.KafkaSinkRunner`) until stopped.

Replays need the change topics to still hold every change after the backup (see
:mod:`cdc.backup.topics`); if retention deleted some, the restore is refused with
:class:`~cdc.errors.PositionLostError`. The target should be empty (or hold an earlier, killed run
of the same restore).
"""

from __future__ import annotations

import gc
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdc import failpoints, registry
from cdc.backup.catalog import Catalog
from cdc.backup.create import QUIET, Reporter, backups_config, keys_for
from cdc.backup.format import (
    LINE_ENCODINGS,
    ChunkCodec,
    ChunkInfo,
    Manifest,
    TableEntry,
    backup_module,
    read_chunk,
    row_decoder,
    show_position,
)
from cdc.envelope import EnvelopeCodec
from cdc.errors import (
    BackupError,
    ConfigError,
    ConnectionLostError,
    DecodeError,
    PositionLostError,
    TargetValueError,
    TransientError,
)
from cdc.events import ChangeEvent, Op, SchemaChange, TableId
from cdc.positions import MySqlPosition, PgPosition, Position, SourceOffset, parse_lsn

if TYPE_CHECKING:
    from cdc.bus.base import Consumer, Message, TopicPartition
    from cdc.bus.kafka import KafkaSettings
    from cdc.config import Config, SinkConfig
    from cdc.connector import Sink

__all__ = [
    "REPLAY_POSITION",
    "PgCommitPosition",
    "RestoreResult",
    "Until",
    "pg_commit_position",
    "restore",
    "restore_key",
]

#: The name of the sink a restore writes with (keys in ``cdc_positions``).
SINK_NAME = "restore"
#: How long a restore to a time or position waits for the pipeline to publish up to it.
CATCH_UP_WAIT_S = 60.0
#: How often a chunk is tried when the target reports a transient error (a deadlock, a lost connection).
CHUNK_ATTEMPTS = 3

log = logging.getLogger(__name__)

#: Per position kind, the position a replay orders and cuts a change event by, when it is not the event's
#: own ``position``. The replay's rules need a position that orders transactions in commit order and is
#: the same for, or at least groups, the events of one transaction: MySQL's binlog positions are (the
#: binlog is written in commit order, one transaction after the other). A source whose event positions
#: interleave transactions (PostgreSQL's change LSNs) registers here how to find its commit position.
REPLAY_POSITION: dict[str, Callable[[ChangeEvent], Position | None]] = {}


@dataclass(frozen=True, eq=True)
class PgCommitPosition(PgPosition):
    """Where a PostgreSQL transaction commits: ``lsn`` is the LSN of its commit record (``txid`` its id).

    It orders *just after* ``PgPosition(lsn)`` and before ``PgPosition(lsn + 1)``, which gives the
    replay's rules their meaning for PostgreSQL: a backup's position is a consistent point ``P`` of a
    slot, and a transaction is in the backup exactly when its commit record lies before ``P``
    (pgoutput streams from ``P`` the transactions whose commit record starts at or after it). So
    ``commit > P`` holds exactly for the transactions after the backup (also for a commit record
    that starts at ``P`` itself), and ``commit >= U`` for ``--until U`` exactly for those that
    did not commit before ``U``. Every change of one transaction gets the same commit position, and
    commit positions follow commit order.
    """

    def sort_key(self) -> str:
        return super().sort_key() + "~"  # "~" sorts after every hex digit

    def __hash__(self) -> int:
        return hash(("commit", self.lsn, self.txid))


def pg_commit_position(event: ChangeEvent) -> Position | None:
    """The commit position of a PostgreSQL change event (:class:`PgCommitPosition`), or None if unknown.

    cdc's PostgreSQL source names each transaction ``"<xid>:<commit LSN>"`` (decimal, the LSN of
    the commit record that pgoutput's Begin message announces) in the envelope's
    ``transaction.id``; the change's own ``source.lsn`` lies before its commit and cannot place the
    transaction. An event without such an id (a transaction id of another form, or none) gives
    None, and the replay refuses it rather than guess on which side of the backup it falls.

    A snapshot row (``op: r``, from the pipeline's initial snapshot) belongs to no transaction: it
    keeps its own position, the consistent point of the snapshot it was read in.
    """
    if event.op is Op.READ:
        return event.position
    txn = event.txn_id
    if not txn:
        return None
    xid_text, sep, lsn_text = txn.partition(":")
    if not sep or not xid_text.isdigit() or not lsn_text.isdigit():
        return None
    xid = int(xid_text)
    own = event.position.txid if isinstance(event.position, PgPosition) else None
    if own is not None and own != xid:
        return None
    return PgCommitPosition(int(lsn_text), xid)


REPLAY_POSITION[PgPosition.kind] = pg_commit_position

_LSN = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")
_BINLOG = re.compile(r"(?P<file>[^\s:]+\.\d+):(?P<pos>\d+)")


@dataclass(frozen=True)
class Until:
    """Where a replay stops: a source commit time, a source position, or the backup's own point."""

    text: str
    time_ms: int | None = None
    position: Position | None = None
    at_backup: bool = False

    @classmethod
    def parse(cls, text: str) -> Until:
        """``backup`` (no replay), ``FILE.NNN:POS`` (binlog), ``X/Y`` (LSN), epoch seconds or milliseconds,
        or an ISO-8601 time (without a zone: UTC). ValueError for anything else."""
        t = text.strip()
        if t.lower() in ("backup", "snapshot"):
            return cls(t.lower(), at_backup=True)
        if _LSN.fullmatch(t):
            return cls(t, position=PgPosition(parse_lsn(t)))
        m = _BINLOG.fullmatch(t)
        if m:
            return cls(t, position=MySqlPosition(m["file"], int(m["pos"])))
        if t.isdigit():
            n = int(t)
            return cls(t, time_ms=n if n >= 10**11 else n * 1000)
        try:
            moment = datetime.fromisoformat(t)
        except ValueError:
            raise ValueError(
                f"{text!r} is neither a time (ISO-8601 such as 2025-01-31T12:00:00Z, or epoch seconds) nor a "
                "position (binlog FILE:POS, or a PostgreSQL LSN X/Y)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return cls(t, time_ms=round(moment.timestamp() * 1000))


@dataclass
class RestoreResult:
    """What :func:`restore` did."""

    backup: str
    tables: list[str]
    loaded_rows: int = 0
    skipped_chunks: int = 0  # loaded by an earlier, interrupted run
    replayed: int = 0  # change events applied
    replay: str = "none"  # "none" (backup point), "latest", "time", "position"
    cut: str | None = None  # where the replay stopped, for the report
    already_done: bool = False
    notes: list[str] = field(default_factory=list)
    native: list[str] = field(default_factory=list)  # tables whose chunks went to the target as stored


def restore_key(backup_id: str) -> str:
    """The pipeline key a restore of ``backup_id`` stores its replay offsets and arguments under."""
    return f"restore:{backup_id}"


def _chunk_key(backup_id: str, table: TableId, chunk: int) -> str:
    """The pipeline key a restore marks chunk ``chunk`` of ``table`` loaded under (with the rows)."""
    key = f"restore:{backup_id}:{table}#{chunk}"
    if len(key) <= 200:
        return key
    import hashlib

    return f"restore:{backup_id}:#{hashlib.sha256(str(table).encode()).hexdigest()[:32]}#{chunk}"


@dataclass
class _TableTask:
    """A table's progress task and how many of its chunks are still to load."""

    task: Any
    left: int


@dataclass(slots=True)
class _Chunk:
    """One chunk to load: chunk ``index`` of ``entry``, its content (checked, decrypted, decompressed) to come."""

    entry: TableEntry
    index: int
    content: Future[bytes]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _sink_config(config: Config, target: str, patterns: Sequence[str], batch_size: int) -> SinkConfig:
    from pydantic import ValidationError

    from cdc.config import SinkConfig

    if target.startswith("sink:"):
        base = config.sink(target[len("sink:") :])
        url: Any = base.url
    else:
        url = target
    try:
        return SinkConfig.model_validate(
            {
                "name": SINK_NAME,
                "url": url,
                "tables": list(patterns),
                "schema_evolution": "basic",
                "on_error": "fail",
                "dead_letter_topic": f"__cdc_dlq.{SINK_NAME}",
                "batch_size": batch_size,
            }
        )
    except ValidationError as exc:
        problems = [
            f"--target: {e['msg']}" if e["loc"] and e["loc"][0] == "url" else str(e["msg"]) for e in exc.errors()
        ]
        raise ConfigError(problems) from None


def load_order(entries: Sequence[TableEntry]) -> list[TableEntry]:
    """The order tables are loaded in: the biggest first, so the others fill in beside it."""
    return sorted(entries, key=lambda e: -e.rows)


#: Chunks whose content is read ahead while the restore starts (imports, target set-up), up to this
#: many stored bytes: the target has nothing to do yet, so the second core decompresses then rather
#: than beside the target's loading.
PREFETCH_BYTES = 16 << 20


class _ChunkReader:
    """Reads a backup's chunk files on one thread of its own, in load order: first every file's size and
    checksum (:attr:`checked`: nothing is written before it is done), then the contents (checked again,
    decrypted, decompressed) of the first chunks, up to :data:`PREFETCH_BYTES`, and later the others a
    few chunks before a loading thread takes them. Hashing, decryption and zstandard release the GIL, so
    this runs beside the imports, the target's set-up and the loading threads."""

    def __init__(self, catalog: Catalog, path: Path, manifest: Manifest, entries: Sequence[TableEntry]) -> None:
        self.path = path
        self.where = f"backup {manifest.id}"
        self.codec = ChunkCodec(manifest.id, catalog.keys)
        self.work = [(entry, i) for entry in load_order(entries) for i in range(len(entry.chunks))]
        self._ex = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cdc-restore-read")
        self.checked: Future[None] = self._ex.submit(catalog.check_files, path, manifest)
        self._window: deque[_Chunk] = deque()
        self._next = 0
        budget = PREFETCH_BYTES
        while self._next < len(self.work) and budget > 0:
            item = self._submit()
            budget -= item.entry.chunks[item.index].size

    def _submit(self) -> _Chunk:
        entry, i = self.work[self._next]
        self._next += 1
        item = _Chunk(entry, i, self._ex.submit(self._content, entry.chunks[i]))
        self._window.append(item)
        return item

    def _content(self, chunk: ChunkInfo) -> bytes:
        return self.codec.open(read_chunk(self.path, chunk, self.where), chunk, self.where)

    def chunks(self, ahead: int) -> Generator[_Chunk, None, None]:
        """Every chunk in load order, keeping at least ``ahead`` chunks read ahead. The loading threads share
        this generator (under a lock)."""
        while self._window:
            while self._next < len(self.work) and len(self._window) <= ahead:
                self._submit()
            yield self._window.popleft()

    def close(self) -> None:
        """Stop reading (what is queued is dropped) and end the thread."""
        for pending in self._window:
            pending.content.cancel()
        self._window.clear()
        self._ex.shutdown(wait=True, cancel_futures=True)


class _Restore:
    def __init__(
        self,
        config: Config,
        manifest: Manifest,
        *,
        sink_config: SinkConfig,
        entries: list[TableEntry],
        patterns: Sequence[str],
        until: Until | None,
        parallel: int,
        batch_size: int,
        progress: Reporter,
        reader: _ChunkReader,
    ) -> None:
        self.config = config
        self.reader = reader
        self.manifest = manifest
        self.sink_config = sink_config
        self.entries = entries
        self.patterns = list(patterns)
        self.until = until
        self.parallel = max(1, parallel)
        self.batch_size = batch_size
        self.progress = progress
        self.key = restore_key(manifest.id)
        self.codec = EnvelopeCodec(config.topic_prefix, schemas=False)
        self.result = RestoreResult(manifest.id, [str(e.table) for e in entries])
        self._abort = threading.Event()
        self._lock = threading.Lock()
        self._tasks: dict[TableId, _TableTask] = {}
        self.loaders: dict[TableId, Any] = {}  # tables loaded natively (the connector's loader)
        self.decoders: dict[TableId, Callable[[bytes], list[dict[str, Any]]]] = {}  # other native tables

    def includes(self, table: TableId) -> bool:
        name = str(table)
        return any(fnmatchcase(name, p) for p in self.patterns)

    def new_sink(self) -> Sink:
        from cdc.pipeline import create_sink_for

        sink = create_sink_for(self.config, self.sink_config)
        sink.open()
        return sink

    # ------------------------------------------------------------------ phase 2: bulk load

    def prepare_native(self, sink: Sink) -> None:
        """For every table in a native encoding: its loader, when the target takes its chunks as they are
        (then prepared: an empty table may lose its primary key until :meth:`finish_native`), else its
        decoder. The tables must exist (the sink applied their definitions)."""
        for entry in self.entries:
            if entry.encoding == "jsonl" or not entry.chunks:
                continue
            module = backup_module(self.manifest.source)
            loader = module.native_loader(sink, entry)
            if loader is not None:
                loader.prepare(sink)
                self.loaders[entry.table] = loader
                self.result.native.append(str(entry.table))
            else:
                self.decoders[entry.table] = row_decoder(self.manifest.source, entry)

    def finish_native(self, sink: Sink) -> None:
        """Give the natively loaded tables back what :meth:`prepare_native` took (their primary keys)."""
        for loader in self.loaders.values():
            loader.finish(sink)

    def load(self) -> None:
        """Load every chunk of every table, ``parallel`` chunks at a time (one sink per thread).

        Chunks are taken biggest table first, in order; with two or more threads, the chunks of one
        table load side by side, so one thread converts rows while the target writes another's."""
        entries = load_order(self.entries)
        self._tasks = {
            entry.table: _TableTask(
                self.progress.start_task(f"load {entry.table}", entry.rows or None), len(entry.chunks)
            )
            for entry in entries
        }
        for entry in entries:
            if not entry.chunks:
                self.progress.finish(self._tasks[entry.table].task)
        threads = min(self.parallel, len(self.reader.work))
        queue = self.reader.chunks(max(1, threads))
        try:
            if threads <= 1:
                self._load_chunks(queue)
                return
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cdc-restore") as ex:
                futures = [ex.submit(self._load_chunks, queue) for _ in range(threads)]
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                failed = next((f for f in done if f.exception() is not None), None)
                if failed is not None:
                    self._abort.set()
                    wait(futures)
                    exc = failed.exception()
                    assert exc is not None
                    raise exc
        finally:
            queue.close()

    def _load_chunks(self, queue: Iterator[_Chunk]) -> None:
        """Take chunks off ``queue`` (shared by the threads) until it is empty; one sink for all of them."""
        sink = self.new_sink()
        applied: set[TableId] = set()
        try:
            while not self._abort.is_set():
                with self._lock:
                    item = next(queue, None)
                if item is None:
                    return
                entry, i = item.entry, item.index
                if entry.table not in applied:
                    sink.apply_schema(entry.schema(self.codec))
                    applied.add(entry.table)
                rows = self._load_chunk(sink, item)
                if rows is not None:
                    failpoints.hit("restore.after_chunk")
                with self._lock:
                    task = self._tasks[entry.table]
                    task.left -= 1
                    if rows is None:
                        self.result.skipped_chunks += 1
                    else:
                        self.result.loaded_rows += rows
                self.progress.advance(task.task, entry.chunks[i].rows)
                if task.left == 0:
                    self.progress.finish(task.task)
        finally:
            sink.close()

    def _load_chunk(self, sink: Sink, item: _Chunk) -> int | None:
        """Load chunk ``item`` with its done-marker in the same transaction; the rows loaded, or None when
        an earlier run had loaded it. A transient error (a deadlock, a lost connection) is retried: the
        chunk's transaction either happened whole or not at all."""
        manifest = self.manifest
        entry, i = item.entry, item.index
        where = f"backup {manifest.id}"
        key = _chunk_key(manifest.id, entry.table, i)
        if sink.applied(key) is not None:
            return None
        chunk = entry.chunks[i]
        content = item.content.result()  # the chunk's checks: BackupCorruptError
        offset = SourceOffset(manifest.position, "snapshot", {"chunk": i + 1, "chunks": len(entry.chunks)})
        loader = self.loaders.get(entry.table)
        fallback: Callable[[bytes], list[dict[str, Any]]] | None = None
        line_based = entry.encoding in LINE_ENCODINGS
        if loader is not None:
            # (rows that are not lines are counted by the target: the loader compares its count with the chunk's)
            text = ChunkCodec.lines_of(content, chunk, where) if line_based else content
            try:
                self._retry(lambda: loader.load(sink, key, offset, text, chunk.rows))
                return chunk.rows
            except TargetValueError as exc:
                if not getattr(loader, "refusals_convert", False):
                    raise
                # The target refused some values as they are (a zero date under a strict sql_mode): this
                # chunk goes through the source's converters instead, as a cross-engine restore does, so
                # zero_date_handling decides, and the sink's own checks apply.
                log.info("%s; loading chunk %d of %s through the sink's conversion instead", exc, i + 1, entry.table)
                fallback = row_decoder(manifest.source, entry)
                with self._lock:
                    if str(entry.table) in self.result.native:
                        self.result.native.remove(str(entry.table))  # not every row went in as stored
        source = {
            "connector": manifest.source,
            "snapshot": "true",
            "db": entry.table.schema,
            "table": entry.table.table,
        }
        paused = gc.isenabled()
        gc.disable()  # tens of thousands of acyclic events: spare the collector scanning them
        try:
            decoder = fallback or self.decoders.get(entry.table)
            rows = (
                ChunkCodec.rows_of(content, chunk, where)
                if decoder is None
                else decoder(ChunkCodec.lines_of(content, chunk, where) if line_based else content)
            )
            ChunkCodec.check_rows(len(rows), chunk, where)
            table, at, read = entry.table, manifest.snapshot_ms, Op.READ
            events = [ChangeEvent(read, table, None, None, row, source, at) for row in rows]
        finally:
            if paused:
                gc.enable()
        self._retry(lambda: sink.write_batch(key, events, offset=offset))
        return len(rows)

    def _retry(self, write: Callable[[], None]) -> None:
        """Run one chunk's transaction; a transient error (a deadlock, a lost connection) is tried again: the
        transaction either happened whole or not at all."""
        for attempt in range(CHUNK_ATTEMPTS):
            try:
                write()
                break
            except TransientError:
                if attempt == CHUNK_ATTEMPTS - 1 or self._abort.is_set():
                    raise
                time.sleep(0.2 * 2**attempt)

    # ------------------------------------------------------------------ phase 3: replay

    def replay(self, sink: Sink) -> None:
        _Replay(self, sink).run()


class _Replay:
    """The change topics from the backup's position to the cut, into one sink (see the module docstring)."""

    def __init__(self, restore: _Restore, sink: Sink) -> None:
        from cdc.backup.topics import ChangeTopics
        from cdc.config import KafkaBusConfig

        bus = restore.config.bus
        assert isinstance(bus, KafkaBusConfig)
        self.r = restore
        self.sink = sink
        self.settings: KafkaSettings = bus.to_settings()
        self.prefix = restore.config.topic_prefix
        self.topics = ChangeTopics(self.settings, self.prefix, client_id=f"cdc-restore-{restore.manifest.id}"[:200])
        self.factory = self.topics.factory
        self.backup_position = restore.manifest.position
        self.cut: Position | None = None
        self.cut_txn: str | None = None
        self._known: dict[TableId, frozenset[str]] = {}  # the columns of each table's definition applied last
        self._early: dict[TableId, list[SchemaChange]] = {}  # definitions placed before the backup's position

    # helpers ---------------------------------------------------------------------------------

    def _consumer(self) -> Consumer:
        return self.factory.consumer(
            group_id=None, read_committed=self.settings.exactly_once, max_poll_records=self.r.batch_size
        )

    def _scan(
        self,
        consumer: Consumer,
        starts: dict[TopicPartition, int],
        stops: dict[TopicPartition, int],
        handle: Callable[[list[Message]], None],
    ) -> None:
        """Hand every record in ``[starts[tp], stops[tp])`` to ``handle``, a poll's worth at a time, in
        order per partition. ``handle`` may lower ``stops`` for a partition it has seen enough of."""
        active = {tp for tp in starts if starts[tp] < stops[tp]}
        if not active:
            return
        consumer.assign(sorted(active))
        for tp in sorted(active):
            consumer.seek(tp, starts[tp])
        last_progress = time.monotonic()
        while active:
            messages = consumer.poll(self.r.batch_size, 0.5)
            kept = [
                m for m in messages if (m.topic, m.partition) in active and m.offset < stops[(m.topic, m.partition)]
            ]
            if messages:
                last_progress = time.monotonic()
            handle(kept)
            for tp in list(active):
                if consumer.position(tp) >= stops[tp]:
                    active.discard(tp)
            if time.monotonic() - last_progress > 120:
                raise ConnectionLostError(f"reading the change topics made no progress for 120 s ({len(active)} left)")

    def _decode(self, msg: Message) -> ChangeEvent | None:
        if msg.value is None:
            return None
        event = self.r.codec.decode(msg.key, msg.value)
        if event is None or not self.r.includes(event.table):
            return None
        if event.position is not None:
            order = REPLAY_POSITION.get(event.position.kind)
            if order is not None:
                event.position = order(event)
        if event.position is None:
            raise DecodeError(
                f"a change event in {msg.topic}[{msg.partition}] at offset {msg.offset} carries no source position "
                "that orders it (PostgreSQL: a transaction id '<xid>:<commit LSN>'), so it cannot be placed before "
                "or after the backup"
            )
        return event

    def _after_backup(self, position: Position) -> bool:
        try:
            return position > self.backup_position
        except TypeError as exc:
            raise BackupError(
                f"the change topics carry {position.kind} positions, the backup a {self.backup_position.kind} one: "
                "they are not of the same source"
            ) from exc

    # the run ---------------------------------------------------------------------------------

    def run(self) -> None:
        r = self.r
        tps = self.topics.partitions(r.includes)
        consumer = self._consumer()
        try:
            ends = consumer.end_offsets(tps) if tps else {}
            begins = consumer.beginning_offsets(tps) if tps else {}
            starts = self._starts(consumer, tps, begins, ends)
        finally:
            consumer.close()
        stops = dict(ends)
        until = r.until
        if until is not None and until.time_ms is not None:
            self._find_cut(starts, stops, until.time_ms)
            self._await_pipeline(self.cut, until.time_ms)
        elif until is not None and until.position is not None:
            self._await_pipeline(until.position, None)
        self._apply_schemas()
        self._apply(starts, stops)

    def _starts(
        self,
        consumer: Consumer,
        tps: list[TopicPartition],
        begins: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
    ) -> dict[TopicPartition, int]:
        from cdc.backup.topics import CLOCK_MARGIN_MS, partition_gap

        stored = self.sink.applied_partitions(self.r.key)
        lookup = self.r.manifest.started_ms - CLOCK_MARGIN_MS
        fresh = [tp for tp in tps if tp not in stored]
        found = consumer.offsets_for_times({tp: lookup for tp in fresh}) if fresh else {}
        starts: dict[TopicPartition, int] = {}
        for tp in tps:
            if tp in stored:
                if begins[tp] > stored[tp]:
                    raise PositionLostError(
                        f"{tp[0]}[{tp[1]}] no longer holds offset {stored[tp]}, where this restore stopped reading "
                        "(retention deleted it meanwhile)",
                        hint="restore into an empty target from a newer backup",
                    )
                starts[tp] = stored[tp]
            else:
                offset = found.get(tp)
                starts[tp] = ends[tp] if offset is None else offset
        suspect = [tp for tp in fresh if begins[tp] > 0 and starts[tp] <= begins[tp]]
        if suspect:
            firsts = self.topics.first_timestamps(suspect, begins)
            retention = self.topics.retention(sorted({t for t, _ in suspect}))
            now = _now_ms()
            for tp in suspect:
                problem = partition_gap(
                    tp, begins[tp], firsts.get(tp), retention=retention[tp[0]], since_ms=lookup, now_ms=now
                )
                if problem is not None:
                    raise PositionLostError(
                        f"the change topics no longer reach back to backup {self.r.manifest.id}: {problem}",
                        hint="restore from a newer backup, or keep the change topics longer (bus.topic_config "
                        "retention.ms)",
                    )
        return starts

    def _find_cut(self, starts: dict[TopicPartition, int], stops: dict[TopicPartition, int], until_ms: int) -> None:
        """Lower ``stops`` to each partition's first event after ``until_ms``; set the cut (earliest of them)."""
        firsts: dict[TopicPartition, ChangeEvent] = {}

        def handle(messages: list[Message]) -> None:
            for msg in messages:
                tp = (msg.topic, msg.partition)
                if tp in firsts or msg.offset >= stops[tp]:
                    continue
                event = self._decode(msg)
                if event is None or event.position is None or not self._after_backup(event.position):
                    continue
                if event.ts_ms > until_ms:
                    firsts[tp] = event
                    stops[tp] = msg.offset

        consumer = self._consumer()
        try:
            self._scan(consumer, starts, stops, handle)
        finally:
            consumer.close()
        if firsts:
            first = min(firsts.values(), key=lambda e: e.position.sort_key() if e.position else "")
            assert first.position is not None  # only events with a position are kept above
            self.cut = first.position
            self.cut_txn = first.txn_id
            when = datetime.fromtimestamp(first.ts_ms / 1000, UTC).isoformat()
            self.r.result.cut = f"before the transaction at {show_position(first.position)} (changed at {when})"

    def _await_pipeline(self, cut: Position | None, until_ms: int | None) -> None:
        """Wait until the pipeline has published everything before ``cut`` (or, with no cut, everything
        committed up to ``until_ms``); refuse after :data:`CATCH_UP_WAIT_S`."""
        deadline = time.monotonic() + CATCH_UP_WAIT_S
        while True:
            reached, why = self._pipeline_reached(cut, until_ms)
            if reached:
                return
            if time.monotonic() > deadline:
                raise BackupError(
                    f"the change topics do not reach the requested point yet: {why}",
                    hint="wait for the pipeline to catch up, or restore to an earlier point",
                )
            time.sleep(1.0)

    def _pipeline_reached(self, cut: Position | None, until_ms: int | None) -> tuple[bool, str]:
        from cdc.bus.kafka import KafkaOffsetStore

        stored = KafkaOffsetStore(self.factory).load(self.r.config.name)
        committed = stored.position if stored is not None and stored.phase == "streaming" else None
        if committed is None:
            return False, f"pipeline {self.r.config.name!r} has not stored a streaming position"
        try:
            if cut is not None:
                return (
                    committed >= cut,
                    f"the pipeline has published up to {show_position(committed)}, not yet {show_position(cut)}",
                )
        except TypeError:
            return False, f"the pipeline's position {show_position(committed)} is not of the backup's source"
        # no change after the time: a heartbeat after it, confirming a position already published, shows
        # that every change committed up to it is in the topics
        beat = self._last_heartbeat()
        if beat is not None and until_ms is not None:
            ts, position = beat
            if ts > until_ms and position is not None and committed >= position:
                return True, ""
        return False, "no change or heartbeat after that time has been published"

    def _last_heartbeat(self) -> tuple[int, Position | None] | None:
        import orjson

        from cdc.envelope import heartbeat_topic

        topic = heartbeat_topic(self.prefix)
        admin = self.factory.admin()
        try:
            parts = admin.partitions_for(topic)
        finally:
            admin.close()
        if not parts:
            return None
        tps = [(topic, p) for p in parts]
        consumer = self._consumer()
        newest: tuple[int, Position | None] | None = None
        try:
            ends = consumer.end_offsets(tps)
            begins = consumer.beginning_offsets(tps)
            starts = {tp: max(begins[tp], ends[tp] - 5) for tp in tps}

            def handle(messages: list[Message]) -> None:
                nonlocal newest
                for msg in messages:
                    if msg.value is None:
                        continue
                    try:
                        data = orjson.loads(msg.value)
                        offset = SourceOffset.from_dict(data["offset"]) if data.get("offset") else None
                        ts = int(data["ts_ms"])
                    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, DecodeError):
                        continue
                    if newest is None or ts > newest[0]:
                        newest = (ts, offset.position if offset is not None else None)

            self._scan(consumer, starts, dict(ends), handle)
        finally:
            consumer.close()
        return newest

    def _apply_schemas(self) -> None:
        """The definitions in force from the backup's position up to the cut: the backup's, then the
        schema history's changes after it (new tables, added columns), in order."""
        from cdc.bus.kafka import KafkaSchemaHistory

        history = KafkaSchemaHistory(self.factory, self.prefix, self.r.codec).load()
        for entry in self.r.entries:
            self._apply_schema(entry.schema(self.r.codec))
        until = self.r.until.position if self.r.until is not None else None
        for change in history:
            if not self.r.includes(change.schema.table) or change.position is None:
                continue
            try:
                if change.position < self.backup_position:
                    self._early.setdefault(change.schema.table, []).append(change)
                    continue
                if self.cut is not None and change.position >= self.cut:
                    continue
                if until is not None and change.position >= until:
                    continue
            except TypeError:
                continue
            self._apply_schema(change)

    def _apply_schema(self, change: SchemaChange) -> None:
        self.sink.apply_schema(change)
        self._known[change.schema.table] = frozenset(change.schema.column_names)

    def _catch_up(self, event: ChangeEvent) -> None:
        """Apply the definition a replayed row needs when the backup's does not have its columns.

        A PostgreSQL transaction can change a table (``ALTER TABLE … ADD COLUMN``) and write rows before
        the backup's consistent point and commit after it. Its rows are replayed (they are placed by
        their commit), but its definition is placed by the change that announced it, before the backup's
        position, and the backup's own definition (read in the snapshot, where that transaction had not
        committed) lacks the new columns. Such a row takes the latest earlier definition that has them."""
        table = event.table
        image = event.after if event.after is not None else event.before
        known = self._known.get(table)
        if image is None or known is None or image.keys() <= known:
            return
        for change in reversed(self._early.get(table, ())):
            if image.keys() <= frozenset(change.schema.column_names):
                self._apply_schema(change)
                return

    def _apply(self, starts: dict[TopicPartition, int], stops: dict[TopicPartition, int]) -> None:
        r = self.r
        until = r.until.position if r.until is not None else None
        cut, cut_txn = self.cut, self.cut_txn
        total = sum(max(0, stops[tp] - starts[tp]) for tp in starts)
        task = r.progress.start_task("replay changes", total or None)

        def keep(event: ChangeEvent) -> bool:
            position = event.position
            assert position is not None
            if not self._after_backup(position):
                return False
            if cut is not None and (position >= cut or (cut_txn is not None and event.txn_id == cut_txn)):
                return False
            return not (until is not None and position >= until)

        def handle(messages: list[Message]) -> None:
            events: list[ChangeEvent] = []
            offsets: dict[TopicPartition, int] = {}
            for msg in messages:
                offsets[(msg.topic, msg.partition)] = msg.offset + 1
                event = self._decode(msg)
                if event is not None and keep(event):
                    if self._early:
                        self._catch_up(event)
                    events.append(event)
            if offsets:
                self.sink.write_batch(r.key, events, partitions=offsets)
                r.result.replayed += len(events)
                r.progress.advance(task, len(messages))

        consumer = self._consumer()
        try:
            self._scan(consumer, starts, stops, handle)
        finally:
            consumer.close()
            r.progress.finish(task)
        if stops:
            self.sink.write_batch(r.key, [], partitions=stops)  # where a --follow, or a rerun, goes on


def restore(
    config: Config,
    backup_id: str,
    target: str,
    *,
    tables: Sequence[str] = (),
    until: Until | None = None,
    follow: bool = False,
    parallel: int = 2,
    batch_size: int = 5000,
    progress: Reporter = QUIET,
    stop: threading.Event | None = None,
) -> RestoreResult:
    """Restore backup ``backup_id`` (or ``latest``) of ``config``'s pipeline into ``target``.

    ``target`` is a SQLAlchemy URL, or ``sink:NAME`` for a configured sink's URL. ``tables`` are
    fnmatch patterns over ``db.table`` (default: every table of the backup, and tables created
    after it). ``until`` stops the replay (see the module docstring); ``follow`` keeps applying new
    changes until ``stop`` is set. Re-running a killed restore with the same arguments finishes it.

    Raises :class:`~cdc.errors.BackupCorruptError` for a tampered or damaged backup (before writing
    anything), :class:`~cdc.errors.BackupError` for a restore that cannot be done as asked,
    :class:`~cdc.errors.PositionLostError` when the change topics no longer reach back to the
    backup, :class:`~cdc.errors.ConfigError` for bad arguments, and the sink's errors.
    """
    from cdc.config import KafkaBusConfig

    cfg = backups_config(config)
    keys = keys_for(config)
    catalog = Catalog(cfg.destination, keys)
    path, manifest = catalog.load(backup_id)
    if manifest.pipeline != config.name or manifest.source != config.source.type:
        raise BackupError(
            f"backup {manifest.id} was taken by pipeline {manifest.pipeline!r} ({manifest.source}); this config is "
            f"pipeline {config.name!r} ({config.source.type})",
            hint="use the config of the pipeline that took it",
        )
    kafka = isinstance(config.bus, KafkaBusConfig)
    if follow and until is not None:
        raise ConfigError(["--follow and --until exclude each other: a restore to a point in time stops there"])
    if not kafka and ((until is not None and not until.at_backup) or follow):
        raise BackupError("replaying changes needs the Kafka bus (this pipeline uses bus.type direct)")
    if until is not None and until.time_ms is not None and until.time_ms < manifest.snapshot_ms:
        when = datetime.fromtimestamp(manifest.snapshot_ms / 1000, UTC).isoformat()
        raise BackupError(
            f"{until.text} is before backup {manifest.id} was taken ({when})", hint="choose an older backup"
        )
    if until is not None and until.position is not None:
        try:
            before = until.position < manifest.position
        except TypeError:
            raise BackupError(f"{until.text} is not a position of this source ({manifest.position.kind})") from None
        if before:
            raise BackupError(
                f"{until.text} is before backup {manifest.id}'s position {show_position(manifest.position)}"
            )
    patterns = list(tables) or ["*.*"]
    entries = [e for e in manifest.tables if any(fnmatchcase(str(e.table), p) for p in patterns)]
    if tables and not entries:
        raise BackupError(f"no table of backup {manifest.id} matches {', '.join(tables)}")
    sink_config = _sink_config(config, target, patterns, batch_size)
    # Every chunk's size and checksum are checked before anything is written. The reader's thread hashes
    # them (and then decompresses the first chunks) while this one imports the sink's driver stack.
    reader = _ChunkReader(catalog, path, manifest, entries)
    try:
        try:
            registry.load_sink(sink_config.connector)
        finally:
            reader.checked.result()
        job = _Restore(
            config,
            manifest,
            sink_config=sink_config,
            entries=entries,
            patterns=patterns,
            until=until,
            parallel=parallel,
            batch_size=batch_size,
            progress=progress,
            reader=reader,
        )
        replaying = kafka and not (until is not None and until.at_backup)
        job.result.replay = (
            "none" if not replaying else "time" if until and until.time_ms else "position" if until else "latest"
        )
        params = {"backup": manifest.id, "tables": patterns, "until": until.text if until is not None else None}
        control = job.new_sink()
        try:
            state = control.applied(job.key)
            if state is not None and state.extra.get("params") != params:
                raise BackupError(
                    f"the target already holds a restore of backup {manifest.id} with other arguments "
                    f"({state.extra.get('params')})",
                    hint="restore into an empty target (a finished restore can only be continued with --follow)",
                )

            def mark(phase: str) -> None:
                offset = SourceOffset(manifest.position, phase, extra={"params": params})
                control.write_batch(job.key, [], offset=offset)

            phase = state.phase if state is not None else None
            if phase is None:
                mark("restore:load")
                phase = "restore:load"
            if phase == "restore:load":
                for entry in entries:  # tables (and PostgreSQL schemas) created one at a time, before the threads
                    control.apply_schema(entry.schema(job.codec))
                job.prepare_native(control)
                job.load()
                job.finish_native(control)
                mark("restore:replay")
                phase = "restore:replay"
            if phase == "restore:replay":
                if replaying:
                    job.replay(control)
                mark("restore:done")
            else:
                job.result.already_done = True
            if follow:
                _follow(job, control, stop or threading.Event())
        finally:
            control.close()
        return job.result
    finally:
        reader.close()


def _follow(job: _Restore, sink: Sink, stop: threading.Event) -> None:
    from cdc.bus.consumer import KafkaSinkRunner
    from cdc.config import KafkaBusConfig

    bus = job.config.bus
    assert isinstance(bus, KafkaBusConfig)
    runner = KafkaSinkRunner(
        bus.to_settings(),
        job.key,
        job.config.topic_prefix,
        SINK_NAME,
        sink,
        includes=job.includes,
        on_error="fail",
        batch_size=job.batch_size,
    )
    runner.open()
    try:
        while not stop.is_set():
            job.result.replayed += runner.run_once(0.5)
    finally:
        runner.close()

"""Wiring and lifecycle of ``cdc run``: workers, supervision by error type, graceful shutdown.

A pipeline is a set of **workers**, each in its own thread:

* the source worker (``--only source``): the source connector feeding the bus. With the Kafka
  bus it publishes through :class:`~cdc.bus.kafka.KafkaPublisher` and acknowledges the source
  with the offset Kafka has acknowledged; with the direct bus it feeds the sinks in-process
  (:class:`~cdc.bus.direct.DirectBus`) and acknowledges what the targets committed.
* one sink worker per sink (``--only sink:NAME``, Kafka bus only): a
  :class:`~cdc.bus.consumer.KafkaSinkRunner` applying the change topics.

Supervision decides by error type, never by message text (:mod:`cdc.errors`):

* :class:`~cdc.errors.TransientError` (a lost connection, a broker timeout): the worker is torn
  down and started again from its stored position after a back-off that doubles from 1 s to
  30 s, and resets once the worker has run for a minute.
* :class:`~cdc.errors.TerminalError` and :class:`~cdc.errors.ConfigError` (a wrong password, a
  purged binlog, a dropped slot, a poison message under ``on_error: fail``): the whole pipeline
  stops and :meth:`Pipeline.run` raises that error; ``cdc run`` prints it as one paragraph and
  exits non-zero.
* Any other exception is a bug or an untranslated driver error: it is retried like a transient
  error up to :data:`MAX_UNEXPECTED` times in a row, then treated as terminal.

Shutdown (SIGTERM, SIGINT, or :meth:`Pipeline.stop`): each worker finishes the batch in hand,
flushes (the Kafka publisher waits for acknowledgements and stores the committed offset; the
direct bus commits the completed transactions) and closes. Positions are only ever recorded at
transaction boundaries, so a shutdown, like a crash, resumes exactly where it left off.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from cdc import registry
from cdc.errors import CdcError, ConfigError, TerminalError, TransientError
from cdc.events import ChangeEvent, Checkpoint, Heartbeat, Item, Op
from cdc.values import BinaryHandling

if TYPE_CHECKING:
    from cdc.bus.consumer import KafkaSinkRunner
    from cdc.bus.direct import DirectBus
    from cdc.bus.kafka import KafkaPublisher
    from cdc.config import Config, SinkConfig
    from cdc.connector import Sink, Source
    from cdc.metrics import Metrics
    from cdc.positions import SourceOffset

__all__ = ["MAX_UNEXPECTED", "Pipeline", "SinkWorker", "SourceWorker", "Worker", "create_sink_for"]

log = logging.getLogger("cdc.pipeline")

MAX_UNEXPECTED = 5
BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 60.0
SHUTDOWN_BUDGET_S = 9.0
#: The longest a source batches events before they are published: a bound on the latency
#: batching adds (more events per batch raise throughput; ``max_batch_events`` caps their number).
READ_BATCH_S = 0.02
_TEXT_BINARY = {BinaryHandling.BASE64, BinaryHandling.BASE64_URL_SAFE, BinaryHandling.HEX}


def create_sink_for(config: Config, sink_config: SinkConfig) -> Sink:
    """The sink connector for one ``sinks[]`` entry, told how the source encodes binary values."""
    factory = registry.load_sink(sink_config.connector)
    binary = BinaryHandling(config.source.binary_handling)
    kwargs: dict[str, Any] = {"pipeline": config.name}
    if binary in _TEXT_BINARY:
        kwargs["binary_handling"] = binary
    return factory(sink_config, **kwargs)


class Worker(ABC):
    """One supervised part of a pipeline.

    Contract: the supervisor calls :meth:`start` once per attempt, then :meth:`step` until the
    pipeline stops or an exception escapes. On a clean stop it calls :meth:`stop` (flush, record
    positions, close); after an exception it calls :meth:`abort` (release resources, record
    nothing: the next :meth:`start` resumes from the last recorded position). :meth:`step` must
    return within about a second so that a stop is noticed promptly.
    """

    component: str

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def step(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def abort(self) -> None: ...

    def status(self) -> dict[str, Any]:
        """What ``cdc status`` and the terminal show about this worker (cheap, any thread)."""
        return {}


class SourceWorker(Worker):
    """The source connector feeding the bus (Kafka, or the direct bus and its sinks)."""

    component = "source"

    def __init__(
        self,
        config: Config,
        metrics: Metrics | None = None,
        on_snapshot: Callable[[dict[str, Any] | None], None] | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.on_snapshot = on_snapshot
        self.source: Source | None = None
        self.publisher: KafkaPublisher | None = None
        self.bus: DirectBus | None = None
        self.sinks: list[Sink] = []
        self._acknowledged: SourceOffset | None = None
        self._phase = "starting"
        self._position: str | None = None
        self._snapshot_running = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        from cdc.config import KafkaBusConfig

        cfg = self.config
        history: Sequence[Any] = ()
        if isinstance(cfg.bus, KafkaBusConfig):
            from cdc.bus.kafka import KafkaPublisher

            self.publisher = KafkaPublisher(cfg.bus.to_settings(), cfg.name, cfg.topic_prefix)
            stored = self.publisher.open()
            history = self.publisher.history.load()
            self.publisher.learn_schemas(history)
        else:
            from cdc.bus.direct import DirectBus

            self.sinks = [create_sink_for(cfg, sc) for sc in cfg.sinks]
            for sink in self.sinks:
                sink.open()
            self.bus = DirectBus(cfg.name, self.sinks, cfg.bus.max_batch_events)
            stored = self.bus.open()
        factory = registry.load_source(cfg.source.type)
        self.source = factory(cfg.source, cfg.topic_prefix, history)
        self.source.open(stored)
        self._acknowledged = stored
        if stored is None:
            first = self.source.start_offset()
            if first is not None:  # a crash before the first checkpoint resumes here, never later
                if self.publisher is not None:
                    self.publisher.save_offset(first)
                else:
                    for sink in self.sinks:
                        sink.write_batch(cfg.name, [], offset=first)
                    assert self.bus is not None
                    self.bus.open()
        self._phase = "snapshot" if self.source.snapshot_progress() is not None else "streaming"

    def step(self) -> None:
        source = self.source
        assert source is not None
        items = source.read_batch(self.config.source.max_batch_events, READ_BATCH_S)
        if self.publisher is not None:
            self.publisher.publish(items) if items else self.publisher.pump()
            committed = self.publisher.committed
        else:
            assert self.bus is not None
            self.bus.publish(items)
            committed = self.bus.committed
        if committed is not None and committed is not self._acknowledged:
            source.acknowledge(committed)
            self._acknowledged = committed
        self._observe(items, source)

    def stop(self) -> None:
        try:
            committed: SourceOffset | None
            if self.publisher is not None:
                committed = self.publisher.flush(SHUTDOWN_BUDGET_S / 2)
            elif self.bus is not None:
                self.bus.flush()
                committed = self.bus.committed
            else:
                committed = None
            if committed is not None and self.source is not None and committed is not self._acknowledged:
                self.source.acknowledge(committed)
                self._acknowledged = committed
        finally:
            self.abort()

    def abort(self) -> None:
        for close in (
            self.source.close if self.source is not None else None,
            self.publisher.close if self.publisher is not None else None,
            *(s.close for s in self.sinks),
        ):
            if close is not None:
                with contextlib.suppress(Exception):
                    close()
        self.source = None
        self.publisher = None
        self.bus = None
        self.sinks = []
        if self._snapshot_running and self.metrics is not None:
            self.metrics.snapshot_running(False)
        self._snapshot_running = False

    # ------------------------------------------------------------------ observation

    def _observe(self, items: Sequence[Item], source: Source) -> None:
        metrics = self.metrics
        counts: Counter[tuple[str, str]] = Counter()
        latest_ts = 0
        transactions = 0
        for item in items:
            if isinstance(item, ChangeEvent):
                counts[(str(item.table), item.op.value)] += 1
                latest_ts = max(latest_ts, item.ts_ms)
            elif isinstance(item, Checkpoint):
                transactions += 1
                if item.offset.phase == "streaming":
                    self._phase = "streaming"
                self._position = str(item.offset.position) if item.offset.position is not None else None
            elif isinstance(item, Heartbeat) and item.offset is not None and item.offset.position is not None:
                self._position = str(item.offset.position)
        progress = source.snapshot_progress() if self._phase != "streaming" else None
        if progress is not None:
            self._phase = "snapshot"
        if self.on_snapshot is not None and (progress is not None or self._snapshot_running):
            self.on_snapshot(progress)
        if metrics is None:
            self._snapshot_running = progress is not None
            return
        if (progress is not None) != self._snapshot_running:
            self._snapshot_running = progress is not None
            metrics.snapshot_running(self._snapshot_running)
        for (table, op), n in counts.items():
            if op == Op.READ.value:
                metrics.snapshot_rows(table, n)
            metrics.source_events(table, op, n)
        if progress is not None:
            for table, estimate in (progress.get("estimates") or {}).items():
                metrics.snapshot_estimate(table, int(estimate))
        if transactions:
            metrics.source_transactions(transactions)
        if latest_ts:
            metrics.source_lag(max(0.0, time.time() - latest_ts / 1000))
        elif any(isinstance(i, Heartbeat) for i in items):
            metrics.source_lag(0.0)

    def status(self) -> dict[str, Any]:
        return {"phase": self._phase, "position": self._position}


class SinkWorker(Worker):
    """One sink applying the pipeline's Kafka topics (``cdc run --only sink:NAME``)."""

    def __init__(
        self, config: Config, sink_config: SinkConfig, metrics: Metrics | None = None, instance: str | None = None
    ) -> None:
        self.config = config
        self.sink_config = sink_config
        self.metrics = metrics
        self.instance = instance
        self.component = f"sink:{sink_config.name}"
        self.runner: KafkaSinkRunner | None = None
        self._seen_applied = 0
        self._seen_dead = 0
        self._seen_by: dict[tuple[str, str], int] = {}
        self._last_lag_check = 0.0
        self.lag_events: int | None = None
        self.lag_seconds: float | None = None

    def start(self) -> None:
        from cdc.bus.consumer import KafkaSinkRunner
        from cdc.config import KafkaBusConfig

        cfg, sc = self.config, self.sink_config
        if not isinstance(cfg.bus, KafkaBusConfig):
            raise ConfigError([f"sinks[{sc.name}]: a separate sink worker needs bus.type: kafka"])
        sink = create_sink_for(cfg, sc)
        self.runner = KafkaSinkRunner(
            cfg.bus.to_settings(),
            cfg.name,
            cfg.topic_prefix,
            sc.name,
            sink,
            includes=lambda table: sc.includes(str(table)),
            on_error=sc.on_error,
            dead_letter_topic=sc.dead_letter_topic,
            batch_size=sc.batch_size,
            instance=self.instance,
        )
        self._seen_applied = self._seen_dead = 0
        self._seen_by = {}
        self.runner.open()

    def step(self) -> None:
        runner = self.runner
        assert runner is not None
        started = time.monotonic()
        applied = runner.run_once(0.5)
        now = time.monotonic()
        metrics = self.metrics
        name = self.sink_config.name
        st = runner.stats
        if metrics is not None:
            if applied:
                metrics.sink_batch(name, now - started)
            for key, total in st.by_table_op.items():
                delta = total - self._seen_by.get(key, 0)
                if delta:
                    metrics.sink_applied(name, key[0], key[1], delta)
                    self._seen_by[key] = total
            for _ in range(st.dead_lettered - self._seen_dead):
                metrics.dead_letter(name)
        self._seen_dead = st.dead_lettered
        if applied == 0 or now - self._last_lag_check >= 1.0:
            self._last_lag_check = now
            behind = runner.lag_events()
            self.lag_events = behind
            if behind == 0:
                self.lag_seconds = 0.0
            elif st.last_commit_ts_ms:
                self.lag_seconds = max(0.0, time.time() - st.last_commit_ts_ms / 1000)
            if metrics is not None and behind is not None:
                metrics.sink_lag(name, self.lag_seconds, behind)

    def stop(self) -> None:
        self.abort()

    def abort(self) -> None:
        if self.runner is not None:
            with contextlib.suppress(Exception):
                self.runner.close()
        self.runner = None

    def status(self) -> dict[str, Any]:
        return {"lag_events": self.lag_events, "lag_seconds": self.lag_seconds}


class _Supervised(threading.Thread):
    def __init__(self, worker: Worker, pipeline: Pipeline) -> None:
        super().__init__(name=f"cdc-{worker.component}", daemon=True)
        self.worker = worker
        self.pipeline = pipeline
        self.stopping = pipeline._stop  # one event: a stop or a failure anywhere stops every worker

    def run(self) -> None:
        worker, metrics, stopping = self.worker, self.pipeline.metrics, self.stopping
        delay = BACKOFF_START_S
        unexpected = 0
        while not stopping.is_set():
            started = time.monotonic()
            try:
                worker.start()
                # Modules, clients and definitions loaded by start() live as long as the process:
                # out of the collector's way, a full collection does not walk them again and again.
                gc.freeze()
                if metrics is not None:
                    metrics.up(worker.component, True)
                while not stopping.is_set():
                    worker.step()
                    if time.monotonic() - started > STABLE_AFTER_S:
                        delay, unexpected = BACKOFF_START_S, 0
                worker.stop()
                return
            except (TerminalError, ConfigError) as exc:
                self._failed(exc)
                worker.abort()
                self.pipeline.fail(exc)
                return
            except TransientError as exc:
                self._failed(exc)
                worker.abort()
                log.warning("%s: %s; retrying in %.0f s", worker.component, exc, delay)
            except Exception as exc:
                self._failed(exc)
                worker.abort()
                unexpected += 1
                if unexpected >= MAX_UNEXPECTED:
                    self.pipeline.fail(
                        TerminalError(
                            f"{worker.component} failed {unexpected} times in a row with an unexpected "
                            f"{type(exc).__name__}: {exc}",
                            hint="run with --debug for the traceback",
                        ),
                        cause=exc,
                    )
                    return
                log.warning(
                    "%s: unexpected %s: %s; retrying in %.0f s",
                    worker.component,
                    type(exc).__name__,
                    exc,
                    delay,
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
            if stopping.wait(delay):
                return
            delay = min(delay * 2, BACKOFF_MAX_S)

    def _failed(self, exc: BaseException) -> None:
        metrics = self.pipeline.metrics
        if metrics is not None:
            metrics.up(self.worker.component, False)
            metrics.error(self.worker.component, type(exc).__name__)


class Pipeline:
    """The workers of one config, supervised. See the module docstring.

    Contract: :meth:`run` blocks until :meth:`stop` is called (then it returns after a graceful
    shutdown, within about :data:`SHUTDOWN_BUDGET_S` seconds) or until a worker fails terminally
    (then it stops the others and raises that error). ``only`` is ``None`` (everything),
    ``"source"`` or ``"sink:NAME"``. ``instance`` (``cdc run --instance``) makes each sink's consumer a
    static member of its group, named ``<instance>.<sink>``.
    """

    def __init__(
        self,
        config: Config,
        *,
        only: str | None = None,
        metrics: Metrics | None = None,
        on_snapshot: Callable[[dict[str, Any] | None], None] | None = None,
        instance: str | None = None,
    ) -> None:
        from cdc.config import KafkaBusConfig

        self.config = config
        self.metrics = metrics
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._cause: BaseException | None = None
        self._lock = threading.Lock()
        kafka = isinstance(config.bus, KafkaBusConfig)
        if only is not None and only != "source" and not only.startswith("sink:"):
            raise ConfigError([f"--only {only!r}: expected 'source' or 'sink:NAME'"])
        if only is not None and only != "source" and not kafka:
            raise ConfigError(
                [f"--only {only}: with bus.type: direct the sinks run inside the source; use --only source"]
            )
        workers: list[Worker] = []
        if only is None or only == "source":
            workers.append(SourceWorker(config, metrics, on_snapshot))
        if kafka:
            names = [s.name for s in config.sinks]
            if only is not None and only.startswith("sink:"):
                wanted = only.split(":", 1)[1]
                if wanted not in names:
                    known = ", ".join(names) or "none"
                    raise ConfigError([f"--only {only}: no sink named {wanted!r} in the config (sinks: {known})"])
                names = [wanted]
            elif only is not None:
                names = []
            workers.extend(SinkWorker(config, config.sink(n), metrics, instance) for n in names)
        self.workers = workers

    def stop(self) -> None:
        """Ask every worker to finish its batch, record its position and close (any thread, signal-safe)."""
        self._stop.set()

    def fail(self, error: BaseException, cause: BaseException | None = None) -> None:
        with self._lock:
            if self._error is None:
                self._error, self._cause = error, cause
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def status(self) -> dict[str, dict[str, Any]]:
        return {w.component: w.status() for w in self.workers}

    def run(self) -> None:
        threads = [_Supervised(w, self) for w in self.workers]
        for t in threads:
            t.start()
        try:
            while not self._stop.wait(0.5):
                if not any(t.is_alive() for t in threads):
                    break
        finally:
            for t in threads:
                t.stopping.set()
            deadline = time.monotonic() + SHUTDOWN_BUDGET_S
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))
            stuck = [t.worker.component for t in threads if t.is_alive()]
            if stuck:
                log.warning("shutdown: %s did not stop in time; its position stays at the last record", stuck)
        if self._error is not None:
            if isinstance(self._error, CdcError):
                raise self._error from self._cause
            raise TerminalError(str(self._error)) from self._error

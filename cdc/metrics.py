"""Prometheus metrics of one cdc process, and their HTTP endpoint.

One :class:`Metrics` object per process (tests may create several: each has its own
``CollectorRegistry``). Every series carries the ``pipeline`` label; the other labels are
low-cardinality by construction: table names, sink names, operation codes (``c u d r t``),
component names (``source``, ``bus``, ``sink:NAME``) and error class names. No row value, URL
or secret is ever a label: every label value passes through :func:`cdc.errors.redact` once,
when its series is created.

The exposed names (see :func:`metric_names`)::

    cdc_build_info{pipeline,version}                         1
    cdc_source_events_total{pipeline,table,op}                 events captured
    cdc_source_transactions_total{pipeline}                    source transactions captured
    cdc_source_lag_seconds{pipeline}                           commit time -> capture time, latest event
    cdc_snapshot_running{pipeline}                             1 while a snapshot runs
    cdc_snapshot_rows_total{pipeline,table}                    rows read by snapshots
    cdc_snapshot_rows_estimate{pipeline,table}                 the server's row estimate per table
    cdc_sink_applied_total{pipeline,sink,table,op}             events applied to the target
    cdc_sink_lag_seconds{pipeline,sink}                        commit time -> apply time (0 when caught up)
    cdc_sink_lag_events{pipeline,sink}                         events published but not yet applied
    cdc_sink_batch_seconds{pipeline,sink}                      histogram: time to apply one batch
    cdc_sink_last_applied_timestamp_seconds{pipeline,sink}     wall clock of the last applied batch
    cdc_dead_letters_total{pipeline,sink}                      events set aside as undeliverable
    cdc_errors_total{pipeline,component,kind}                  errors by component and error class
    cdc_up{pipeline,component}                                 1 while a component runs, 0 after it failed
    cdc_backups_total{pipeline}                                backups completed
    cdc_backup_last_success_timestamp_seconds{pipeline}        when the last backup finished
    cdc_backup_size_bytes{pipeline}                            size of the last backup
    cdc_backup_duration_seconds{pipeline}                      duration of the last backup

plus the standard ``process_*`` and ``python_info`` series.

Hot-path calls are cheap: a labelled child is looked up once and cached by its label values,
so a call costs one dict lookup and one locked add. The pipeline calls :meth:`Metrics.source_events`
once per batch and (table, op), not per event.
"""

from __future__ import annotations

import errno
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase

from cdc import __version__
from cdc.errors import ConfigError, ListenError, redact

__all__ = ["Metrics", "MetricsServer", "metric_names", "parse_listen"]

# ``*_created`` series double the number of series and no dashboard uses them.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

_LISTEN = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):(?P<port>\d{1,5})")
_KIND = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,79}")
_MAX_LABEL = 200
_BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _label(value: str) -> str:
    """A label value as exposed: secrets redacted, bounded in length."""
    text = redact(str(value))
    return text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 3] + "..."


def parse_listen(listen: str) -> tuple[str, int]:
    """``"host:port"`` (IPv6 as ``"[::1]:9108"``) → ``(host, port)``; raises :class:`ConfigError`."""
    match = _LISTEN.fullmatch(listen.strip())
    if match is None or int(match["port"]) > 65535:
        raise ConfigError([f"metrics.listen: must be host:port, e.g. 127.0.0.1:9108 (got {listen!r})"])
    return match["host"].strip("[]"), int(match["port"])


@dataclass
class MetricsServer:
    """A running ``/metrics`` endpoint. ``close()`` stops it and frees the port; it is idempotent."""

    host: str
    port: int
    _server: WSGIServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def url(self) -> str:
        """``http://host:port/metrics`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving, close the socket and wait for the serving thread (at most 5 s)."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class Metrics:
    """The metrics of one pipeline process, in a registry of its own.

    Every method is thread-safe, never raises for a valid argument and never blocks on I/O;
    callers may call them from any worker thread.
    """

    def __init__(self, pipeline: str, registry: CollectorRegistry | None = None) -> None:
        self.pipeline = _label(pipeline)
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        p = ("pipeline",)
        self._build_info = Gauge("cdc_build_info", "cdc build; always 1.", [*p, "version"], registry=reg)
        self._source_events = Counter(
            "cdc_source_events", "Change events captured from the source.", [*p, "table", "op"], registry=reg
        )
        self._source_transactions = Counter(
            "cdc_source_transactions", "Source transactions captured (one per commit).", p, registry=reg
        )
        self._source_lag = Gauge(
            "cdc_source_lag_seconds", "Source commit time to capture time, for the latest event.", p, registry=reg
        )
        self._snapshot_running = Gauge("cdc_snapshot_running", "1 while a snapshot runs, else 0.", p, registry=reg)
        self._snapshot_rows = Counter(
            "cdc_snapshot_rows", "Rows read by snapshots, per table.", [*p, "table"], registry=reg
        )
        self._snapshot_estimate = Gauge(
            "cdc_snapshot_rows_estimate",
            "The source server's estimate of a table's rows when its snapshot began.",
            [*p, "table"],
            registry=reg,
        )
        self._sink_applied = Counter(
            "cdc_sink_applied", "Change events applied to the target.", [*p, "sink", "table", "op"], registry=reg
        )
        self._sink_lag_seconds = Gauge(
            "cdc_sink_lag_seconds",
            "Source commit time to apply time; 0 once the sink has caught up.",
            [*p, "sink"],
            registry=reg,
        )
        self._sink_lag_events = Gauge(
            "cdc_sink_lag_events", "Events published but not yet applied by the sink.", [*p, "sink"], registry=reg
        )
        self._sink_batch = Histogram(
            "cdc_sink_batch_seconds",
            "Time to apply one batch to the target.",
            [*p, "sink"],
            buckets=_BATCH_BUCKETS,
            registry=reg,
        )
        self._sink_last_applied = Gauge(
            "cdc_sink_last_applied_timestamp_seconds",
            "Unix time at which the sink last applied events.",
            [*p, "sink"],
            registry=reg,
        )
        self._dead_letters = Counter(
            "cdc_dead_letters", "Events the sink set aside as undeliverable.", [*p, "sink"], registry=reg
        )
        self._errors = Counter(
            "cdc_errors", "Errors by component and error class.", [*p, "component", "kind"], registry=reg
        )
        self._up = Gauge(
            "cdc_up", "1 while a component runs, 0 after it stopped on an error.", [*p, "component"], registry=reg
        )
        self._backups = Counter("cdc_backups", "Backups completed.", p, registry=reg)
        self._backup_last = Gauge(
            "cdc_backup_last_success_timestamp_seconds", "Unix time the last backup finished.", p, registry=reg
        )
        self._backup_size = Gauge("cdc_backup_size_bytes", "Size of the last backup.", p, registry=reg)
        self._backup_duration = Gauge("cdc_backup_duration_seconds", "Duration of the last backup.", p, registry=reg)
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)

        self._children: dict[tuple[Any, ...], Any] = {}
        self._sinks: set[str] = set()
        self._lock = threading.Lock()
        self._build_info.labels(self.pipeline, __version__).set(1)
        # series that exist from the start, so that dashboards and alerts see them at once
        self._source_transactions.labels(self.pipeline)
        self._snapshot_running.labels(self.pipeline).set(0)
        self._backups.labels(self.pipeline)

    # ------------------------------------------------------------------ children

    def _child(self, metric: MetricWrapperBase, *values: str) -> Any:
        key = (id(metric), *values)
        child = self._children.get(key)
        if child is None:
            with self._lock:
                child = self._children.get(key)
                if child is None:
                    child = metric.labels(self.pipeline, *(_label(v) for v in values))
                    self._children[key] = child
        return child

    # ------------------------------------------------------------------ source

    def source_events(self, table: str, op: str, n: int = 1) -> None:
        """Count ``n`` captured events of ``table`` (``db.table`` / ``schema.table``) with operation ``op``."""
        if n:
            self._child(self._source_events, table, op).inc(n)

    def source_transactions(self, n: int = 1) -> None:
        """Count ``n`` captured source transactions."""
        if n:
            self._child(self._source_transactions).inc(n)

    def source_lag(self, seconds: float) -> None:
        """Set the capture lag of the latest event (negative clock skew reads as 0)."""
        self._child(self._source_lag).set(max(0.0, seconds))

    def snapshot_running(self, running: bool) -> None:
        """Set whether a snapshot is running now."""
        self._child(self._snapshot_running).set(1 if running else 0)

    def snapshot_rows(self, table: str, n: int) -> None:
        """Count ``n`` rows read by the snapshot of ``table``."""
        if n:
            self._child(self._snapshot_rows, table).inc(n)

    def snapshot_estimate(self, table: str, rows: int) -> None:
        """Record the server's row estimate of ``table`` (for progress: rows_total / estimate)."""
        self._child(self._snapshot_estimate, table).set(max(0, rows))

    # ------------------------------------------------------------------ sinks

    def _sink_seen(self, sink: str) -> None:
        """Create a sink's dead-letter counter at 0 when the sink is first reported, so that an alert
        on its increase sees the first dead letter too."""
        if sink not in self._sinks:
            self._sinks.add(sink)
            self._child(self._dead_letters, sink)

    def sink_applied(self, sink: str, table: str, op: str, n: int = 1) -> None:
        """Count ``n`` events of ``table``/``op`` applied by ``sink``; stamps the sink's last-applied time."""
        self._sink_seen(sink)
        if n:
            self._child(self._sink_applied, sink, table, op).inc(n)
            self._child(self._sink_last_applied, sink).set(time.time())

    def sink_lag(self, sink: str, seconds: float | None = None, events: int | None = None) -> None:
        """Set the lag of ``sink`` in seconds and/or events; an argument left ``None`` is left as it was."""
        self._sink_seen(sink)
        if seconds is not None:
            self._child(self._sink_lag_seconds, sink).set(max(0.0, seconds))
        if events is not None:
            self._child(self._sink_lag_events, sink).set(max(0, events))

    def sink_batch(self, sink: str, seconds: float) -> None:
        """Observe the time ``sink`` took to apply one batch."""
        self._sink_seen(sink)
        self._child(self._sink_batch, sink).observe(max(0.0, seconds))

    def dead_letter(self, sink: str) -> None:
        """Count one event that ``sink`` set aside as undeliverable."""
        self._child(self._dead_letters, sink).inc()

    # ------------------------------------------------------------------ health

    def error(self, component: str, kind: str) -> None:
        """Count one error of class ``kind`` (e.g. ``"ConnectionLostError"``) in ``component``.

        A ``kind`` that is not a class-like name is counted as ``"other"``, so that a message
        can never become a label.
        """
        if _KIND.fullmatch(kind) is None:
            kind = "other"
        self._child(self._errors, component, kind).inc()

    def up(self, component: str, value: bool) -> None:
        """Set whether ``component`` (``"source"``, ``"bus"``, ``"sink:NAME"``) is running."""
        if component.startswith("sink:"):
            self._sink_seen(component[5:])
        self._child(self._up, component).set(1 if value else 0)

    # ------------------------------------------------------------------ backups

    def backup_done(self, size_bytes: int, duration_s: float, finished_at: float) -> None:
        """Record a completed backup: its size, its duration and its finish time (Unix seconds)."""
        self._child(self._backups).inc()
        self._child(self._backup_size).set(max(0, size_bytes))
        self._child(self._backup_duration).set(max(0.0, duration_s))
        self._child(self._backup_last).set(finished_at)

    # ------------------------------------------------------------------ exposition

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry, as served at ``/metrics``."""
        return generate_latest(self.registry)

    def serve(self, listen: str) -> MetricsServer:
        """Serve ``/metrics`` on ``listen`` (``"host:port"``) from a daemon thread; return the server.

        Binds exactly the given host (``0.0.0.0`` only when configured so); port 0 picks a free
        port, which the returned server's ``port`` tells. Raises :class:`ListenError` when the
        port is in use, the address is not local or needs privileges, and :class:`ConfigError`
        when ``listen`` is not ``host:port``.
        """
        host, port = parse_listen(listen)
        try:
            server, thread = prometheus_client.start_http_server(port, addr=host, registry=self.registry)
        except socket.gaierror as exc:
            raise ListenError(
                f"metrics.listen: cannot resolve the host {host!r}",
                hint="Use an address of this machine, e.g. 127.0.0.1:9108.",
            ) from exc
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                why = "the port is already in use by another process"
                hint = "Stop that process, or set metrics.listen to another port (port 0 picks a free one)."
            elif exc.errno == errno.EADDRNOTAVAIL:
                why = "the address does not belong to this machine"
                hint = "Use an address of this machine, e.g. 127.0.0.1:9108."
            elif exc.errno == errno.EACCES:
                why = "permission denied (ports below 1024 need privileges)"
                hint = "Use a port above 1023."
            else:
                why = exc.strerror or type(exc).__name__
                hint = None
            raise ListenError(f"metrics.listen: cannot listen on {listen.strip()}: {why}", hint=hint) from exc
        bound_host, bound_port = server.server_address[:2]
        return MetricsServer(host=str(bound_host), port=int(bound_port), _server=server, _thread=thread)


def metric_names() -> frozenset[str]:
    """Every sample name that :class:`Metrics` exposes under ``cdc_`` (counters with ``_total``,
    histograms with ``_bucket``, ``_sum`` and ``_count``): what dashboards and alert rules may use."""
    names: set[str] = set()
    for family in Metrics("names").registry.collect():
        if not family.name.startswith("cdc_"):
            continue
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return frozenset(names)

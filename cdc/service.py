"""What ``cdc check``, ``cdc status`` and ``cdc verify`` do, apart from printing.

Both work on a stopped pipeline as well as on a running one: they read what the pipeline
stored (the source offset in Kafka or in the targets, the sinks' applied positions in their
targets) and ask the servers, and never change anything.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from cdc import registry
from cdc.connector import Problem
from cdc.errors import CdcError, ConfigError, redact

if TYPE_CHECKING:
    from cdc.config import Config, SinkConfig
    from cdc.connector import Sink, Source
    from cdc.positions import SourceOffset
    from cdc.verify import VerifyReport

__all__ = ["check", "status", "verify_config"]


def _guard(component: str, problems: list[Problem], action: Callable[[], list[Problem] | None]) -> None:
    """Run one check; any error it raises becomes a problem of ``component`` (never a traceback)."""
    try:
        found = action()
    except CdcError as exc:
        problems.append(Problem(component, str(exc)))
    except Exception as exc:  # noqa: BLE001 - an untranslated driver error is still a problem to report
        problems.append(Problem(component, f"unexpected {type(exc).__name__}: {redact(str(exc))}"))
    else:
        problems.extend(found or [])


def check(config_path: Path, env: dict[str, str] | None = None) -> tuple[Config | None, list[Problem]]:
    """Every problem that would stop ``cdc run -c config_path``: the config, then (if it is valid)
    the source, the bus and every sink. Never raises for an expected problem."""
    from cdc.config import KafkaBusConfig, load_config

    try:
        config = load_config(config_path, env=env)
    except ConfigError as exc:
        return None, [Problem("config", p) for p in exc.problems]
    problems: list[Problem] = []
    source: Source | None = None

    def source_checks() -> list[Problem]:
        nonlocal source
        source = registry.load_source(config.source.type)(config.source, config.topic_prefix, ())
        return source.check()

    _guard("source", problems, source_checks)
    stored: SourceOffset | None = None
    if isinstance(config.bus, KafkaBusConfig):
        bus = config.bus

        def bus_checks() -> list[Problem]:
            nonlocal stored
            from cdc.bus.kafka import KafkaOffsetStore, client_factory

            factory = client_factory(bus.to_settings(), client_id=f"cdc-check-{config.name}")
            admin = factory.admin()
            try:
                admin.list_topics()
            finally:
                admin.close()
            stored = KafkaOffsetStore(factory).load(config.name)
            return []

        _guard("bus", problems, bus_checks)
    for sc in config.sinks:
        component = f"sink:{sc.name}"
        sink: Sink | None = None

        def sink_checks(sc: SinkConfig = sc) -> list[Problem]:
            nonlocal sink, stored
            from cdc.pipeline import create_sink_for

            sink = create_sink_for(config, sc)
            found = sink.check()
            if not found and not isinstance(config.bus, KafkaBusConfig):
                applied = sink.applied(config.name)
                if applied is not None and (stored is None or applied.order_key() < stored.order_key()):
                    stored = applied
            return found

        _guard(component, problems, sink_checks)
        if sink is not None:
            with contextlib.suppress(Exception):
                sink.close()
    if source is not None and stored is not None and not any(p.component == "source" for p in problems):
        src = source
        offset = stored
        _guard("source", problems, lambda: src.check_position(offset))
    return config, problems


def status(config: Config) -> dict[str, Any]:
    """The source's stored position and phase, the source server's own facts (e.g. WAL retained),
    and for every sink its applied position and lag in events and seconds."""
    from cdc.config import KafkaBusConfig

    out: dict[str, Any] = {"pipeline": config.name, "source": {}, "sinks": {}}
    source_info: dict[str, Any] = out["source"]
    try:
        source = registry.load_source(config.source.type)(config.source, config.topic_prefix, ())
        source_info.update(source.status())
    except CdcError as exc:
        source_info["error"] = str(exc)
    if isinstance(config.bus, KafkaBusConfig):
        _kafka_status(config, config.bus, out)
    else:
        _direct_status(config, out)
    return out


def _offset_view(offset: SourceOffset | None) -> dict[str, Any]:
    if offset is None:
        return {"phase": "not started", "position": None}
    view: dict[str, Any] = {
        "phase": offset.phase,
        "position": str(offset.position) if offset.position is not None else None,
    }
    if offset.phase == "snapshot":
        view["snapshot"] = {k: offset.snapshot.get(k) for k in ("table", "rows", "chunk")}
    return view


def _direct_status(config: Config, out: dict[str, Any]) -> None:
    from cdc.pipeline import create_sink_for

    lowest: SourceOffset | None = None
    for sc in config.sinks:
        info: dict[str, Any] = {}
        try:
            sink = create_sink_for(config, sc)
            try:
                applied = sink.applied(config.name)
            finally:
                sink.close()
            info.update(_offset_view(applied))
            if applied is not None and (lowest is None or applied.order_key() < lowest.order_key()):
                lowest = applied
        except CdcError as exc:
            info["error"] = str(exc)
        out["sinks"][sc.name] = info
    out["source"].update(_offset_view(lowest))


def _kafka_status(config: Config, bus: Any, out: dict[str, Any]) -> None:
    from cdc.bus.kafka import KafkaOffsetStore, client_factory
    from cdc.pipeline import create_sink_for

    settings = bus.to_settings()
    factory = client_factory(settings, client_id=f"cdc-status-{config.name}")
    try:
        out["source"].update(_offset_view(KafkaOffsetStore(factory).load(config.name)))
    except CdcError as exc:
        out["source"]["error"] = str(exc)
        return
    prefix = config.topic_prefix
    admin = factory.admin()
    try:
        topics = sorted(t for t in admin.list_topics() if t.startswith(prefix + "."))
        partitions = [(t, p) for t in topics for p in admin.partitions_for(t)]
    finally:
        admin.close()
    reader = factory.consumer(group_id=None, read_committed=settings.exactly_once)
    try:
        ends = reader.end_offsets(partitions) if partitions else {}
        for sc in config.sinks:
            info: dict[str, Any] = {}
            try:
                sink = create_sink_for(config, sc)
                try:
                    applied = sink.applied_partitions(config.name)
                finally:
                    sink.close()
            except CdcError as exc:
                out["sinks"][sc.name] = {"error": str(exc)}
                continue
            behind = {tp: end - applied.get(tp, 0) for tp, end in ends.items() if end > applied.get(tp, 0)}
            info["lag_events"] = sum(behind.values())
            info["partitions"] = len(applied)
            info["lag_seconds"] = 0.0 if not behind else _oldest_unapplied_age(reader, applied, behind)
            out["sinks"][sc.name] = info
    finally:
        reader.close()


def _oldest_unapplied_age(reader: Any, applied: dict[Any, int], behind: dict[Any, int]) -> float | None:
    """Seconds since the source committed the oldest change a sink has not applied yet."""
    oldest: int | None = None
    tps = list(behind)
    reader.assign(tps)
    for tp in tps:
        reader.seek(tp, applied.get(tp, 0))
    pending = set(tps)
    deadline = time.monotonic() + 10
    while pending and time.monotonic() < deadline:
        for msg in reader.poll(500, 0.5):
            tp = (msg.topic, msg.partition)
            if tp not in pending or msg.value is None:
                continue
            pending.discard(tp)
            with contextlib.suppress(Exception):
                ts = orjson.loads(msg.value)
                ts = ts.get("payload", ts) if isinstance(ts, dict) else None
                source_ts = (ts or {}).get("source", {}).get("ts_ms")
                if isinstance(source_ts, int) and (oldest is None or source_ts < oldest):
                    oldest = source_ts
    return None if oldest is None else max(0.0, time.time() - oldest / 1000)


# ---------------------------------------------------------------------------------------------
# cdc verify
# ---------------------------------------------------------------------------------------------


def verify_config(config: Config, sink_names: Sequence[str], *, reads: int = 3) -> dict[str, VerifyReport]:
    """Compare the source's captured tables with each named sink's target tables (``cdc verify``).

    Every sink's connector does the reading, in its package's ``verify`` module
    (``verify_sink(config, sink_config, progress=...)``, e.g. :mod:`connectors.sql.verify`);
    the comparison itself is :mod:`cdc.verify`. Returns one
    :class:`~cdc.verify.VerifyReport` per sink, in the order given: differences are results,
    not errors. Raises :class:`~cdc.errors.ConfigError` for an unknown sink name or a connector
    without ``verify``, :class:`~cdc.errors.ConnectError` when the source or a target cannot be
    reached, and other :class:`~cdc.errors.CdcError` types when reading fails.

    Reads a moment of each table without locking anything. On a live pipeline a row changed
    just now may not have reached the target yet, so a sink found different is read again, up
    to ``reads`` times in all, each time after waiting (up to :data:`SETTLE_S`) for the sink to
    report no unapplied events: a difference is reported only when it survived every read.
    Shows progress (rows compared per table) on a terminal, nothing otherwise.
    """
    import importlib

    from cdc.progress import Progress

    sinks = [config.sink(name) for name in sink_names]
    verifiers: list[tuple[SinkConfig, Callable[..., VerifyReport]]] = []
    for sc in sinks:
        module_name = f"{registry.SINKS[sc.connector]}.verify"
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError([f"sinks: {sc.name}: the {sc.connector} connector cannot verify: {exc}"]) from exc
        verify_sink = getattr(module, "verify_sink", None)
        if not callable(verify_sink):
            raise ConfigError([f"sinks: {sc.name}: the {sc.connector} connector cannot verify ({module_name})"])
        verifiers.append((sc, verify_sink))
    reports: dict[str, VerifyReport] = {}
    with Progress(f"{config.name}: verify") as progress:
        for sc, verify_sink in verifiers:
            report = verify_sink(config, sc, progress=progress)
            for _ in range(reads - 1):
                if report.equal:
                    break
                _settle(config, sc.name)
                report = verify_sink(config, sc, progress=progress)
            reports[sc.name] = report
    return reports


#: How long ``verify_config`` waits for a sink to apply what is pending before reading again.
SETTLE_S = 30.0


def _settle(config: Config, sink_name: str) -> None:
    """Wait until ``sink_name`` reports no unapplied events (or :data:`SETTLE_S` passes); a
    pipeline that is not running, or whose lag cannot be read, gets a short pause instead."""
    import time

    deadline = time.monotonic() + SETTLE_S
    time.sleep(0.5)
    while time.monotonic() < deadline:
        try:
            lag = status(config)["sinks"].get(sink_name, {}).get("lag_events")
        except CdcError:
            return
        if lag is None:  # not known (the direct bus keeps no backlog): give the pipeline a moment
            time.sleep(2.0)
            return
        if lag == 0:
            return
        time.sleep(0.5)

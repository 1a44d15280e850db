"""Supervision of pipeline workers: retry by error type, terminal stop, graceful shutdown.

The workers here are in-memory doubles (pure lifecycle logic); the real workers are exercised
against real servers by the end-to-end tests.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from cdc import pipeline as pl
from cdc.config import parse_config
from cdc.errors import ConfigError, ConnectionLostError, PositionLostError, TerminalError


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pl, "BACKOFF_START_S", 0.001)
    monkeypatch.setattr(pl, "BACKOFF_MAX_S", 0.002)


def _config(bus: str = "kafka") -> Any:
    bus_yaml = "  type: kafka\n  bootstrap_servers: 127.0.0.1:9\n" if bus == "kafka" else "  type: direct\n"
    return parse_config(
        "name: p\nsource:\n  type: mysql\n  url: mysql://u:secret@127.0.0.1:1/\n  server_id: 9\n"
        f"bus:\n{bus_yaml}"
        "sinks:\n  - name: a\n    url: sqlite:///a.db\n  - name: b\n    url: sqlite:///b.db\n",
        env={},
    )


class Script(pl.Worker):
    """Fails its first starts/steps as scripted, then steps until stopped; records every call."""

    def __init__(
        self,
        failures: list[BaseException],
        stop_after: int | None = None,
        name: str = "source",
        gate: threading.Event | None = None,
    ) -> None:
        self.component = name
        self.gate = gate
        self.failures = list(failures)
        self.calls: list[str] = []
        self.steps = 0
        self.stop_after = stop_after
        self.pipeline: pl.Pipeline | None = None
        self.stepped = threading.Event()

    def start(self) -> None:
        self.calls.append("start")

    def step(self) -> None:
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.failures:
            raise self.failures.pop(0)
        self.steps += 1
        self.stepped.set()
        if self.stop_after is not None and self.steps >= self.stop_after and self.pipeline is not None:
            self.pipeline.stop()

    def stop(self) -> None:
        self.calls.append("stop")

    def abort(self) -> None:
        self.calls.append("abort")


def _pipeline(*workers: Script) -> pl.Pipeline:
    p = pl.Pipeline(_config(), only="source")
    p.workers = list(workers)
    for w in workers:
        w.pipeline = p
    return p


def test_transient_errors_are_retried_from_a_fresh_start() -> None:
    w = Script([ConnectionLostError("gone"), ConnectionLostError("gone again")], stop_after=3)
    _pipeline(w).run()
    assert w.calls == ["start", "abort", "start", "abort", "start", "stop"]
    assert w.steps == 3


def test_a_terminal_error_stops_every_worker_and_is_raised() -> None:
    other = Script([], name="sink:a")
    failing = Script([PositionLostError("binlog purged")], gate=other.stepped)
    p = _pipeline(failing, other)
    with pytest.raises(PositionLostError, match="binlog purged"):
        p.run()
    assert failing.calls == ["start", "abort"]
    assert other.calls[0] == "start" and other.calls[-1] == "stop"  # the healthy worker shut down cleanly


def test_config_errors_are_terminal_too() -> None:
    w = Script([ConfigError(["sinks[0].url: nope"])])
    with pytest.raises(ConfigError):
        _pipeline(w).run()
    assert w.calls == ["start", "abort"]


def test_unexpected_exceptions_become_terminal_after_repeated_failures() -> None:
    w = Script([RuntimeError("boom")] * pl.MAX_UNEXPECTED)
    with pytest.raises(TerminalError, match=rf"failed {pl.MAX_UNEXPECTED} times in a row.*RuntimeError: boom"):
        _pipeline(w).run()
    assert w.calls.count("start") == pl.MAX_UNEXPECTED


def test_fewer_unexpected_failures_are_retried() -> None:
    w = Script([RuntimeError("boom")] * (pl.MAX_UNEXPECTED - 1), stop_after=1)
    _pipeline(w).run()
    assert w.calls[-1] == "stop" and w.steps == 1


def test_stop_from_another_thread_shuts_down_gracefully() -> None:
    w = Script([])
    p = _pipeline(w)
    t = threading.Thread(target=p.run)
    t.start()
    assert w.stepped.wait(10)
    p.stop()
    t.join(10)
    assert not t.is_alive()
    assert w.calls == ["start", "stop"]


def test_only_selects_the_workers() -> None:
    cfg = _config()
    assert [w.component for w in pl.Pipeline(cfg).workers] == ["source", "sink:a", "sink:b"]
    assert [w.component for w in pl.Pipeline(cfg, only="source").workers] == ["source"]
    assert [w.component for w in pl.Pipeline(cfg, only="sink:b").workers] == ["sink:b"]


@pytest.mark.parametrize(
    ("bus", "only", "message"),
    [
        ("kafka", "sink:zzz", "no sink named 'zzz'"),
        ("kafka", "sinks", "expected 'source' or 'sink:NAME'"),
        ("direct", "sink:a", "with bus.type: direct the sinks run inside the source"),
    ],
)
def test_only_errors_are_clear(bus: str, only: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        pl.Pipeline(_config(bus), only=only)


def test_direct_bus_runs_one_worker_that_holds_the_sinks() -> None:
    assert [w.component for w in pl.Pipeline(_config("direct")).workers] == ["source"]

"""cdc.metrics: names and labels per the contract, the exposition, the endpoint's binding."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cdc.errors import ConfigError, ListenError
from cdc.metrics import Metrics, MetricsServer, metric_names

CONTRACT = {
    "cdc_source_events_total": {"pipeline", "table", "op"},
    "cdc_source_lag_seconds": {"pipeline"},
    "cdc_sink_applied_total": {"pipeline", "sink", "table", "op"},
    "cdc_sink_lag_seconds": {"pipeline", "sink"},
    "cdc_sink_lag_events": {"pipeline", "sink"},
    "cdc_snapshot_rows_total": {"pipeline", "table"},
    "cdc_snapshot_running": {"pipeline"},
    "cdc_errors_total": {"pipeline", "component", "kind"},
    "cdc_up": {"pipeline", "component"},
}


def samples(metrics: Metrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    """sample name -> [(labels, value)], parsed from the exposition text."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def value(metrics: Metrics, name: str, **labels: str) -> float:
    found = [v for lbl, v in samples(metrics).get(name, []) if lbl == {"pipeline": metrics.pipeline, **labels}]
    assert len(found) == 1, f"{name}{labels}: {samples(metrics).get(name)}"
    return found[0]


def feed(m: Metrics) -> None:
    m.source_events("shop.orders", "c", 3)
    m.source_events("shop.orders", "u")
    m.source_transactions(2)
    m.source_lag(1.5)
    m.snapshot_running(True)
    m.snapshot_rows("shop.orders", 100)
    m.snapshot_estimate("shop.orders", 1000)
    m.sink_applied("replica", "shop.orders", "c", 3)
    m.sink_lag("replica", seconds=0.25, events=7)
    m.sink_batch("replica", 0.02)
    m.dead_letter("replica")
    m.error("source", "ConnectionLostError")
    m.up("source", True)
    m.up("sink:replica", False)
    m.backup_done(4096, 12.5, 1_700_000_000.0)


@pytest.fixture
def metrics() -> Metrics:
    m = Metrics("shop")
    feed(m)
    return m


def test_contract_names_and_labels(metrics: Metrics) -> None:
    got = samples(metrics)
    for name, labels in CONTRACT.items():
        assert name in got, f"{name} missing from the exposition"
        for lbl, _ in got[name]:
            assert set(lbl) == labels, (name, lbl)
            assert lbl["pipeline"] == "shop"
    assert CONTRACT.keys() <= metric_names()


def test_values(metrics: Metrics) -> None:
    assert value(metrics, "cdc_source_events_total", table="shop.orders", op="c") == 3
    assert value(metrics, "cdc_source_events_total", table="shop.orders", op="u") == 1
    assert value(metrics, "cdc_source_transactions_total") == 2
    assert value(metrics, "cdc_source_lag_seconds") == 1.5
    assert value(metrics, "cdc_snapshot_running") == 1
    assert value(metrics, "cdc_snapshot_rows_total", table="shop.orders") == 100
    assert value(metrics, "cdc_snapshot_rows_estimate", table="shop.orders") == 1000
    assert value(metrics, "cdc_sink_applied_total", sink="replica", table="shop.orders", op="c") == 3
    assert value(metrics, "cdc_sink_lag_seconds", sink="replica") == 0.25
    assert value(metrics, "cdc_sink_lag_events", sink="replica") == 7
    assert value(metrics, "cdc_sink_batch_seconds_count", sink="replica") == 1
    assert value(metrics, "cdc_sink_batch_seconds_sum", sink="replica") == pytest.approx(0.02)
    assert value(metrics, "cdc_sink_last_applied_timestamp_seconds", sink="replica") > 1_600_000_000
    assert value(metrics, "cdc_dead_letters_total", sink="replica") == 1
    assert value(metrics, "cdc_errors_total", component="source", kind="ConnectionLostError") == 1
    assert value(metrics, "cdc_up", component="source") == 1
    assert value(metrics, "cdc_up", component="sink:replica") == 0
    assert value(metrics, "cdc_backups_total") == 1
    assert value(metrics, "cdc_backup_size_bytes") == 4096
    assert value(metrics, "cdc_backup_duration_seconds") == 12.5
    assert value(metrics, "cdc_backup_last_success_timestamp_seconds") == 1_700_000_000
    assert value(metrics, "cdc_build_info", version=__import__("cdc").__version__) == 1


def test_counters_accumulate_and_gauges_follow() -> None:
    m = Metrics("p")
    for _ in range(5):
        m.source_events("db.t", "d", 2)
    m.source_events("db.t", "d", 0)
    m.snapshot_running(True)
    m.snapshot_running(False)
    m.sink_lag("s", seconds=9.0, events=3)
    m.sink_lag("s", events=0)  # seconds left as they were
    m.sink_lag("s", seconds=0.0)
    m.up("source", False)
    m.up("source", True)
    assert value(m, "cdc_source_events_total", table="db.t", op="d") == 10
    assert value(m, "cdc_snapshot_running") == 0
    assert value(m, "cdc_sink_lag_seconds", sink="s") == 0
    assert value(m, "cdc_sink_lag_events", sink="s") == 0
    assert value(m, "cdc_up", component="source") == 1


def test_series_that_exist_from_the_start() -> None:
    m = Metrics("fresh")
    assert value(m, "cdc_snapshot_running") == 0
    assert value(m, "cdc_source_transactions_total") == 0
    assert value(m, "cdc_backups_total") == 0
    got = samples(m)
    assert "cdc_source_events_total" not in got  # no invented series
    assert not any(name.endswith("_created") for name in got)


def test_registries_are_independent() -> None:
    a, b = Metrics("a"), Metrics("b")
    a.source_events("db.t", "c", 5)
    assert value(a, "cdc_source_events_total", table="db.t", op="c") == 5
    assert "cdc_source_events_total" not in samples(b)


def test_error_kind_is_never_free_text() -> None:
    m = Metrics("p")
    m.error("source", "cannot connect to mysql://cdc:hunter2@db:3306/ (timeout)")
    m.error("sink:replica", "TargetValueError")
    kinds = {lbl["kind"] for lbl, _ in samples(m)["cdc_errors_total"]}
    assert kinds == {"other", "TargetValueError"}


def test_secrets_never_in_the_exposition() -> None:
    m = Metrics("p")
    m.up("sink:postgresql://app:hunter2@db/x", True)
    m.source_events("db.t password=hunter2", "c")
    m.error("source", "password=hunter2")
    text = m.render().decode()
    assert "hunter2" not in text
    assert "***" in text


def test_metric_names_lists_every_cdc_sample(metrics: Metrics) -> None:
    exposed = {name for name in samples(metrics) if name.startswith("cdc_")}
    assert exposed <= metric_names()
    assert {"cdc_sink_batch_seconds_bucket", "cdc_backup_last_success_timestamp_seconds"} <= metric_names()


# --------------------------------------------------------------------------- the endpoint


@pytest.fixture
def server(metrics: Metrics) -> Iterator[MetricsServer]:
    srv = metrics.serve("127.0.0.1:0")
    yield srv
    srv.close()


def test_serve_binds_exactly_the_given_host(server: MetricsServer) -> None:
    assert server.port > 0
    sock = server._server.socket
    assert sock.getsockname() == ("127.0.0.1", server.port)
    assert server.url == f"http://127.0.0.1:{server.port}/metrics"


def test_default_listen_is_loopback() -> None:
    from cdc.config import MetricsConfig

    assert MetricsConfig().listen.startswith("127.0.0.1:")


def test_serve_answers_metrics(server: MetricsServer) -> None:
    with urllib.request.urlopen(server.url, timeout=10) as resp:
        assert resp.status == 200
        body = resp.read().decode()
    names = {s.name for f in text_string_to_metric_families(body) for s in f.samples}
    assert set(CONTRACT) <= names


def test_port_in_use_is_a_listen_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ListenError, match="already in use"):
            Metrics("p").serve(f"127.0.0.1:{port}")


def test_foreign_address_is_a_listen_error() -> None:
    with pytest.raises(ListenError, match="does not belong to this machine"):
        Metrics("p").serve("192.0.2.1:0")  # TEST-NET-1, never local


def test_bad_listen_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        Metrics("p").serve("9108")


def test_close_frees_the_port(metrics: Metrics) -> None:
    srv = metrics.serve("127.0.0.1:0")
    port = srv.port
    srv.close()
    srv.close()
    again = metrics.serve(f"127.0.0.1:{port}")
    assert again.port == port
    again.close()


def test_a_sink_dead_letter_counter_starts_at_zero() -> None:
    m = Metrics("p")
    m.up("sink:replica", True)
    m.sink_lag("other", seconds=0.0)
    assert value(m, "cdc_dead_letters_total", sink="replica") == 0
    assert value(m, "cdc_dead_letters_total", sink="other") == 0
    m.dead_letter("replica")
    assert value(m, "cdc_dead_letters_total", sink="replica") == 1

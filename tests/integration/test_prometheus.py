"""The alert rules pass promtool, and a real Prometheus scrapes a Metrics endpoint and evaluates them.

Prometheus and promtool come from the local stack's install step (Debian's ``prometheus``
package, see deploy/stack/stack.py). Without them the tests skip, and fail under ``CI=true``.
Prometheus runs on free loopback ports with its own data directory; it is stopped afterwards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import services
import yaml
from services import free_port

from cdc.metrics import Metrics, MetricsServer

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
DEADLINE_S = 180.0  # overall bound for a condition to appear; the usual case takes a few seconds

T = TypeVar("T")


def _binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        why = f"{name} is not installed (python3 deploy/stack/stack.py install provides it)"
        if services.in_ci():
            pytest.fail(f"CI=true and {why}", pytrace=False)
        pytest.skip(why)
    return path


@pytest.fixture(scope="module")
def promtool() -> str:
    return _binary("promtool")


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def test_promtool_checks_the_rules(promtool: str) -> None:
    proc = _run([promtool, "check", "rules", str(PROM_DIR / "alerts.yml")])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_unit_tests_of_the_rules_pass(promtool: str) -> None:
    proc = _run([promtool, "test", "rules", str(PROM_DIR / "alerts_test.yml")])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_checks_the_compose_config(promtool: str) -> None:
    proc = _run([promtool, "check", "config", "prometheus.yml"], cwd=PROM_DIR)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 rule files found" in proc.stdout


# --------------------------------------------------------------------------- a live Prometheus


@dataclass
class Live:
    metrics: Metrics
    endpoint: MetricsServer
    base: str  # Prometheus' HTTP API base URL
    log: Path
    proc: subprocess.Popen[bytes]

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}" if params else f"{self.base}{path}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            doc = json.loads(resp.read())
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        data = self.api("/api/v1/query", query=promql)
        assert data["resultType"] == "vector"
        return list(data["result"])

    def wait(self, what: str, probe: Callable[[], T | None]) -> T:
        """Poll ``probe`` until it returns a value (not None); fail after DEADLINE_S with Prometheus' log."""
        deadline = time.monotonic() + DEADLINE_S
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"prometheus exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                found = probe()
            except (OSError, ValueError) as exc:  # not up yet
                last_error, found = exc, None
            if found is not None:
                return found
            time.sleep(0.5)
        pytest.fail(f"{what}: not seen within {DEADLINE_S:.0f}s (last error: {last_error})\n{self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no log)"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    prometheus = _binary("prometheus")
    metrics = Metrics(f"it_{uuid.uuid4().hex[:8]}")
    endpoint = metrics.serve("127.0.0.1:0")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(PROM_DIR / "alerts.yml")],
        "scrape_configs": [
            {"job_name": "cdc", "static_configs": [{"targets": [f"127.0.0.1:{endpoint.port}"]}]},
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                prometheus,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield Live(metrics, endpoint, f"http://127.0.0.1:{port}", log, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        endpoint.close()


def _one(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    return rows[0] if len(rows) == 1 else None


def test_prometheus_scrapes_cdc_metrics_and_evaluates_the_alerts(live: Live) -> None:
    m, pipeline = live.metrics, live.metrics.pipeline
    sel = f'pipeline="{pipeline}"'
    m.source_events("shop.orders", "c", 3)
    m.source_events("shop.orders", "u", 2)
    m.source_lag(0.5)
    m.up("source", True)
    m.up("sink:replica", True)
    m.sink_applied("replica", "shop.orders", "c", 3)
    m.sink_lag("replica", seconds=0.0, events=4)
    m.error("source", "ConnectionLostError")

    scrape = live.wait("the scrape of cdc", lambda: _one(live.query('up{job="cdc"} == 1')))
    assert scrape["metric"]["instance"] == f"127.0.0.1:{live.endpoint.port}"

    events = live.wait(
        "cdc_source_events_total",
        lambda: live.query(f"cdc_source_events_total{{{sel}}}") or None,
    )
    got = {(r["metric"]["table"], r["metric"]["op"]): float(r["value"][1]) for r in events}
    assert got == {("shop.orders", "c"): 3.0, ("shop.orders", "u"): 2.0}
    assert set(events[0]["metric"]) == {"__name__", "pipeline", "table", "op", "job", "instance"}

    applied = _one(live.query(f'cdc_sink_applied_total{{{sel},sink="replica",table="shop.orders",op="c"}}'))
    assert applied is not None and float(applied["value"][1]) == 3.0
    lag_events = _one(live.query(f'cdc_sink_lag_events{{{sel},sink="replica"}}'))
    assert lag_events is not None and float(lag_events["value"][1]) == 4.0
    errors = _one(live.query(f'cdc_errors_total{{{sel},component="source",kind="ConnectionLostError"}}'))
    assert errors is not None and float(errors["value"][1]) == 1.0
    up = {r["metric"]["component"]: float(r["value"][1]) for r in live.query(f"cdc_up{{{sel}}}")}
    assert up == {"source": 1.0, "sink:replica": 1.0}
    dead = _one(live.query(f'cdc_dead_letters_total{{{sel},sink="replica"}}'))
    assert dead is not None and float(dead["value"][1]) == 0.0  # exists at 0 before the first dead letter

    # the rules are loaded
    groups = live.api("/api/v1/rules")["groups"]
    names = {rule["name"] for g in groups for rule in g["rules"]}
    assert {"CdcSinkLagHigh", "CdcSourceDown", "CdcErrorsRising", "CdcSinkDeadLetters", "CdcBackupTooOld"} <= names

    # a lag above the threshold makes CdcSinkLagHigh pending (it fires after 5 minutes)
    m.sink_lag("replica", seconds=10_000.0)
    m.up("source", False)
    m.dead_letter("replica")

    def alert(name: str, state: str) -> dict[str, Any] | None:
        for a in live.api("/api/v1/alerts")["alerts"]:
            if a["labels"]["alertname"] == name and a["labels"].get("pipeline") == pipeline and a["state"] == state:
                return dict(a)
        return None

    lag_alert = live.wait("CdcSinkLagHigh pending", lambda: alert("CdcSinkLagHigh", "pending"))
    assert lag_alert["labels"]["sink"] == "replica"
    assert lag_alert["labels"]["severity"] == "warning"
    assert float(lag_alert["value"]) == 10_000.0
    down = live.wait("CdcSourceDown pending", lambda: alert("CdcSourceDown", "pending"))
    assert down["labels"]["component"] == "source"
    # no 'for' clause: a dead letter fires at once
    dead_alert = live.wait("CdcSinkDeadLetters firing", lambda: alert("CdcSinkDeadLetters", "firing"))
    assert dead_alert["labels"]["sink"] == "replica"

    pending = live.query(f'ALERTS{{alertname="CdcSinkLagHigh",alertstate="pending",{sel}}}')
    assert len(pending) == 1
    # nothing else is wrong: no backup series, no error storm
    assert alert("CdcBackupTooOld", "pending") is None and alert("CdcBackupTooOld", "firing") is None
    assert alert("CdcErrorsRising", "pending") is None

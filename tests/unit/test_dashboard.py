"""deploy/: the Grafana dashboard and the Prometheus alert rules use only metrics that cdc exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdc.metrics import metric_names

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "cdc.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"

# Prometheus' own series that rules may use besides cdc's.
PROMETHEUS_SERIES = {"up"}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}


def series_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, keywords, labels or numbers)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    text = re.sub(r"\boffset\s+\w+", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name in _KEYWORDS:
            continue
        names.add(name)
    return names


def test_series_names_parser() -> None:
    expr = (
        'sum by (pipeline, sink) (increase(cdc_dead_letters_total{pipeline=~"$pipeline"}[$__rate_interval]))'
        " or (cdc_up > 0 unless cdc_up offset 15m) + time() - 25 * 3600"
    )
    assert series_names(expr) == {"cdc_dead_letters_total", "cdc_up"}


def dashboard() -> dict[str, Any]:
    doc = json.loads(DASHBOARD.read_text())
    assert isinstance(doc, dict)
    return doc


def panels() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in dashboard()["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def exprs() -> list[str]:
    return [t["expr"] for p in panels() for t in p.get("targets", [])]


def test_dashboard_exprs_use_only_cdc_metrics() -> None:
    known = metric_names()
    assert exprs()
    for expr in exprs():
        names = series_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= known, f"{expr!r} uses unknown metrics {names - known}"


def test_dashboard_covers_the_subjects() -> None:
    used = set().union(*(series_names(e) for e in exprs()))
    for name in (
        "cdc_up",
        "cdc_source_lag_seconds",
        "cdc_sink_lag_seconds",
        "cdc_sink_lag_events",
        "cdc_source_events_total",
        "cdc_sink_applied_total",
        "cdc_snapshot_rows_total",
        "cdc_snapshot_rows_estimate",
        "cdc_snapshot_running",
        "cdc_errors_total",
        "cdc_dead_letters_total",
        "cdc_backup_last_success_timestamp_seconds",
    ):
        assert name in used, f"no panel shows {name}"


def test_dashboard_structure() -> None:
    doc = dashboard()
    assert doc["uid"] and doc["title"]
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "pipeline" in variables
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for p in panels():
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
            for t in p["targets"]:
                assert t["datasource"]["uid"] == "${datasource}"
                assert 'pipeline=~"$pipeline"' in t["expr"], f"{p['title']}: {t['expr']}"
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"panel {p['title']!r} overlaps another"
        cells |= mine


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_alert_rules_use_only_cdc_metrics() -> None:
    known = metric_names() | PROMETHEUS_SERIES
    for rule in alert_rules():
        names = series_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= known, f"{rule['alert']} uses unknown metrics {names - known}"


@pytest.mark.parametrize(
    "alert", ["CdcSinkLagHigh", "CdcSourceDown", "CdcErrorsRising", "CdcSinkDeadLetters", "CdcBackupTooOld"]
)
def test_required_alerts_exist_with_severity(alert: str) -> None:
    rules = {r["alert"]: r for r in alert_rules()}
    assert alert in rules
    assert rules[alert]["labels"]["severity"] in {"warning", "critical"}
    assert rules[alert]["annotations"]["summary"]


def test_prometheus_loads_the_alert_rules() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    assert [(PROMETHEUS.parent / f).resolve() for f in config["rule_files"]] == [ALERTS.resolve()]

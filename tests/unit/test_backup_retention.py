"""Backup retention, the change topics' coverage rule, --until parsing and the backups config section."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdc.backup.catalog import select_retained
from cdc.backup.restore import Until
from cdc.backup.topics import partition_gap
from cdc.config import parse_config
from cdc.errors import ConfigError
from cdc.positions import MySqlPosition, PgPosition

DAY = 86_400_000


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def _every_6h(days: int, end: str = "2025-03-31T18:00") -> list[tuple[str, int]]:
    last = datetime.fromisoformat(end).replace(tzinfo=UTC)
    out = []
    for i in range(days * 4):
        moment = last - timedelta(hours=6 * i)
        out.append((moment.strftime("%m%d-%H"), int(moment.timestamp() * 1000)))
    return out


def test_keep_last_only() -> None:
    backups = _every_6h(3)
    assert select_retained(backups, 5, 0, 0) == {b for b, _ in backups[:5]}


def test_daily_keeps_the_newest_of_each_of_the_last_days() -> None:
    backups = _every_6h(10)
    kept = select_retained(backups, 0, 3, 0)
    assert kept == {"0331-18", "0330-18", "0329-18"}


def test_weekly_keeps_the_newest_of_each_iso_week() -> None:
    backups = _every_6h(30)  # 2025-03-02 .. 2025-03-31; 2025-03-31 is a Monday (week 14)
    kept = select_retained(backups, 0, 0, 3)
    assert kept == {"0331-18", "0330-18", "0323-18"}  # weeks 14, 13 (ends Sunday 30th), 12


def test_the_rules_add_up_and_the_newest_is_always_kept() -> None:
    backups = _every_6h(30)
    assert select_retained(backups, 2, 2, 2) == {"0331-18", "0331-12", "0330-18"}
    assert select_retained(backups, 2, 2, 3) == {"0331-18", "0331-12", "0330-18", "0323-18"}
    assert select_retained(backups, 0, 0, 0) == {"0331-18"}
    assert select_retained([], 3, 3, 3) == set()


def test_days_without_backups_do_not_count() -> None:
    backups = [("a", _ms("2025-01-10T10:00")), ("b", _ms("2025-01-05T10:00")), ("c", _ms("2025-01-01T10:00"))]
    assert select_retained(backups, 0, 2, 0) == {"a", "b"}


def test_a_partition_never_trimmed_reaches_back() -> None:
    assert partition_gap(("t", 0), 0, None, retention=(1000, -1), since_ms=5, now_ms=10**13) is None


def test_a_partition_whose_first_record_predates_the_backup_reaches_back() -> None:
    assert partition_gap(("t", 0), 500, 1000, retention=(-1, 1), since_ms=2000, now_ms=10**13) is None


def test_a_trimmed_partition_whose_first_record_is_after_the_backup_does_not() -> None:
    problem = partition_gap(("t", 0), 500, 3000, retention=(7 * DAY, -1), since_ms=2000, now_ms=20 * DAY)
    assert problem is not None and "t[0]" in problem and "offset 500" in problem


def test_time_retention_that_cannot_have_reached_the_backup_yet_is_fine() -> None:
    now = 20 * DAY
    since = now - 2 * DAY
    assert partition_gap(("t", 0), 500, 3 * now, retention=(7 * DAY, -1), since_ms=since, now_ms=now) is None
    # ... unless size-based retention may have deleted anything
    assert partition_gap(("t", 0), 500, 3 * now, retention=(7 * DAY, 10**9), since_ms=since, now_ms=now) is not None


@pytest.mark.parametrize(
    ("text", "time_ms", "position"),
    [
        ("2025-01-31T12:00:00Z", _ms("2025-01-31T12:00:00"), None),
        ("2025-01-31 12:00:00.250", _ms("2025-01-31T12:00:00.250"), None),
        ("2025-01-31T13:00:00+01:00", _ms("2025-01-31T12:00:00"), None),
        ("1738324800", 1738324800000, None),
        ("1738324800123", 1738324800123, None),
        ("mysql-bin.000042:1234", None, MySqlPosition("mysql-bin.000042", 1234)),
        ("0/16B3748", None, PgPosition(0x16B3748)),
    ],
)
def test_until_parses_times_and_positions(text: str, time_ms: int | None, position: object) -> None:
    until = Until.parse(text)
    assert (until.time_ms, until.position, until.at_backup) == (time_ms, position, False)


def test_until_backup_means_no_replay() -> None:
    assert Until.parse("backup").at_backup


@pytest.mark.parametrize("text", ["yesterday", "mysql-bin:12", "12:00"])
def test_until_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="neither a time"):
        Until.parse(text)


BASE: dict[str, Any] = {
    "name": "shop",
    "source": {"type": "mysql", "url": "mysql://cdc@db:3306/", "server_id": 7},
    "bus": {"type": "kafka", "bootstrap_servers": "kafka:9092"},
}


def _config_text(backups: Any) -> str:
    data = copy.deepcopy(BASE)
    data["backups"] = backups
    return yaml.safe_dump(data)


def test_a_backups_section_with_defaults(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "backup.key"
    key.parent.mkdir()
    key.write_text("ab" * 32 + "\n")
    cfg = parse_config(
        _config_text({"destination": "backups", "schedule": "every 6 hours", "encryption_key_file": "keys/backup.key"}),
        env={},
        base_dir=tmp_path,
    )
    b = cfg.backups
    assert b is not None
    assert b.destination == tmp_path / "backups"
    assert (b.schedule, b.interval_s) == ("6h", 6 * 3600)
    assert (b.retention.keep_last, b.retention.keep_daily, b.retention.keep_weekly) == (7, 7, 4)
    assert b.encryption_key() == bytes.fromhex("ab" * 32)
    assert "abab" not in repr(cfg)


def test_the_section_is_optional() -> None:
    assert parse_config(_config_text(None).replace("backups: null\n", ""), env={}).backups is None


def test_every_problem_of_the_section_at_once(tmp_path: Path) -> None:
    (tmp_path / "bad.key").write_text("this is not a key; its secret is hunter2")
    text = _config_text(
        {
            "destination": "s3://bucket/path",
            "schedule": "daily",
            "retention": {"keep_last": -1, "keep_monthly": 3},
            "encryption_key_file": "bad.key",
            "chunk_rows": 0,
        }
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={}, base_dir=tmp_path)
    problems = info.value.problems
    joined = "\n".join(problems)
    assert any(p.startswith("backups.destination: must be a local directory; s3://") for p in problems), joined
    assert any(p.startswith("backups.schedule: must be every N minutes or hours") for p in problems), joined
    assert any(p.startswith("backups.retention.keep_last: must be at least 0") for p in problems), joined
    assert any(p.startswith("backups.retention.keep_monthly: unknown key") for p in problems), joined
    assert any(p.startswith("backups.encryption_key_file:") and "256-bit" in p for p in problems), joined
    assert any(p.startswith("backups.chunk_rows: must be at least 1") for p in problems), joined
    assert "hunter2" not in joined


def test_a_missing_key_file_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_config_text({"destination": "/b", "encryption_key_file": "nope.key"}), env={}, base_dir=tmp_path)
    assert info.value.problems == [f"backups.encryption_key_file: cannot read {tmp_path / 'nope.key'}: no such file"]

"""cdc.logs: JSON and text lines, redaction, levels of third-party loggers, tracebacks only at debug."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest

from cdc.logs import THIRD_PARTY, setup_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in THIRD_PARTY}
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    for name, lvl in levels.items():
        logging.getLogger(name).setLevel(lvl)
    logging.captureWarnings(False)


def json_lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_json_line_fields() -> None:
    out = io.StringIO()
    setup_logging("info", "json", stream=out)
    logging.getLogger("cdc.pipeline").warning("sink %s is behind", "replica", extra={"sink": "replica", "lag": 3.5})
    (doc,) = json_lines(out)
    assert list(doc)[:4] == ["ts", "level", "logger", "msg"]
    assert doc["level"] == "warning"
    assert doc["logger"] == "cdc.pipeline"
    assert doc["msg"] == "sink replica is behind"
    assert doc["sink"] == "replica"
    assert doc["lag"] == 3.5
    ts = str(doc["ts"])
    assert ts.endswith("Z")
    assert datetime.fromisoformat(ts.replace("Z", "+00:00")).utcoffset() is not None


def test_level_filters_and_second_setup_replaces_the_first() -> None:
    out = io.StringIO()
    setup_logging("info", "json", stream=out)
    setup_logging("warning", "json", stream=out)
    log = logging.getLogger("cdc.test")
    log.info("quiet")
    log.warning("loud")
    assert [d["msg"] for d in json_lines(out)] == ["loud"]


def test_secrets_are_redacted_everywhere() -> None:
    out = io.StringIO()
    setup_logging("debug", "json", stream=out)
    log = logging.getLogger("cdc.test")
    try:
        raise ConnectionError("cannot reach mysql://cdc:hunter2@db:3306/")
    except ConnectionError:
        log.exception(
            "connect to %s failed",
            "postgresql://app:hunter2@h/db",
            extra={"url": "mysql://u:hunter2@x/", "conf": {"dsn": "password=hunter2"}},
        )
    text = out.getvalue()
    assert "hunter2" not in text
    (doc,) = json_lines(out)  # still one valid JSON line
    assert doc["msg"] == "connect to postgresql://app:***@h/db failed"
    assert "traceback" in doc


def test_text_format_redacts_and_shows_extras() -> None:
    out = io.StringIO()
    setup_logging("info", "text", stream=out)
    logging.getLogger("cdc.x").error("bad url mysql://root:hunter2@h/", extra={"sink": "replica"})
    line = out.getvalue().strip()
    assert "hunter2" not in line
    assert " ERROR cdc.x: bad url mysql://root:***@h/ sink=replica" in line


def test_traceback_only_at_debug() -> None:
    for level, expect_tb in (("info", False), ("debug", True)):
        out = io.StringIO()
        setup_logging(level, "json", stream=out)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("cdc.t").error("failed", exc_info=True)
        (doc,) = json_lines(out)
        assert doc["error"] == "ValueError: boom"
        assert ("traceback" in doc) is expect_tb
        text_out = io.StringIO()
        setup_logging(level, "text", stream=text_out)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("cdc.t").error("failed", exc_info=True)
        assert ("Traceback" in text_out.getvalue()) is expect_tb


def test_third_party_loggers_are_muted_unless_debug() -> None:
    out = io.StringIO()
    setup_logging("info", "json", stream=out)
    logging.getLogger("kafka.conn").warning("reconnecting")  # kafka-python: only its errors
    logging.getLogger("kafka.conn").error("broker gone")
    logging.getLogger("urllib3.connectionpool").info("connection")
    logging.getLogger("urllib3.connectionpool").warning("retrying")
    assert [d["msg"] for d in json_lines(out)] == ["broker gone", "retrying"]

    out = io.StringIO()
    setup_logging("debug", "json", stream=out)
    logging.getLogger("kafka.conn").debug("details")
    assert [d["msg"] for d in json_lines(out)] == ["details"]


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log level"):
        setup_logging("chatty", "json", stream=io.StringIO())

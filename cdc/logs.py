"""Process logging: text or JSON lines on stderr, secrets redacted, third-party chatter muted.

Normal operation is quiet: cdc logs nothing at ``info`` on its hot path, so the default level
``info`` shows start-up and shut-down, warnings and errors. Libraries log at ``WARNING`` and
above (kafka-python, which reports every reconnect, at ``ERROR``) unless the level is ``debug``.

Every line passes through :func:`cdc.errors.redact`: a URL's password or a ``password=...``
pair in a message, an argument, an ``extra`` field or a traceback never reaches the output.
Tracebacks are written only at ``debug``; otherwise an exception shows as its class and message.

JSON lines carry ``ts`` (ISO-8601 UTC with milliseconds and ``Z``), ``level``, ``logger``,
``msg``, then the record's ``extra`` fields, then ``error`` (and ``traceback`` at debug) when
the record carries an exception::

    {"ts": "2025-01-31T12:00:00.123Z", "level": "warning", "logger": "cdc.pipeline", "msg": "...", "sink": "replica"}
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from cdc.errors import redact

__all__ = ["THIRD_PARTY", "JsonFormatter", "TextFormatter", "setup_logging"]

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

# Library loggers and the least severe level they may show when cdc is not at debug.
THIRD_PARTY: dict[str, int] = {
    "kafka": logging.ERROR,  # kafka-python: a warning per reconnect and per metadata refresh
    "confluent_kafka": logging.WARNING,
    "pymysqlreplication": logging.WARNING,
    "pymysql": logging.WARNING,
    "psycopg": logging.WARNING,
    "sqlalchemy": logging.WARNING,
    "urllib3": logging.WARNING,
    "asyncio": logging.WARNING,
    "py.warnings": logging.WARNING,
}

# LogRecord's own attributes; anything else on a record came from ``extra=``.
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")}


def _clean(value: Any) -> Any:
    """A JSON-ready copy of ``value`` with every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, dict):
        return {redact(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in value]
    return redact(str(value))


def _error(record: logging.LogRecord) -> str | None:
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        return f"{type(exc).__name__}: {exc}"
    return None


class JsonFormatter(logging.Formatter):
    """One JSON object per line; tracebacks only when ``tracebacks`` is true (level debug)."""

    def __init__(self, *, tracebacks: bool = False) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, val in _extras(record).items():
            doc.setdefault(key, _clean(val))
        error = _error(record)
        if error is not None:
            doc["error"] = redact(error)
            if self.tracebacks and record.exc_info:
                doc["traceback"] = redact("".join(traceback.format_exception(*record.exc_info)))
        return json.dumps(doc, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``TS LEVEL logger: message key=value ...``; tracebacks only when ``tracebacks`` is true."""

    def __init__(self, *, tracebacks: bool = False) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname, f"{record.name}:", record.getMessage()]
        parts.extend(f"{k}={v}" for k, v in _extras(record).items())
        error = _error(record)
        if error is not None:
            parts.append(f"({error})")
        line = " ".join(parts)
        if self.tracebacks and error is not None and record.exc_info:
            line += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return redact(line)


class _CdcHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`setup_logging` installs; a second call replaces it."""


def setup_logging(
    level: str = "info",
    fmt: Literal["text", "json"] = "text",
    stream: TextIO | None = None,
) -> None:
    """Configure the root logger for this process: one handler writing to ``stream`` (stderr).

    ``level`` is ``debug``, ``info``, ``warning`` or ``error`` (case-insensitive). Calling it
    again replaces the earlier set-up instead of adding a second handler. Handlers that others
    installed (pytest's capture, say) are left alone.
    """
    name = level.lower()
    if name not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)} (got {level!r})")
    numeric = LEVELS[name]
    debug = numeric <= logging.DEBUG
    handler = _CdcHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(tracebacks=debug) if fmt == "json" else TextFormatter(tracebacks=debug))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _CdcHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)
    for logger_name, floor in THIRD_PARTY.items():
        logging.getLogger(logger_name).setLevel(logging.NOTSET if debug else max(floor, numeric))
    logging.captureWarnings(True)

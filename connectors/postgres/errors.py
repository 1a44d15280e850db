"""psycopg errors translated into :mod:`cdc.errors`, at the boundary of the PostgreSQL connector.

Decisions are made on the exception class and the SQLSTATE, never on message text:

=====================================  ===============================================
what psycopg raised                    what cdc raises
=====================================  ===============================================
login refused (28P01, 28000)           :class:`~cdc.errors.ConnectError` (wrong password/role)
unknown database (3D000)               :class:`~cdc.errors.ConnectError`
server unreachable when connecting     :class:`~cdc.errors.ConnectError` (first connect) or
                                       :class:`~cdc.errors.ConnectionLostError` (reconnect)
connection lost on a query or COPY     :class:`~cdc.errors.ConnectionLostError`
insufficient privilege (42501)         :class:`~cdc.errors.PermissionDeniedError`
anything else                          :class:`~cdc.errors.TerminalError`
=====================================  ===============================================

Messages name the user, host and port, never a password (:class:`~cdc.errors.CdcError`
redacts them again on top).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from cdc.errors import (
    CdcError,
    ConnectError,
    ConnectionLostError,
    PermissionDeniedError,
    TerminalError,
)

__all__ = ["connect_error", "describe_url", "is_connection_loss", "query_error"]

_AUTH_STATES = frozenset({"28P01", "28000"})
_UNKNOWN_DATABASE = "3D000"
_INSUFFICIENT_PRIVILEGE = "42501"


def describe_url(url: str) -> tuple[str, str, str]:
    """``(user, "host:port", database)`` of a libpq URL, for messages (no password)."""
    try:
        p = urlsplit(url)
        host = p.hostname or "localhost"
        port = p.port or 5432
    except ValueError:
        return ("?", "?", "?")
    return unquote(p.username or ""), f"{host}:{port}", unquote(p.path.lstrip("/")) or "postgres"


def _primary(exc: BaseException) -> str:
    """The server's primary message when there is one, else the exception's last line without libpq's
    ``connection to server at … failed:`` preamble (for display only; nothing is decided on it)."""
    diag = getattr(exc, "diag", None)
    text = getattr(diag, "message_primary", None) if diag is not None else None
    if not text:
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        text = lines[-1] if lines else type(exc).__name__
        head, sep, tail = text.rpartition(" failed: ")
        if sep and head.startswith(("connection failed", "connection to server")):
            text = tail.removeprefix("FATAL:").strip()
    return str(text)


def connect_error(exc: Exception, url: str, *, reconnect: bool = False) -> CdcError:
    """The cdc error for a failed ``psycopg.connect``."""
    user, where, database = describe_url(url)
    state = getattr(exc, "sqlstate", None)
    if state in _AUTH_STATES:
        return ConnectError(f"PostgreSQL at {where} refused the login of user {user!r} (wrong password or role?)")
    if state == _UNKNOWN_DATABASE:
        return ConnectError(f"PostgreSQL at {where} has no database {database!r}")
    if state == _INSUFFICIENT_PRIVILEGE:
        return PermissionDeniedError(f"PostgreSQL at {where}: user {user!r} may not connect: {_primary(exc)}")
    message = f"cannot connect to PostgreSQL at {where} as {user!r}: {_primary(exc)}"
    if reconnect:
        return ConnectionLostError(message)
    return ConnectError(message)


def query_error(exc: Exception, doing: str) -> CdcError:
    """The cdc error for a failed statement (``doing`` says what cdc was doing)."""
    import psycopg

    state = getattr(exc, "sqlstate", None)
    if state == _INSUFFICIENT_PRIVILEGE:
        return PermissionDeniedError(f"{doing}: {_primary(exc)}")
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) and (
        state is None or state.startswith(("08", "57P"))
    ):
        return ConnectionLostError(f"{doing}: the connection to PostgreSQL was lost ({_primary(exc)})")
    return TerminalError(f"{doing}: {_primary(exc)}")


def is_connection_loss(exc: BaseException) -> bool:
    """True for psycopg errors that mean the connection is gone (worth a reconnect)."""
    import psycopg

    state: Any = getattr(exc, "sqlstate", None)
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) and (
        state is None or str(state).startswith(("08", "57P"))
    )

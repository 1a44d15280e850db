"""Driver and SQLAlchemy errors of the SQL sink, translated into :mod:`cdc.errors` at the boundary.

The class is chosen from the error's type and its code (PostgreSQL SQLSTATE, MySQL error
number, SQLite result code), never from its message text:

=====================================  ================================================
what happened                          cdc error
=====================================  ================================================
connection lost, server shut down      :class:`~cdc.errors.ConnectionLostError` (retried)
deadlock, serialization failure,       :class:`~cdc.errors.TransientError` (retried)
lock timeout, database busy
cannot connect (while opening),        :class:`~cdc.errors.ConnectError`
bad credentials, unknown database
missing privilege                      :class:`~cdc.errors.PermissionDeniedError`
missing table or column, bad key       :class:`~cdc.errors.SchemaError`
value or constraint rejected           :class:`~cdc.errors.TargetValueError`
anything else                          :class:`~cdc.errors.TerminalError`
=====================================  ================================================

Messages are one paragraph: who (``sink 'NAME'``), what it was doing, and the server's primary
message with its code. PostgreSQL's DETAIL lines (which may quote row values) are left out;
:class:`~cdc.errors.CdcError` redacts any password-looking text on top.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlalchemy.exc as sa_exc

from cdc.errors import (
    CdcError,
    ConnectError,
    ConnectionLostError,
    PermissionDeniedError,
    SchemaError,
    TargetValueError,
    TerminalError,
    TransientError,
)

__all__ = ["translate"]

# PostgreSQL SQLSTATEs (classes are their first two characters)
_PG_TRANSIENT = frozenset({"40001", "40P01", "55P03", "57014", "53000", "53100", "53200", "53300", "53400"})
_PG_LOST = frozenset({"57P01", "57P02", "57P03", "57P05"})
_PG_SCHEMA = frozenset({"42P01", "42703", "3F000", "42P10", "42704", "42804", "42P07", "42701"})

# MySQL / MariaDB error numbers
_MY_LOST = frozenset({2002, 2003, 2006, 2013, 2055, 1053, 1927, 4031, 1152, 1159, 1161})
_MY_TRANSIENT = frozenset({1205, 1213, 1040, 1203, 1637, 3572})
_MY_CONNECT = frozenset({1045, 1049, 1044, 1251, 2005, 2059})
_MY_PERMISSION = frozenset({1142, 1143, 1227, 1370, 1044, 1095, 1211})
_MY_SCHEMA = frozenset({1146, 1054, 1071, 1118, 1060, 1050, 1061, 1072, 1170, 1074, 1101, 1163})
_MY_VALUE = frozenset(
    {1048, 1062, 1264, 1265, 1292, 1366, 1367, 1406, 1416, 1452, 1451, 3140, 3141, 4025, 1690, 3819, 1411, 1441}
)

# SQLite primary result codes
_SQLITE_TRANSIENT = frozenset({5, 6, 13, 10})  # BUSY, LOCKED, FULL, IOERR
_SQLITE_CONNECT = frozenset({14, 26})  # CANTOPEN, NOTADB
_SQLITE_PERMISSION = frozenset({3, 8, 23})  # PERM, READONLY, AUTH
_SQLITE_VALUE = frozenset({18, 19, 20, 25})  # TOOBIG, CONSTRAINT, MISMATCH, RANGE
_SQLITE_SCHEMA = frozenset({1, 17})  # ERROR (no such table/column), SCHEMA


def translate(exc: BaseException, *, sink: str, doing: str, connecting: bool = False) -> CdcError:
    """The :mod:`cdc.errors` error for ``exc``; ``doing`` says what the sink was doing ("applying shop.orders").

    ``connecting``: the error happened while first connecting (a refused or failed connection is
    then a :class:`~cdc.errors.ConnectError`, not a lost connection to retry).
    Raise the result ``from exc``.
    """
    if isinstance(exc, CdcError):
        return exc
    orig: BaseException = exc
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        orig = exc.orig
    where = f"sink {sink!r}: {doing}"
    module = type(orig).__module__.split(".")[0]
    if module == "psycopg":
        return _psycopg(orig, where, connecting)
    if module == "pymysql":
        return _pymysql(orig, where, connecting)
    if isinstance(orig, sqlite3.Error):
        return _sqlite(orig, where)
    if isinstance(orig, TimeoutError | ConnectionError | OSError):
        cls: type[CdcError] = ConnectError if connecting else ConnectionLostError
        return cls(f"{where}: the connection failed ({type(orig).__name__}: {_first_line(orig)})")
    if isinstance(exc, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return ConnectionLostError(f"{where}: the connection failed ({_first_line(exc)})")
    if isinstance(exc, sa_exc.NoSuchTableError):
        return SchemaError(f"{where}: the target table {_first_line(exc)} does not exist")
    return TerminalError(f"{where}: {type(orig).__name__}: {_first_line(orig)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _psycopg(exc: BaseException, where: str, connecting: bool) -> CdcError:
    import psycopg

    state: str | None = getattr(exc, "sqlstate", None)
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = (primary or _first_line(exc)).strip()
    if state:
        text = f"{text} [SQLSTATE {state}]"
    if state is None:
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            if connecting:
                return ConnectError(f"{where}: cannot connect to PostgreSQL: {text}")
            return ConnectionLostError(f"{where}: the connection to PostgreSQL failed: {text}")
        return TerminalError(f"{where}: {text}")
    cls = state[:2]
    if cls == "08" or state in _PG_LOST:
        if connecting:
            return ConnectError(f"{where}: cannot connect to PostgreSQL: {text}")
        return ConnectionLostError(f"{where}: the connection to PostgreSQL failed: {text}")
    if cls == "28" or state == "3D000":
        return ConnectError(f"{where}: PostgreSQL refused the connection: {text}")
    if state == "42501":
        return PermissionDeniedError(f"{where}: a privilege is missing: {text}")
    if state in _PG_TRANSIENT or cls == "40":
        return TransientError(f"{where}: PostgreSQL asked to retry: {text}")
    if state in _PG_SCHEMA:
        return SchemaError(f"{where}: the target table does not match: {text}")
    if cls in ("22", "23"):
        return TargetValueError(f"{where}: PostgreSQL rejected a value: {text}")
    return TerminalError(f"{where}: PostgreSQL error: {text}")


def _pymysql(exc: BaseException, where: str, connecting: bool) -> CdcError:
    import pymysql

    args: tuple[Any, ...] = getattr(exc, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    message = str(args[1]) if len(args) > 1 else _first_line(exc)
    text = f"{message} [error {code}]" if code is not None else message
    if code in _MY_CONNECT and (connecting or code != 1044):
        return ConnectError(f"{where}: MySQL refused the connection: {text}")
    if code in _MY_LOST or (code is None and isinstance(exc, pymysql.err.InterfaceError)) or code == 0:
        if connecting:
            return ConnectError(f"{where}: cannot connect to MySQL: {text}")
        return ConnectionLostError(f"{where}: the connection to MySQL failed: {text}")
    if code in _MY_PERMISSION:
        return PermissionDeniedError(f"{where}: a privilege is missing: {text}")
    if code in _MY_TRANSIENT:
        return TransientError(f"{where}: MySQL asked to retry: {text}")
    if code in _MY_SCHEMA:
        return SchemaError(f"{where}: the target table does not match: {text}")
    if code in _MY_VALUE or isinstance(exc, pymysql.err.DataError | pymysql.err.IntegrityError):
        return TargetValueError(f"{where}: MySQL rejected a value: {text}")
    return TerminalError(f"{where}: MySQL error: {text}")


def _sqlite(exc: sqlite3.Error, where: str) -> CdcError:
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    name = getattr(exc, "sqlite_errorname", None)
    text = f"{_first_line(exc)} [{name}]" if name else _first_line(exc)
    if primary in _SQLITE_TRANSIENT:
        return TransientError(f"{where}: SQLite asked to retry: {text}")
    if primary in _SQLITE_CONNECT:
        return ConnectError(f"{where}: cannot open the SQLite database: {text}")
    if primary in _SQLITE_PERMISSION:
        return PermissionDeniedError(f"{where}: SQLite refused to write: {text}")
    if primary in _SQLITE_VALUE or isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError):
        return TargetValueError(f"{where}: SQLite rejected a value: {text}")
    if primary in _SQLITE_SCHEMA:
        return SchemaError(f"{where}: the target table does not match: {text}")
    if isinstance(exc, sqlite3.ProgrammingError | sqlite3.InterfaceError):
        return TerminalError(f"{where}: SQLite error: {text}")
    return TerminalError(f"{where}: SQLite error: {text}")

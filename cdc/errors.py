"""The one error tree of cdc.

Every error that cdc raises on purpose is a :class:`CdcError`. Driver and library
errors are translated at the boundary where they occur (``raise X(...) from exc``),
so code above a connector never sees a driver exception. Whether an operation is
retried is decided by type, never by matching message text::

    CdcError
    ├── ConfigError                 the configuration is invalid (every problem listed)
    ├── TransientError              retry with back-off: the same call may succeed later
    │   └── ConnectionLostError     a server went away or a network call timed out
    └── TerminalError               retrying cannot help; stop with a clear message
        ├── ConnectError            cannot connect: wrong host, port, password or database
        ├── PermissionDeniedError   a grant or role attribute is missing
        ├── ServerSettingError      a server setting prevents capture (e.g. binlog_format)
        ├── PositionLostError       the stored position is gone (purged binlog, dropped slot)
        ├── SchemaError             a table's schema is unknown or cannot be mapped
        ├── DecodeError             bytes or a message could not be decoded (poison input)
        ├── TargetValueError        the target cannot hold a value (never truncated silently)
        ├── ListenError             cdc cannot listen on a configured address (port in use, foreign host)
        └── BackupError             a backup cannot be used: missing, wrong key, refused restore
            └── BackupCorruptError  a backup's manifest or a data file fails its checksum or MAC

Messages are one paragraph written for the user, and never contain a secret: use
:func:`cdc.errors.redact` on anything that may carry a URL or a password.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "BackupCorruptError",
    "BackupError",
    "CdcError",
    "ConfigError",
    "ConnectError",
    "ConnectionLostError",
    "DecodeError",
    "ListenError",
    "PermissionDeniedError",
    "PositionLostError",
    "SchemaError",
    "ServerSettingError",
    "TargetValueError",
    "TerminalError",
    "TransientError",
    "redact",
]


class CdcError(Exception):
    """Base of every error cdc raises on purpose.

    ``hint`` is an optional sentence telling the user what to do about it.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(redact(message))
        self.hint = redact(hint) if hint else None

    def __str__(self) -> str:
        text = super().__str__()
        if not self.hint:
            return text
        if text.endswith((".", "!", "?", ":", ";")):
            return f"{text} {self.hint}"
        return f"{text}. {self.hint[:1].upper()}{self.hint[1:]}"  # two sentences, not one run-on


class ConfigError(CdcError):
    """The configuration is invalid. ``problems`` lists every problem found, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = [redact(p) for p in problems]
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(
            f"the configuration has {len(problems)} {noun}:\n" + "\n".join(f"  - {p}" for p in self.problems)
        )


class TransientError(CdcError):
    """Retrying the same operation later may succeed (the supervisor backs off and retries)."""


class ConnectionLostError(TransientError):
    """A connection dropped or a network call timed out."""


class TerminalError(CdcError):
    """Retrying cannot help: the component stops and the process exits non-zero."""


class ConnectError(TerminalError):
    """A connection could not be made: wrong host, port, credentials or database."""


class PermissionDeniedError(TerminalError):
    """A grant or role attribute that cdc needs is missing."""


class ServerSettingError(TerminalError):
    """A server setting prevents correct capture (for example ``binlog_format`` is not ROW)."""


class PositionLostError(TerminalError):
    """The stored position no longer exists on the server (purged binlog, dropped or recreated slot)."""


class SchemaError(TerminalError):
    """A table's schema is unknown at this position, or cannot be mapped to the target."""


class DecodeError(TerminalError):
    """Input could not be decoded: a malformed protocol message or a poison envelope."""


class TargetValueError(TerminalError):
    """The target cannot hold a value; cdc never truncates silently."""


class ListenError(TerminalError):
    """cdc cannot open a listening socket on a configured address (e.g. ``metrics.listen``): the port is
    in use, the address does not belong to this machine, or binding it needs privileges."""


class BackupError(TerminalError):
    """A backup cannot be used as asked: it does not exist, needs a key that is not configured, or a
    restore was asked of a target that already holds a different restore."""


class BackupCorruptError(BackupError):
    """A backup failed verification: its manifest's seal or MAC, a data file's SHA-256, an AES-GCM tag,
    or a row count does not match. Nothing of it is trusted."""


_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]*)@")
_KV_PASSWORD = re.compile(r"(?i)\b(password|passwd|pwd|secret|token)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&]+)")


def redact(text: str) -> str:
    """Return ``text`` with passwords in URLs and ``password=...`` pairs replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _KV_PASSWORD.sub(lambda m: f"{m[1]}{m[2]}***", text)


def redact_url(url: str) -> str:
    """A URL with its password removed, for display."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    host = netloc[-1]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))

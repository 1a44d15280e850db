"""Source positions: ordered, serializable and versioned.

A position names a point in a source's change log **between** transactions: resuming
from it delivers exactly the transactions committed after it. Positions of one source are
totally ordered, and :meth:`Position.sort_key` gives strings that sort in log order, so
stored positions can be compared without parsing. :meth:`Position.to_dict` carries a format
version ``v``; :func:`position_from_dict` refuses versions it does not know instead of
guessing.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import total_ordering
from typing import Any, ClassVar

from cdc.errors import DecodeError

__all__ = [
    "MySqlPosition",
    "PgPosition",
    "Position",
    "SourceOffset",
    "format_lsn",
    "parse_lsn",
    "pg_position",
    "position_from_dict",
]

FORMAT_VERSION = 1
OFFSET_FORMAT_VERSION = 1


@total_ordering
class Position(ABC):
    """A point between two transactions of one source's log."""

    kind: ClassVar[str]

    @abstractmethod
    def sort_key(self) -> str:
        """A string that sorts in log order among positions of the same source."""

    @abstractmethod
    def _fields(self) -> dict[str, Any]: ...

    def to_dict(self) -> dict[str, Any]:
        return {"v": FORMAT_VERSION, "kind": self.kind, **self._fields()}

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Position) or other.kind != self.kind:
            return NotImplemented
        return self.sort_key() < other.sort_key()

    def __str__(self) -> str:
        """The position as a person (and ``cdc restore --until``) writes it."""
        return self.sort_key()


_BINLOG_NAME = re.compile(r"^(?P<base>.*)\.(?P<seq>\d+)$")


@dataclass(frozen=True, eq=True)
class MySqlPosition(Position):
    """A binlog position: the file and offset of the next event after a commit, and the GTID set
    executed up to it (MariaDB ``domain-server-seq`` list or MySQL ``uuid:interval`` set), if any.

    Order follows (file sequence number, offset); the GTID set is what resumes across a
    failover, where file names change.
    """

    kind: ClassVar[str] = "mysql"
    file: str
    pos: int
    gtid_set: str | None = None
    server_id: int | None = None

    def sort_key(self) -> str:
        m = _BINLOG_NAME.match(self.file)
        base, seq = (m["base"], int(m["seq"])) if m else (self.file, 0)
        return f"mysql:{base}:{seq:012d}:{self.pos:020d}"

    def _fields(self) -> dict[str, Any]:
        return {"file": self.file, "pos": self.pos, "gtid_set": self.gtid_set, "server_id": self.server_id}

    def __str__(self) -> str:
        text = f"{self.file}:{self.pos}"
        return f"{text} (GTID {self.gtid_set})" if self.gtid_set else text

    def __hash__(self) -> int:
        return hash((self.file, self.pos, self.gtid_set, self.server_id))


@dataclass(frozen=True, eq=True)
class PgPosition(Position):
    """A WAL position: ``lsn`` is the end LSN of the last transaction fully delivered
    (the flush LSN to confirm to the slot). ``txid`` is that transaction's id, when known."""

    kind: ClassVar[str] = "postgres"
    lsn: int
    txid: int | None = None

    def sort_key(self) -> str:
        return f"postgres:{self.lsn:016X}"

    def _fields(self) -> dict[str, Any]:
        return {"lsn": format_lsn(self.lsn), "txid": self.txid}

    def __str__(self) -> str:
        return format_lsn(self.lsn)

    def __hash__(self) -> int:
        return hash((self.lsn, self.txid))


def pg_position(lsn: int, txid: int | None, _new: Any = object.__new__, _cls: Any = PgPosition) -> PgPosition:
    """``PgPosition(lsn, txid)`` without the frozen dataclass's per-field ``object.__setattr__``
    (a change event carries one per row on the capture path): the same value, half the time."""
    position: PgPosition = _new(_cls)
    position.__dict__.update(lsn=lsn, txid=txid)
    return position


def format_lsn(lsn: int) -> str:
    """PostgreSQL's text form ``XXX/XXXXXXXX``."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    hi, slash, lo = text.partition("/")
    if not slash:
        raise ValueError(f"not an LSN: {text!r}")
    return (int(hi, 16) << 32) | int(lo, 16)


def position_from_dict(data: dict[str, Any]) -> Position:
    """Rebuild a position stored by :meth:`Position.to_dict`; raises DecodeError for anything else."""
    try:
        version = data["v"]
        kind = data["kind"]
        if version != FORMAT_VERSION:
            raise DecodeError(f"stored position has format version {version}; this cdc reads {FORMAT_VERSION}")
        if kind == MySqlPosition.kind:
            sid = data.get("server_id")
            return MySqlPosition(
                str(data["file"]), int(data["pos"]), data.get("gtid_set"), int(sid) if sid is not None else None
            )
        if kind == PgPosition.kind:
            txid = data.get("txid")
            return PgPosition(parse_lsn(str(data["lsn"])), int(txid) if txid is not None else None)
    except DecodeError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"malformed stored position {data!r}: {exc}") from exc
    raise DecodeError(f"unknown position kind {kind!r}")


@dataclass
class SourceOffset:
    """What a source stores to resume: its position, its phase and its snapshot progress.

    ``phase`` is ``snapshot`` or ``streaming``. During a snapshot, ``position`` is where
    streaming will start once the snapshot ends, and ``snapshot`` holds the progress
    (completed tables, the last key of the current table) so a crash resumes from the last
    completed chunk. ``snapshot["chunk"]`` counts completed chunks, so snapshot offsets order.
    """

    position: Position | None
    phase: str = "streaming"
    snapshot: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def order_key(self) -> tuple[int, int, str]:
        """Sorts offsets of one source in log order: snapshot chunks (by their ``chunk`` counter)
        before streaming, then by position."""
        pos = self.position.sort_key() if self.position is not None else ""
        if self.phase == "snapshot":
            return (0, int(self.snapshot.get("chunk", 0)), pos)
        return (1, 0, pos)

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": OFFSET_FORMAT_VERSION,
            "position": self.position.to_dict() if self.position is not None else None,
            "phase": self.phase,
            "snapshot": self.snapshot,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceOffset:
        if not isinstance(data, dict) or data.get("v") != OFFSET_FORMAT_VERSION:
            raise DecodeError(f"stored offset has an unknown format: {str(data)[:200]}")
        pos = data.get("position")
        return cls(
            position=position_from_dict(pos) if pos is not None else None,
            phase=str(data.get("phase", "streaming")),
            snapshot=dict(data.get("snapshot") or {}),
            extra=dict(data.get("extra") or {}),
        )

"""Executed GTID sets, MariaDB's and MySQL's, as the source records and resumes from them.

* **MariaDB**: ``domain-server-sequence`` per replication domain, the last transaction of each
  domain (``@@gtid_binlog_pos``; what ``slave_connect_state`` takes), e.g. ``0-1-100,1-2-7``.
* **MySQL**: ``uuid:interval[:interval...]`` per source server (``@@gtid_executed``), e.g.
  ``3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7``; a tag (MySQL 8.3+) starts its own set of
  intervals (``uuid:tag:1-3``).

Adding a transaction's GTID keeps the set canonical (sorted, merged intervals), so the set a
checkpoint stores is exactly what a ``COM_BINLOG_DUMP_GTID`` (MySQL) or ``slave_connect_state``
(MariaDB) start needs after a failover, when binlog file names and offsets differ.
"""

from __future__ import annotations

import re

from cdc.errors import DecodeError

__all__ = ["GtidSet"]

_MARIADB = re.compile(r"^(\d+)-(\d+)-(\d+)$")
_INTERVAL = re.compile(r"^(\d+)(?:-(\d+))?$")


class GtidSet:
    """A mutable executed GTID set of one flavour (decided by the first GTID it holds)."""

    __slots__ = ("_domains", "_intervals")

    def __init__(self, text: str | None = None) -> None:
        self._domains: dict[int, tuple[int, int]] = {}  # MariaDB: domain -> (server, sequence)
        self._intervals: dict[str, list[list[int]]] = {}  # MySQL: uuid[:tag] -> sorted [start, end]
        for raw in (text or "").replace("\n", "").split(","):
            if raw.strip():
                self._parse(raw.strip(), text or "")

    def _parse(self, part: str, whole: str) -> None:
        m = _MARIADB.match(part)
        if m:
            self._domains[int(m[1])] = (int(m[2]), int(m[3]))
            return
        pieces = part.split(":")
        if len(pieces) < 2:
            raise DecodeError(f"not a GTID set: {whole!r}")
        key = pieces[0].lower()
        for piece in pieces[1:]:
            iv = _INTERVAL.match(piece)
            if iv is None:  # a tag: the intervals after it are the tagged GTIDs'
                key = f"{pieces[0]}:{piece}".lower()
                continue
            start = int(iv[1])
            end = int(iv[2]) if iv[2] else start
            if end < start:
                raise DecodeError(f"GTID interval {piece} ends before it starts in {whole!r}")
            self._add_range(key, start, end)

    def _add_range(self, key: str, start: int, end: int) -> None:
        merged: list[list[int]] = []
        for lo, hi in sorted([*self._intervals.get(key, []), [start, end]]):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        self._intervals[key] = merged

    def add(self, gtid: str) -> None:
        """Record one transaction's GTID (``d-s-n`` or ``uuid[:tag]:n``)."""
        m = _MARIADB.match(gtid)
        if m:
            self._domains[int(m[1])] = (int(m[2]), int(m[3]))
            return
        key, sep, number = gtid.rpartition(":")
        if not sep or not number.isdigit():
            raise DecodeError(f"not a GTID: {gtid!r}")
        n = int(number)
        intervals = self._intervals.get(key.lower())
        if intervals and intervals[-1][1] + 1 == n:  # the usual case: the next one
            intervals[-1][1] = n
        else:
            self._add_range(key.lower(), n, n)

    def copy(self) -> GtidSet:
        return GtidSet(str(self))

    def __bool__(self) -> bool:
        return bool(self._domains or self._intervals)

    def __str__(self) -> str:
        if self._domains:
            return ",".join(f"{d}-{s}-{n}" for d, (s, n) in sorted(self._domains.items()))
        out = []
        for key in sorted(self._intervals):
            spans = ":".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in self._intervals[key])
            out.append(f"{key}:{spans}")
        return ",".join(out)

    def __repr__(self) -> str:
        return f"GtidSet({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GtidSet) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

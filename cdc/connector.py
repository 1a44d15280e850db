"""The contracts between the core and the connectors: :class:`Source` and :class:`Sink`.

A connector is one subpackage of ``connectors/`` that implements one of these and is
registered in :mod:`cdc.registry`. The core calls the methods in the order documented on
each; connectors translate their driver's errors into :mod:`cdc.errors` at the boundary.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdc.events import ChangeEvent, Item, SchemaChange
from cdc.positions import SourceOffset

__all__ = ["Problem", "Sink", "Source"]


@dataclass(frozen=True)
class Problem:
    """One thing ``cdc check`` found wrong: where, what, and how to fix it."""

    component: str  # "source", "bus", "sink:NAME", "config"
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        return f"{self.component}: {self.message}" + (f" ({self.hint})" if self.hint else "")


class Source(ABC):
    """Captures a database's changes.

    Call order: :meth:`check` (optional) → :meth:`open` → :meth:`read_batch` repeatedly,
    interleaved with :meth:`acknowledge` → :meth:`close`.
    """

    @abstractmethod
    def check(self) -> list[Problem]:
        """Every problem that would stop capture: connectivity, server settings, grants, the stored
        position still being on the server. Never raises for an expected problem."""

    @abstractmethod
    def open(self, start: SourceOffset | None) -> None:
        """Prepare to read strictly after ``start`` (None: a first start, snapshot per config).

        Raises :class:`~cdc.errors.PositionLostError` when ``start`` is no longer available.
        """

    @abstractmethod
    def read_batch(self, max_items: int, timeout_s: float) -> Sequence[Item]:
        """The next items in log order: at most ``max_items`` (a little more is allowed to finish a
        row event), possibly none, never blocking longer than ``timeout_s``.

        Every table's first :class:`ChangeEvent` is preceded by a :class:`SchemaChange` for it;
        every transaction is followed by a :class:`Checkpoint`, also when all its changes were
        filtered out.
        """

    @abstractmethod
    def acknowledge(self, offset: SourceOffset) -> None:
        """Everything up to ``offset`` is durable downstream (PostgreSQL: confirm the flush LSN)."""

    @abstractmethod
    def close(self) -> None: ...

    def check_position(self, offset: SourceOffset) -> list[Problem]:
        """Problems with resuming from a stored ``offset`` (purged binlog, another server, a dropped
        slot), for ``cdc check``. Never raises for an expected problem. Default: none known."""
        return []

    def start_offset(self) -> SourceOffset | None:
        """After :meth:`open` without a stored offset: where streaming starts, to be stored before
        anything else so that a crash before the first checkpoint resumes there and not later.
        None when the source itself keeps that position durable (a PostgreSQL slot) or a
        snapshot runs first."""
        return None

    def snapshot_progress(self) -> dict[str, Any] | None:
        """While a snapshot runs: ``{"table", "rows", "rows_total_estimate", "tables_done",
        "tables_total", "estimates": {table: rows}}``; None otherwise. Cheap; called per batch."""
        return None

    def status(self) -> dict[str, Any]:
        """Source-side facts for ``cdc status`` (e.g. PostgreSQL: the WAL the slot retains, in
        bytes). Opens its own short connection; does not need :meth:`open`."""
        return {}


class Sink(ABC):
    """Applies change events to a target.

    Call order: :meth:`check` (optional) → :meth:`open` → :meth:`applied` →
    :meth:`write_batch` repeatedly → :meth:`close`.
    """

    @abstractmethod
    def check(self) -> list[Problem]: ...

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def applied(self, pipeline: str) -> SourceOffset | None:
        """The source offset stored with the rows by the last :meth:`write_batch` (direct bus)."""

    def applied_partitions(self, pipeline: str) -> dict[tuple[str, int], int]:
        """The next Kafka offset to read per topic partition, stored with the rows (Kafka bus)."""
        return {}

    @abstractmethod
    def apply_schema(self, change: SchemaChange) -> None:
        """Create or evolve the target table, as ``schema_evolution`` allows."""

    @abstractmethod
    def write_batch(
        self,
        pipeline: str,
        events: Sequence[ChangeEvent],
        *,
        offset: SourceOffset | None = None,
        partitions: Mapping[tuple[str, int], int] | None = None,
    ) -> None:
        """Apply ``events`` and store the position in one target transaction: all or nothing.

        The position is the source ``offset`` (direct bus) or the next Kafka offset of every
        topic partition the events came from (Kafka bus).
        """

    @abstractmethod
    def close(self) -> None: ...

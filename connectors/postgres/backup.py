"""Backups of a PostgreSQL source: the initial snapshot's machinery, read once for ``cdc backup create``.

:func:`open_snapshot` is what :mod:`cdc.backup.create` loads for ``source.type: postgres``.

**Consistency without a lasting slot.** The backup opens a replication connection of its own
and creates a *temporary* logical slot on it (``CREATE_REPLICATION_SLOT cdc_backup_<random>
TEMPORARY LOGICAL pgoutput (SNAPSHOT 'export')``; ``EXPORT_SNAPSHOT`` before PostgreSQL 15).
PostgreSQL answers with the slot's *consistent point* and an exported snapshot that sees
exactly the transactions whose commit record lies before that point, and no other: the
transactions the pipeline's slot streams with an LSN at or after it are precisely the ones the
snapshot does not show. The rows are then read by :class:`connectors.postgres.snapshot.Snapshot`
(the initial snapshot's reader: ``REPEATABLE READ, READ ONLY``, primary-key chunks, the same
text converters as streaming) in a transaction that imports that snapshot
(``SET TRANSACTION SNAPSHOT``). Once imported, the view belongs to the reading transaction, so
the temporary slot is dropped at once (``DROP_REPLICATION_SLOT``) and the replication
connection closed: the slot lives for the few milliseconds between its creation and the
import, and a killed process takes it along (a temporary slot ends with its session). The
pipeline's own slot and publication are neither read from nor changed, and nothing is stored.

The backup's position is ``PgPosition(consistent point)``: a change event belongs to the backup
exactly when its transaction's commit LSN is below it (see
:data:`cdc.backup.restore.REPLAY_POSITION`).

**Tables.** Those ``tables``/``exclude_tables`` select, restricted, when the pipeline's
publication exists and does not publish all tables, to the tables it publishes (and, on
PostgreSQL 15+, to the columns it publishes): what the pipeline's initial snapshot would read.
Without the publication (the pipeline never ran), every selected table.

Creating the temporary slot needs the ``REPLICATION`` attribute (as the pipeline does), a free
replication slot and WAL sender, and waits, like any logical slot, until the transactions
running at that moment have ended.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterator, Sequence
from typing import Any

from cdc.errors import ConnectionLostError
from cdc.events import Item, TableId
from cdc.positions import PgPosition, Position, parse_lsn
from connectors.postgres.config import PostgresSourceConfig, libpq_url
from connectors.postgres.errors import connect_error, is_connection_loss, query_error

__all__ = ["PgBackupSnapshot", "open_snapshot"]

log = logging.getLogger("cdc.postgres")

_PUBLICATION_SQL = "SELECT puballtables FROM pg_catalog.pg_publication WHERE pubname = %s"
_PUBLISHED_SQL = "SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables WHERE pubname = %s"
_PUBLISHED_WITH_COLUMNS_SQL = (
    "SELECT schemaname, tablename, attnames::text[] FROM pg_catalog.pg_publication_tables WHERE pubname = %s"
)


class PgBackupSnapshot:
    """One consistent snapshot of the captured tables (see :class:`cdc.backup.create.BackupSnapshot`)."""

    def __init__(self, config: PostgresSourceConfig, prefix: str) -> None:
        from connectors.postgres.snapshot import Catalog

        self.cfg = config
        self.prefix = prefix
        self._url = libpq_url(config.url.get_secret_value())
        self._catalog = Catalog(config, self._connect)
        self._snapshot: Any = None
        self._iter: Iterator[list[Item]] | None = None
        self._position: PgPosition | None = None
        self.slot_name = f"cdc_backup_{secrets.token_hex(8)}"

    # ------------------------------------------------------------------ connections

    def _connect(self) -> Any:
        """A normal autocommit connection with the replication connection's session settings."""
        import psycopg

        from connectors.postgres.types import session_options

        try:
            return psycopg.connect(self._url, autocommit=True, options=session_options(), connect_timeout=10)
        except psycopg.Error as exc:
            raise connect_error(exc, self._url) from exc

    def _replication(self) -> Any:
        import psycopg

        from connectors.postgres.types import session_options

        try:
            return psycopg.connect(
                self._url, replication="database", autocommit=True, options=session_options(), connect_timeout=10
            )
        except psycopg.Error as exc:
            raise connect_error(exc, self._url) from exc

    # ------------------------------------------------------------------ the snapshot

    @property
    def position(self) -> Position | None:
        """The temporary slot's consistent point; known once the first batch was yielded."""
        return self._position

    def tables(self) -> list[Any]:
        """The tables to back up (:class:`~connectors.postgres.snapshot.SnapshotTable`), in catalog order."""
        from connectors.postgres.snapshot import TABLES_SQL, SnapshotTable

        cat = self._catalog
        published: dict[str, tuple[str, ...] | None] | None = None
        rows = cat.execute(_PUBLICATION_SQL, (self.cfg.publication,), doing="reading the publication")
        if rows and not rows[0][0]:
            with_columns = cat.server_version >= 150000
            published = {}
            for row in cat.execute(
                _PUBLISHED_WITH_COLUMNS_SQL if with_columns else _PUBLISHED_SQL,
                (self.cfg.publication,),
                doing="reading the publication",
            ):
                published[f"{row[0]}.{row[1]}"] = tuple(row[2]) if with_columns and row[2] is not None else None
        out = []
        for oid, schema, name in cat.execute(TABLES_SQL, doing="listing tables"):
            table = TableId(str(schema), str(name))
            if not self.cfg.includes(table.schema, table.table):
                continue
            if published is not None:
                if str(table) not in published:
                    continue
                out.append(SnapshotTable(int(oid), table, published[str(table)]))
            else:
                out.append(SnapshotTable(int(oid), table, None))
        return out

    def _begin(self) -> Any:
        """Create the temporary slot, import its snapshot into the reading transaction, drop the slot."""
        from psycopg import sql

        from connectors.postgres.snapshot import Snapshot

        self._catalog.conn()
        repl = self._replication()
        try:
            version = int(repl.info.server_version)
            head = sql.SQL("CREATE_REPLICATION_SLOT {} TEMPORARY LOGICAL pgoutput ").format(
                sql.Identifier(self.slot_name)
            )
            tail = sql.SQL("(SNAPSHOT 'export')" if version >= 150000 else "EXPORT_SNAPSHOT")
            try:
                row = repl.execute(head + tail).fetchone()
            except Exception as exc:
                raise query_error(exc, "creating the backup's temporary replication slot") from exc
            assert row is not None
            start = PgPosition(parse_lsn(str(row[1])))
            exported = str(row[2])
            snapshot = Snapshot(
                self.cfg,
                self.prefix,
                self._catalog,
                connect=self._connect,
                start=start,
                tables=self.tables(),
                resume=None,
            )
            snapshot.begin(exported)  # from here on the view is the snapshot transaction's own
            try:
                repl.execute(sql.SQL("DROP_REPLICATION_SLOT {}").format(sql.Identifier(self.slot_name)))
            except Exception as exc:
                snapshot.close()
                raise query_error(exc, "dropping the backup's temporary replication slot") from exc
        finally:
            with contextlib.suppress(Exception):  # closing ends the session, and with it a temporary slot
                repl.close()
        self._position = start
        return snapshot

    def batches(self) -> Iterator[Sequence[Item]]:
        """The snapshot's items: the definitions first, then ``op: r`` rows (and chunk checkpoints)."""
        import psycopg

        self._snapshot = self._begin()
        self._iter = self._snapshot.items()
        try:
            yield from self._iter
        except psycopg.Error as exc:  # the reader translates its own statements' errors; this is a safety net
            if is_connection_loss(exc):
                raise ConnectionLostError(f"the PostgreSQL source went away during the backup: {exc}") from exc
            raise query_error(exc, "reading the backup's snapshot") from exc

    def progress(self) -> dict[str, Any] | None:
        return self._snapshot.progress.view() if self._snapshot is not None else None

    def close(self) -> None:
        if self._iter is not None:
            self._iter.close()  # type: ignore[attr-defined]
            self._iter = None
        if self._snapshot is not None:
            self._snapshot.close()
        self._catalog.close()


def open_snapshot(config: PostgresSourceConfig, prefix: str) -> PgBackupSnapshot:
    """The snapshot a backup of this source reads (called by :func:`cdc.backup.create.create_backup`)."""
    return PgBackupSnapshot(config, prefix)

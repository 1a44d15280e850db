"""Backups of a MySQL/MariaDB source: the initial snapshot's machinery, read once for ``cdc backup create``.

:func:`open_snapshot` is what :mod:`cdc.backup.create` loads for ``source.type: mysql``. The rows
come from :class:`connectors.mysql.snapshot.Snapshot` (one consistent-snapshot transaction,
primary-key chunks, the same value converters as streaming), so a backup holds exactly what an
initial snapshot would publish. Writes go on meanwhile: MariaDB's ``binlog_snapshot_file`` /
``binlog_snapshot_position`` name the binlog position that matches the transaction's view without
any lock (MySQL 8: a brief ``FLUSH TABLES WITH READ LOCK`` while it starts).
No binlog connection is opened and no offset is stored: a backup leaves the pipeline untouched.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from cdc.errors import ConnectError, ConnectionLostError
from cdc.events import Item
from cdc.positions import Position
from connectors.mysql.config import MySqlSourceConfig

__all__ = ["MySqlBackupSnapshot", "open_snapshot"]


class MySqlBackupSnapshot:
    """One consistent snapshot of the captured tables (see :class:`cdc.backup.create.BackupSnapshot`)."""

    def __init__(self, config: MySqlSourceConfig, prefix: str) -> None:
        from sqlalchemy import create_engine

        from connectors.mysql.schema import TypeModes
        from connectors.mysql.snapshot import Snapshot
        from connectors.sql.config import sqlalchemy_url

        self._engine: Any = create_engine(sqlalchemy_url(config.url.get_secret_value()), pool_pre_ping=True)
        self._snapshot = Snapshot(config, prefix, self._engine, TypeModes.from_config(config), None)
        self._batch_rows = config.max_batch_events
        self._iter: Iterator[list[Item]] | None = None

    @property
    def position(self) -> Position | None:
        """The binlog position of the snapshot's view; known once the first batch was yielded."""
        return self._snapshot.start_position

    def batches(self) -> Iterator[Sequence[Item]]:
        """The snapshot's items: the definitions first, then ``op: r`` rows (and chunk checkpoints)."""
        from sqlalchemy import exc as sa_exc
        from sqlalchemy import text

        try:
            with self._engine.connect() as conn:
                server_id = int(conn.execute(text("SELECT @@server_id")).scalar_one())
        except sa_exc.DBAPIError as exc:
            raise ConnectError(f"cannot connect to the MySQL source: {exc.orig}") from exc
        self._iter = self._snapshot.items(server_id, self._batch_rows)
        try:
            yield from self._iter
        except sa_exc.OperationalError as exc:
            raise ConnectionLostError(f"the MySQL source went away during the backup: {exc.orig}") from exc

    def progress(self) -> dict[str, Any] | None:
        return self._snapshot.progress.view()

    def close(self) -> None:
        if self._iter is not None:
            self._iter.close()  # type: ignore[attr-defined]
            self._iter = None
        self._engine.dispose()


def open_snapshot(config: MySqlSourceConfig, prefix: str) -> MySqlBackupSnapshot:
    """The snapshot a backup of this source reads (called by :func:`cdc.backup.create.create_backup`)."""
    return MySqlBackupSnapshot(config, prefix)

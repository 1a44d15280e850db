"""The backups in a destination directory: list, verify, delete, prune, and their point-in-time windows.

Only complete backups (``<id>/`` with a manifest and a seal, see :mod:`cdc.backup.format`) are
backups. ``<id>.partial/`` directories are backups being written, or left by a killed writer:
:meth:`Catalog.partials` tells them apart by their lock, and :meth:`Catalog.prune` removes the
abandoned ones. A delete renames the directory to ``<id>.deleting`` before removing it, so an
interrupted delete never leaves a half-deleted backup that looks complete.

**Retention** (:func:`select_retained`): the union of the newest ``keep_last`` backups, the newest
backup of each of the ``keep_daily`` most recent UTC days that have one, and the newest of each
of the ``keep_weekly`` most recent ISO weeks that have one; the newest backup is always kept.
Backups are ordered by the time of their snapshot.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdc.backup.format import (
    MANIFEST,
    PARTIAL_SUFFIX,
    ChunkCodec,
    Manifest,
    count_native,
    partial_in_use,
    read_chunk,
    read_manifest,
    valid_backup_id,
)
from cdc.backup.keys import BackupKeys
from cdc.errors import BackupCorruptError, BackupError, CdcError

if TYPE_CHECKING:
    from cdc.backup.create import Reporter
    from cdc.config import BackupRetentionConfig

__all__ = ["Catalog", "Entry", "Partial", "PruneResult", "VerifyResult", "select_retained"]

_DELETING = ".deleting"


@dataclass
class Entry:
    """A complete backup as listed: ``status`` is ``ok`` (seal checked), ``unverified`` (its seal needs a
    key that is not configured; the manifest is shown as it claims to be) or ``corrupt`` (``problem`` says why)."""

    id: str
    path: Path
    manifest: Manifest | None
    status: str
    problem: str | None = None


@dataclass(frozen=True)
class Partial:
    """A ``.partial`` directory: a backup being written (``in_use``) or left by a killed writer."""

    id: str
    path: Path
    in_use: bool


@dataclass
class PruneResult:
    kept: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    removed_partials: list[str] = field(default_factory=list)


@dataclass
class VerifyResult:
    """A backup that passed :meth:`Catalog.verify`: every chunk read, checked and decoded."""

    manifest: Manifest
    seal: str  # "hmac-sha256" (authenticated) or "sha256" (corruption check only)
    chunks: int
    rows: int
    bytes: int


def select_retained(backups: Sequence[tuple[str, int]], keep_last: int, keep_daily: int, keep_weekly: int) -> set[str]:
    """The ids to keep among ``(id, snapshot time in epoch ms)``; see the module docstring for the rules."""
    ordered = sorted(backups, key=lambda b: (b[1], b[0]), reverse=True)
    keep: set[str] = set()
    if ordered:
        keep.add(ordered[0][0])
    keep.update(bid for bid, _ in ordered[:keep_last])

    def newest_per(period: Any, count: int) -> None:
        seen: list[Any] = []
        for bid, ms in ordered:
            key = period(datetime.fromtimestamp(ms / 1000, UTC))
            if key in seen:
                continue
            if len(seen) >= count:
                break
            seen.append(key)
            keep.add(bid)

    newest_per(lambda d: d.date(), keep_daily)
    newest_per(lambda d: d.isocalendar()[:2], keep_weekly)
    return keep


class Catalog:
    """The backups in one destination directory. ``keys`` are those of ``backups.encryption_key_file``."""

    def __init__(self, destination: Path, keys: BackupKeys | None) -> None:
        self.destination = destination
        self.keys = keys

    # ------------------------------------------------------------------ listing

    def _dirs(self) -> list[Path]:
        try:
            return sorted(p for p in self.destination.iterdir() if p.is_dir())
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise BackupError(f"cannot read the backup destination {self.destination}: {exc.strerror or exc}") from exc

    def entries(self) -> list[Entry]:
        """Every complete backup, oldest first (by snapshot time; unreadable ones by id, first)."""
        out: list[Entry] = []
        for path in self._dirs():
            name = path.name
            if name.endswith((PARTIAL_SUFFIX, _DELETING)) or not valid_backup_id(name):
                continue
            if not (path / MANIFEST).exists() and not any(path.iterdir()):
                continue
            try:
                out.append(Entry(name, path, read_manifest(path, self.keys), "ok"))
            except BackupCorruptError as exc:
                out.append(Entry(name, path, None, "corrupt", str(exc)))
            except BackupError as exc:
                out.append(Entry(name, path, self._unverified(path), "unverified", str(exc)))
        return sorted(out, key=lambda e: (e.manifest.snapshot_ms if e.manifest else 0, e.id))

    @staticmethod
    def _unverified(path: Path) -> Manifest | None:
        try:
            return Manifest.from_bytes((path / MANIFEST).read_bytes(), f"backup {path.name}")
        except (CdcError, OSError):
            return None

    def partials(self) -> list[Partial]:
        out = []
        for path in self._dirs():
            if path.name.endswith(PARTIAL_SUFFIX):
                out.append(Partial(path.name[: -len(PARTIAL_SUFFIX)], path, partial_in_use(path)))
        return out

    def good(self) -> list[Manifest]:
        """The manifests of the backups whose seal checks, oldest first."""
        return [e.manifest for e in self.entries() if e.status == "ok" and e.manifest is not None]

    def newest(self) -> Manifest | None:
        good = self.good()
        return good[-1] if good else None

    def load(self, backup_id: str) -> tuple[Path, Manifest]:
        """The backup ``backup_id`` (``latest``: the newest good one), its seal checked.

        Raises :class:`~cdc.errors.BackupError` when there is no such backup (naming the ones there
        are), :class:`~cdc.errors.BackupCorruptError` when its manifest fails its seal.
        """
        if backup_id == "latest":
            newest = self.newest()
            if newest is None:
                raise BackupError(f"there is no complete backup in {self.destination}")
            backup_id = newest.id
        path = self.destination / backup_id
        if not valid_backup_id(backup_id) or not path.is_dir():
            known = ", ".join(e.id for e in self.entries()[-5:]) or "none"
            partial = self.destination / (backup_id + PARTIAL_SUFFIX)
            why = (
                " (only an incomplete .partial directory exists)"
                if valid_backup_id(backup_id) and partial.is_dir()
                else ""
            )
            raise BackupError(f"no backup {backup_id!r} in {self.destination}{why}; the newest are: {known}")
        return path, read_manifest(path, self.keys)

    # ------------------------------------------------------------------ verify

    def verify(self, backup_id: str, progress: Reporter | None = None) -> VerifyResult:
        """Check the seal, then read every chunk: size, SHA-256, AES-GCM tag, zstd checksum, row count
        (JSON lines are parsed; native chunks are counted by their lines or their connector).

        Raises :class:`~cdc.errors.BackupCorruptError` at the first mismatch.
        """
        path, manifest = self.load(backup_id)
        seal = "hmac-sha256" if self.keys is not None else "sha256"
        codec = ChunkCodec(manifest.id, self.keys)
        where = f"backup {manifest.id}"
        task = progress.start_task(f"verify {manifest.id}", manifest.rows) if progress is not None else None
        chunks = rows = size = 0
        try:
            for entry in manifest.tables:
                got = 0
                native = entry.encoding != "jsonl"
                for chunk in entry.chunks:
                    data = read_chunk(path, chunk, where)
                    if native:  # counted by their lines, or by their connector
                        got += count_native(manifest.source, entry, codec.open(data, chunk, where), chunk, where)
                    else:
                        got += len(codec.decode(data, chunk, where))
                    chunks += 1
                    size += len(data)
                    if progress is not None:
                        progress.advance(task, chunk.rows)
                if got != entry.rows:
                    raise BackupCorruptError(f"{where}: {entry.table} holds {got} rows; the manifest says {entry.rows}")
                rows += got
        finally:
            if progress is not None:
                progress.finish(task)
        return VerifyResult(manifest, seal, chunks, rows, size)

    def check_files(self, path: Path, manifest: Manifest) -> None:
        """Every chunk's size and SHA-256 (no decoding): what a restore checks before it loads anything."""
        where = f"backup {manifest.id}"
        for entry in manifest.tables:
            for chunk in entry.chunks:
                ChunkCodec.check(read_chunk(path, chunk, where), chunk, where)

    # ------------------------------------------------------------------ delete, prune

    def delete(self, backup_id: str) -> None:
        """Remove a complete backup (also a corrupt one). BackupError if there is none of that id."""
        path = self.destination / backup_id
        if not valid_backup_id(backup_id) or not path.is_dir():
            raise BackupError(f"no backup {backup_id!r} in {self.destination}")
        self._remove(path)

    def _remove(self, path: Path) -> None:
        doomed = path.with_name(path.name + _DELETING)
        try:
            os.rename(path, doomed)
            shutil.rmtree(doomed)
        except OSError as exc:
            raise BackupError(f"cannot delete {path}: {exc.strerror or exc}") from exc

    def prune(self, retention: BackupRetentionConfig, *, dry_run: bool = False) -> PruneResult:
        """Delete the good backups the retention rules do not keep, abandoned ``.partial`` directories and
        leftovers of interrupted deletes. Corrupt and unverifiable backups are left for a person to judge."""
        good = self.good()
        keep = select_retained(
            [(m.id, m.snapshot_ms) for m in good], retention.keep_last, retention.keep_daily, retention.keep_weekly
        )
        result = PruneResult()
        for m in good:
            if m.id in keep:
                result.kept.append(m.id)
                continue
            result.deleted.append(m.id)
            if not dry_run:
                self._remove(self.destination / m.id)
        for partial in self.partials():
            if not partial.in_use:
                result.removed_partials.append(partial.id)
                if not dry_run:
                    with contextlib.suppress(FileNotFoundError):
                        shutil.rmtree(partial.path)
        if not dry_run:
            for path in self._dirs():
                if path.name.endswith(_DELETING):
                    shutil.rmtree(path, ignore_errors=True)
        return result

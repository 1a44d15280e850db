"""``cdc backup create|list|verify|delete|prune`` and ``cdc restore``, as click objects the main CLI attaches.

Exit codes as everywhere in cdc: 0 success; 1 the operation ran and found a problem (``verify``
found a damaged or altered backup); 2 usage, config or connection error, or a refused restore.
Errors are raised as :class:`~cdc.errors.CdcError` and printed by :func:`cdc.cli.main` as one
paragraph. Importing this module imports no database driver and no Kafka client.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cdc.errors import CdcError

if TYPE_CHECKING:
    from cdc.backup.catalog import Entry
    from cdc.backup.format import Manifest
    from cdc.backup.topics import Coverage
    from cdc.config import Config

__all__ = ["backup_group", "restore_command"]

EXIT_PROBLEM = 1

_CONFIG = click.option(
    "-c",
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The pipeline's YAML config file.",
)


def _load(config_path: Path) -> Config:
    from cdc.config import load_config

    return load_config(config_path)


# ---------------------------------------------------------------------------------------------
# Progress: cdc.progress when it is there, else rich directly (quiet when stderr is not a terminal)
# ---------------------------------------------------------------------------------------------


class _RichProgress:
    def __init__(self, title: str) -> None:
        self._bar: Any = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn(f"{title}: " + "{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.completed:,.0f} rows"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._bar.start()

    def start_task(self, name: str, total: int | None) -> Any:
        return self._bar.add_task(name, total=total) if self._bar is not None else None

    def advance(self, task: Any, n: int) -> None:
        if self._bar is not None:
            self._bar.advance(task, n)

    def finish(self, task: Any) -> None:
        if self._bar is not None:
            total = self._bar.tasks[task].completed if task is not None else 0
            self._bar.update(task, total=total or None, completed=total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


@contextmanager
def _progress(title: str) -> Iterator[Any]:
    try:
        from cdc.progress import Progress  # type: ignore[import-not-found, unused-ignore]

        bar: Any = Progress(title)
    except ImportError:
        bar = _RichProgress(title)
    try:
        yield bar
    finally:
        bar.close()


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    stop = threading.Event()

    def handler(_signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _metrics(config: Config) -> Any:
    try:
        from cdc.metrics import Metrics  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    return Metrics(config.name)


# ---------------------------------------------------------------------------------------------
# cdc backup ...
# ---------------------------------------------------------------------------------------------


@click.group("backup")
def backup_group() -> None:
    """Restore points: take, list, verify, delete and prune backups of the source tables.

    Configured in the 'backups:' section of the config file (destination, schedule, retention,
    encryption_key_file). Restore one with 'cdc restore'.
    """


@backup_group.command("create")
@_CONFIG
@click.option(
    "--schedule",
    "scheduled",
    is_flag=True,
    help="Keep running: take a backup every backups.schedule and prune after each, until SIGTERM.",
)
@click.option("--id", "backup_id", metavar="ID", help="Name the backup (default: <pipeline>-<UTC time>-<random>).")
def create_cmd(config_path: Path, scheduled: bool, backup_id: str | None) -> None:
    """Take a consistent backup of the source's tables now, while writes go on."""
    from cdc.backup.create import create_backup, run_schedule

    config = _load(config_path)
    if scheduled:
        metrics = _metrics(config)  # (a one-shot run exports no metrics: it would only pay for the import)
        if backup_id is not None:
            raise click.UsageError("--id names one backup; it cannot be used with --schedule")

        def report(manifest: Manifest, pruned: list[str]) -> None:
            click.echo(_created_line(manifest) + (f"; pruned {', '.join(pruned)}" if pruned else ""))

        with _stop_on_signals() as stop, _progress("backup") as bar:
            run_schedule(config, stop, progress=bar, metrics=metrics, on_backup=report)
        return
    with _progress("backup") as bar:
        manifest = create_backup(config, backup_id=backup_id, progress=bar)
    click.echo(_created_line(manifest))


def _created_line(m: Manifest) -> str:
    from cdc.backup.format import show_position

    seconds = (m.finished_ms - m.started_ms) / 1000
    return (
        f"backup {m.id}: {len(m.tables)} tables, {m.rows:,} rows, {_size(m.size)}"
        f"{' encrypted' if m.encryption else ''}, at {show_position(m.position)} ({seconds:.1f} s)"
    )


@backup_group.command("list")
@_CONFIG
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(config_path: Path, as_json: bool) -> None:
    """List complete backups and the point-in-time window each one supports.

    The window runs from the backup's own point to the newest change in the change topics, for as
    long as Kafka's retention keeps the changes made after the backup; a backup the topics no longer
    reach back to restores only to its own point (a warning says so).
    """
    from cdc.backup.catalog import Catalog
    from cdc.backup.create import backups_config, keys_for

    config = _load(config_path)
    catalog = Catalog(backups_config(config).destination, keys_for(config))
    entries = catalog.entries()
    partials = catalog.partials()
    coverage, window_problem = _coverage(config, entries)
    if as_json:
        click.echo(json.dumps(_list_json(entries, partials, coverage, window_problem), indent=2))
        return
    if not entries:
        click.echo(f"no complete backup in {catalog.destination}")
    else:
        header = f"{'ID':<40} {'TAKEN (UTC)':<19} {'POSITION':<28} {'ROWS':>11} {'SIZE':>10}  RESTORES TO"
        click.echo(header)
    from cdc.backup.format import show_position

    warnings: list[str] = []
    for e in entries:
        m = e.manifest
        if e.status == "corrupt" or m is None:
            click.echo(f"{e.id:<40} CORRUPT: {e.problem}")
            continue
        cov = coverage.get(e.id)
        click.echo(
            f"{e.id:<40} {_when(m.snapshot_ms):<19} {show_position(m.position)[-28:]:<28} {m.rows:>11,} "
            f"{_size(m.size):>10}  "
            f"{_window_text(m, cov, window_problem)}"
        )
        if e.status == "unverified":
            warnings.append(f"{e.id}: {e.problem}")
        if cov is not None and not cov.reaches_back:
            warnings.append(
                f"{e.id}: the change topics no longer reach back to this backup ({cov.problem}); it restores only "
                "to its own point in time"
            )
    for p in partials:
        state = "being written" if p.in_use else "abandoned (killed?); 'cdc backup prune' removes it"
        click.echo(f"incomplete: {p.id} ({state})")
    for w in warnings:
        click.echo(f"warning: {w}", err=True)


def _coverage(config: Config, entries: list[Entry]) -> tuple[dict[str, Coverage], str | None]:
    from cdc.config import KafkaBusConfig

    good = [e.manifest for e in entries if e.manifest is not None and e.status != "corrupt"]
    if not isinstance(config.bus, KafkaBusConfig):
        return {}, "no change topics (bus.type direct): each backup restores to its own point only"
    if not good:
        return {}, None
    from cdc.backup.topics import CLOCK_MARGIN_MS, ChangeTopics

    try:
        topics = ChangeTopics(config.bus.to_settings(), config.topic_prefix)
        found = topics.coverage([m.started_ms - CLOCK_MARGIN_MS for m in good])
    except CdcError as exc:
        return {}, f"the change topics could not be read: {exc}"
    return {m.id: c for m, c in zip(good, found, strict=True)}, None


def _window_text(m: Manifest, cov: Coverage | None, problem: str | None) -> str:
    if cov is None:
        return f"{_when(m.snapshot_ms)} only" + (f" ({problem})" if problem and "direct" not in problem else "")
    if not cov.reaches_back:
        return f"{_when(m.snapshot_ms)} only (changes after it were deleted)"
    text = f"{_when(m.snapshot_ms)} .. now"
    if cov.expires_ms is not None:
        text += f" (retention keeps this until about {_when(cov.expires_ms)})"
    return text


def _list_json(
    entries: list[Entry], partials: list[Any], coverage: dict[str, Coverage], problem: str | None
) -> dict[str, Any]:
    rows = []
    for e in entries:
        m = e.manifest
        item: dict[str, Any] = {"id": e.id, "status": e.status, "problem": e.problem}
        if m is not None:
            cov = coverage.get(e.id)
            item.update(
                {
                    "pipeline": m.pipeline,
                    "source": m.source,
                    "position": m.position.to_dict(),
                    "snapshot_ms": m.snapshot_ms,
                    "started_ms": m.started_ms,
                    "finished_ms": m.finished_ms,
                    "tables": {str(t.table): t.rows for t in m.tables},
                    "rows": m.rows,
                    "size_bytes": m.size,
                    "encrypted": m.encryption is not None,
                    "window": {
                        "from_ms": m.snapshot_ms,
                        "replay": cov.reaches_back if cov is not None else False,
                        "expires_ms": cov.expires_ms if cov is not None else None,
                        "problem": cov.problem if cov is not None else problem,
                    },
                }
            )
        rows.append(item)
    return {
        "backups": rows,
        "incomplete": [{"id": p.id, "in_use": p.in_use} for p in partials],
    }


@backup_group.command("verify")
@_CONFIG
@click.argument("backup_ids", metavar="[ID]...", nargs=-1)
@click.option("--all", "verify_all", is_flag=True, help="Verify every complete backup.")
def verify_cmd(config_path: Path, backup_ids: tuple[str, ...], verify_all: bool) -> None:
    """Check backups completely: the manifest's seal (HMAC with a key), then every data file's SHA-256,
    AES-GCM tag, compression checksum and row count. Exit 1 if any backup fails."""
    from cdc.backup.catalog import Catalog
    from cdc.backup.create import backups_config, keys_for
    from cdc.errors import BackupCorruptError

    config = _load(config_path)
    catalog = Catalog(backups_config(config).destination, keys_for(config))
    ids = list(backup_ids)
    if verify_all:
        ids += [e.id for e in catalog.entries() if e.id not in ids]
    if not ids:
        raise click.UsageError("name the backups to verify (or 'latest'), or give --all")
    failed = 0
    with _progress("verify") as bar:
        for bid in ids:
            try:
                result = catalog.verify(bid, bar)
            except BackupCorruptError as exc:
                failed += 1
                click.echo(f"{bid}: FAILED: {exc}", err=True)
                continue
            how = "authenticated (HMAC-SHA256)" if result.seal == "hmac-sha256" else "checksums match (SHA-256)"
            click.echo(f"{result.manifest.id}: ok, {result.chunks} chunks, {result.rows:,} rows, {how}")
    if failed:
        raise click.exceptions.Exit(EXIT_PROBLEM)


@backup_group.command("delete")
@_CONFIG
@click.argument("backup_ids", metavar="ID...", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def delete_cmd(config_path: Path, backup_ids: tuple[str, ...], yes: bool) -> None:
    """Delete backups."""
    from cdc.backup.catalog import Catalog
    from cdc.backup.create import backups_config

    config = _load(config_path)
    catalog = Catalog(backups_config(config).destination, None)
    if not yes and not click.confirm(f"delete {len(backup_ids)} backup(s): {', '.join(backup_ids)}?", err=True):
        raise click.exceptions.Exit(EXIT_PROBLEM)
    for bid in backup_ids:
        catalog.delete(bid)
        click.echo(f"deleted {bid}")


@backup_group.command("prune")
@_CONFIG
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
def prune_cmd(config_path: Path, dry_run: bool) -> None:
    """Delete the backups backups.retention does not keep, and abandoned incomplete ones.

    Kept: the newest keep_last, the newest of each of the keep_daily most recent days and of the
    keep_weekly most recent ISO weeks (UTC). Corrupt backups are left for you to look at.
    """
    from cdc.backup.catalog import Catalog
    from cdc.backup.create import backups_config, keys_for

    config = _load(config_path)
    cfg = backups_config(config)
    result = Catalog(cfg.destination, keys_for(config)).prune(cfg.retention, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for bid in result.deleted:
        click.echo(f"{verb} {bid}")
    for bid in result.removed_partials:
        click.echo(f"{verb} incomplete {bid}.partial")
    click.echo(f"kept {len(result.kept)} backup(s)")


# ---------------------------------------------------------------------------------------------
# cdc restore
# ---------------------------------------------------------------------------------------------


def _split_tables(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    return [t.strip() for v in value for t in v.split(",") if t.strip()]


@click.command("restore")
@_CONFIG
@click.option("--backup", "backup_id", required=True, metavar="ID", help="The backup to restore, or 'latest'.")
@click.option(
    "--target",
    required=True,
    metavar="URL",
    help="SQLAlchemy URL of the target (postgresql, mysql, mariadb, sqlite), or sink:NAME for a configured sink's.",
)
@click.option(
    "--tables",
    multiple=True,
    callback=_split_tables,
    metavar="PATTERNS",
    help="Only these tables: db.table patterns, comma-separated or repeated (default: all).",
)
@click.option(
    "--until",
    metavar="TIME|POSITION",
    help="Replay the change topics up to this source commit time (ISO-8601, UTC when no zone is given) or "
    "position (binlog FILE:POS, PostgreSQL LSN); 'backup' replays nothing. Default: everything Kafka holds.",
)
@click.option("--follow", is_flag=True, help="After the replay, keep applying new changes until SIGTERM.")
@click.option(
    "--parallel",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Chunks loaded at once (of one table or several), each in its own target transaction.",
)
@click.option("--batch-size", default=5000, show_default=True, type=click.IntRange(1), help="Events per transaction.")
def restore_command(
    *,
    config_path: Path,
    backup_id: str,
    target: str,
    tables: list[str],
    until: str | None,
    follow: bool,
    parallel: int,
    batch_size: int,
) -> None:
    """Restore a backup into a target database, then replay the change topics to a point in time.

    Re-running a killed restore with the same arguments finishes it. The target should be empty.
    """
    from cdc.backup.restore import Until, restore

    config = _load(config_path)
    try:
        stop_at = Until.parse(until) if until is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--until") from None
    with _stop_on_signals() as stop, _progress("restore") as bar:
        result = restore(
            config,
            backup_id,
            target,
            tables=tables,
            until=stop_at,
            follow=follow,
            parallel=parallel,
            batch_size=batch_size,
            progress=bar,
            stop=stop,
        )
    if result.already_done:
        click.echo(f"backup {result.backup} was already restored into this target; nothing to do")
        return
    what = {
        "none": "no replay",
        "latest": "replayed to the newest change",
        "time": "replayed to the requested time",
        "position": "replayed to the requested position",
    }[result.replay]
    line = (
        f"restored backup {result.backup}: {len(result.tables)} tables, {result.loaded_rows:,} rows loaded"
        f"{f' ({result.skipped_chunks} chunks were already loaded)' if result.skipped_chunks else ''}, "
        f"{result.replayed:,} changes applied, {what}"
    )
    if result.native:
        line += f"; {len(result.native)} of the tables loaded as stored, without converting a value"
    if result.cut:
        line += f", stopped {result.cut}"
    click.echo(line)

"""The ``cdc`` command line.

Exit codes: 0 success; 1 the operation ran but found a problem; 2 usage, config or
connection error. Errors print as one paragraph without a traceback unless ``--debug``
is given, and never contain a secret.

This module imports no database driver: ``cdc --help`` stays fast and works without them.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import re
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cdc import __version__
from cdc.errors import CdcError, ConfigError, redact

if TYPE_CHECKING:
    from cdc.config import Config

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_ERROR = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cdc")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """cdc: change-data-capture from MySQL/MariaDB and PostgreSQL to Kafka and SQL targets."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn every error into one clear paragraph and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        code = cli.main(args=args, prog_name="cdc", standalone_mode=False)
        if isinstance(code, int) and code:  # without standalone mode, click returns Exit's code instead
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_ERROR)
    except click.exceptions.Abort:
        sys.exit(130)
    except CdcError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        click.echo(
            f"error: unexpected {type(exc).__name__}: {redact(str(exc))} (run with --debug for details)", err=True
        )
        sys.exit(EXIT_ERROR)


def entry() -> None:
    """The process entry point (the ``cdc`` command, ``python -m cdc``): :func:`main`, then a quick exit.

    Python's finalization frees every module and object one at a time, 0.1-0.2 s once SQLAlchemy and
    pydantic are loaded, which is most of the start-up budget of a one-shot command such as
    ``cdc restore``. When the command is over and no worker thread is left, this runs the ``atexit``
    handlers, flushes the standard streams and ends the process at once; every file and connection cdc
    writes to is closed (committed) by then. With a worker thread still running, or under a tracer or a
    profiler, the interpreter exits as usual.

    The cyclic garbage collector's first generation is collected every 50,000 allocations instead of
    700: importing click, pydantic and SQLAlchemy allocates hundreds of thousands of long-lived objects,
    and the default threshold walks them over and over (0.05-0.08 s of start-up). Hot loops that
    allocate many objects pause the collector themselves.
    """
    gc.set_threshold(50_000, 10, 10)
    try:
        main()
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    if not isinstance(code, int):
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    if sys.gettrace() is not None or sys.getprofile() is not None:
        sys.exit(code)  # under a tracer or profiler (coverage, pyinstrument), which reports at the usual exit
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.current_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            code = code or EXIT_ERROR
    os._exit(code)


# ---------------------------------------------------------------------------------------------
# Verbs
# ---------------------------------------------------------------------------------------------

#: ``cdc run --instance``: a Kafka ``group.instance.id`` part (Kafka allows more; this keeps names plain).
_INSTANCE = re.compile(r"[A-Za-z0-9._-]{1,200}")

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


def _setup_logging(config: Config, debug: bool) -> None:
    from cdc.logs import setup_logging

    setup_logging("debug" if debug else config.log.level, config.log.format)


@cli.command()
@_CONFIG
@click.option("--only", metavar="PART", help="Run one part: 'source' or 'sink:NAME'.")
@click.option(
    "--instance",
    metavar="ID",
    envvar="CDC_INSTANCE_ID",
    help="A name for this process, unique among the processes of this config (e.g. a pod name): its sinks "
    "join their Kafka groups as static members, so a restart takes the partitions back at once instead of "
    "waiting out the killed process's session. [env: CDC_INSTANCE_ID]",
)
@click.pass_context
def run(ctx: click.Context, config_path: Path, only: str | None, instance: str | None) -> None:
    """Run the pipeline: source capture, bus, sinks and the metrics endpoint.

    Resumes where it stopped. SIGTERM or SIGINT flushes, records positions and exits 0.
    """
    from cdc.metrics import Metrics
    from cdc.pipeline import Pipeline

    if instance is not None and not _INSTANCE.fullmatch(instance):
        raise ConfigError([f"--instance {instance[:60]!r}: use 1-200 letters, digits, '.', '_' or '-'"])
    config = _load(config_path)
    _setup_logging(config, ctx.obj["debug"])
    metrics = Metrics(config.name)
    server = metrics.serve(config.metrics.listen) if config.metrics.enabled else None
    display = _SnapshotDisplay(config.name)
    pipeline = Pipeline(config, only=only, metrics=metrics, on_snapshot=display.update, instance=instance)

    def _stop(signum: int, _frame: Any) -> None:
        pipeline.stop()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        pipeline.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        display.close()
        if server is not None:
            server.close()


class _SnapshotDisplay:
    """Snapshot progress (rows, rows/s, ETA) on a terminal while a snapshot runs; silent otherwise."""

    def __init__(self, pipeline: str) -> None:
        self.pipeline = pipeline
        self._progress: Any = None
        self._task: Any = None
        self._done = 0

    def update(self, view: dict[str, Any] | None) -> None:
        from cdc.progress import Progress

        if view is None:
            self.close()
            return
        if self._progress is None:
            self._progress = Progress(f"{self.pipeline}: snapshot")
            self._task = self._progress.start_task("all tables", view.get("rows_total_estimate") or None)
            self._done = 0
        rows = int(view.get("rows", 0))
        if rows > self._done:
            self._progress.advance(self._task, rows - self._done)
            self._done = rows

    def close(self) -> None:
        if self._progress is not None:
            self._progress.finish(self._task)
            self._progress.close()
            self._progress = None


@cli.command()
@_CONFIG
def check(config_path: Path) -> None:
    """Check the config, connectivity, server settings, grants and stored positions; list every problem.

    Exit 0 when ready to run, 1 when problems were found.
    """
    from cdc.service import check as run_check

    _config, problems = run_check(config_path)
    if not problems:
        click.echo("ready: no problems found")
        return
    noun = "problem" if len(problems) == 1 else "problems"
    click.echo(f"{len(problems)} {noun} found:", err=True)
    for p in problems:
        click.echo(f"  - {redact(str(p))}", err=True)
    raise click.exceptions.Exit(EXIT_PROBLEM)


@cli.command()
@_CONFIG
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(config_path: Path, as_json: bool) -> None:
    """Show the source position and phase, and each sink's applied position and lag."""
    from cdc.service import status as read_status

    config = _load(config_path)
    info = read_status(config)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    src = info["source"]
    click.echo(f"pipeline {info['pipeline']}")
    line = f"  source: {src.get('phase', '?')}"
    if src.get("position"):
        line += f" at {src['position']}"
    click.echo(line)
    for key in ("slot", "wal_retained_bytes", "confirmed_flush_lsn", "error"):
        if src.get(key) is not None:
            click.echo(f"    {key.replace('_', ' ')}: {src[key]}")
    for name, sink in info["sinks"].items():
        if "error" in sink:
            click.echo(f"  sink {name}: error: {sink['error']}")
            continue
        parts = []
        if "lag_events" in sink:
            parts.append(f"lag {sink['lag_events']} events")
        if sink.get("lag_seconds") is not None:
            parts.append(f"{sink['lag_seconds']:.1f} s")
        if sink.get("position"):
            parts.append(f"applied up to {sink['position']}")
        click.echo(f"  sink {name}: " + (", ".join(parts) or "nothing applied yet"))


@cli.command()
@_CONFIG
@click.option("--sink", "sink_name", metavar="NAME", help="Compare only this sink's target (default: every sink).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--reads",
    default=3,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Reads of a sink found different (each after it caught up): a live pipeline's in-flight rows are not "
    "differences.",
)
def verify(config_path: Path, sink_name: str | None, as_json: bool, reads: int) -> None:
    """Compare source and target tables by row count and checksums over key ranges.

    Exit 0 when equal, 1 when they differ (the differences are listed), 2 on error.
    """
    from cdc.service import verify_config

    config = _load(config_path)
    names = [s.name for s in config.sinks]
    if sink_name is not None and sink_name not in names:
        raise CdcError(f"--sink {sink_name}: no sink of that name in the config (sinks: {', '.join(names) or 'none'})")
    if not names:
        raise CdcError("the config has no sinks: there is no target to compare the source with")
    reports = verify_config(config, [sink_name] if sink_name else names, reads=reads)
    equal = all(r.equal for r in reports.values())
    if as_json:
        click.echo(json.dumps({"equal": equal, "sinks": {n: r.to_json() for n, r in reports.items()}}, indent=2))
    else:
        for name, report in reports.items():
            click.echo(f"sink {name}:")
            click.echo(report.render_text())
        click.echo("equal" if equal else "DIFFERENT")
    if not equal:
        raise click.exceptions.Exit(EXIT_PROBLEM)


# Restore points (cdc/backup/cli.py); that module imports no driver either.
from cdc.backup.cli import backup_group, restore_command  # noqa: E402

cli.add_command(backup_group, "backup")
cli.add_command(restore_command, "restore")

# Sources and sinks of configs (cdc/manage.py); it imports no driver either.
from cdc.manage import sinks_group, sources_group  # noqa: E402

cli.add_command(sources_group, "sources")
cli.add_command(sinks_group, "sinks")

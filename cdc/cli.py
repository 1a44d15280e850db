"""The ``cdc`` command line.

Exit codes: 0 success; 1 the operation ran but found a problem; 2 usage, config or
connection error. Errors print as one paragraph without a traceback unless ``--debug``
is given, and never contain a secret.

This module imports no database driver: ``cdc --help`` stays fast and works without them.
"""

from __future__ import annotations

import sys

import click

from cdc import __version__
from cdc.errors import CdcError, redact

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
        cli.main(args=args, prog_name="cdc", standalone_mode=False)
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

"""``cdc sources …`` and ``cdc sinks …``: list, add and remove the data sources and sinks of a config.

A config file is one pipeline: one source and its sinks (CONTRACT.md). So:

* ``cdc sources list -c FILE...`` lists the source of each config given (type, redacted URL,
  tables, phase and position, and its restore points: count and newest);
  ``cdc sources add -c FILE --type mysql|postgres --url URL ...`` writes a new config file
  for a new source (with a direct or Kafka bus), refusing to overwrite one;
  ``cdc sources remove -c FILE`` deletes a config file, and with ``--drop-slot`` also the
  PostgreSQL replication slot the pipeline created (a slot nobody reads retains WAL forever).
* ``cdc sinks list -c FILE`` lists the sinks with their lag; ``cdc sinks add -c FILE NAME --url
  URL [--tables P]...`` and ``cdc sinks remove -c FILE NAME`` edit the ``sinks`` list.

Edits keep the file's comments and layout (ruamel.yaml round trip), are validated as a whole
config before anything is written (every problem reported at once, as ``cdc check`` does), and
replace the file atomically, keeping the previous version as ``FILE.bak``. A target's data is
never touched by ``sinks remove``: the rows and its ``cdc_positions`` stay where they are.
Backups of a source are managed with ``cdc backup … -c FILE`` and restored with ``cdc restore``.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from cdc.errors import CdcError, ConfigError, redact

__all__ = ["sinks_group", "sources_group"]

EXIT_PROBLEM = 1

_CONFIGS = click.option(
    "-c",
    "--config",
    "config_paths",
    required=True,
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A pipeline's YAML config file (repeat for several).",
)
_CONFIG = click.option(
    "-c",
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The pipeline's YAML config file.",
)


# ---------------------------------------------------------------------------------------------
# Round-trip editing
# ---------------------------------------------------------------------------------------------


def _yaml() -> Any:
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 4096
    return y


def _read_document(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read it: {exc.strerror or exc}"]) from None
    try:
        doc = _yaml().load(text)
    except Exception as exc:  # noqa: BLE001 - ruamel's errors have no common public base
        raise ConfigError([f"{path}: not valid YAML: {redact(str(exc)).splitlines()[0]}"]) from None
    if not hasattr(doc, "get"):
        raise ConfigError([f"{path}: the top level must be a mapping"])
    return doc


def _dump(doc: Any) -> str:
    out = io.StringIO()
    _yaml().dump(doc, out)
    return out.getvalue()


def _write_validated(path: Path, text: str) -> None:
    """Validate ``text`` as a whole config, then replace ``path`` with it atomically (``.bak`` kept)."""
    from cdc.config import parse_config

    parse_config(text, base_dir=path.absolute().parent)  # raises ConfigError listing every problem
    directory = path.absolute().parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.replace(path, path.with_name(path.name + ".bak"))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------------------------


def source_view(config_path: Path) -> dict[str, Any]:
    """One config's source: what it is, where it stands, and its restore points."""
    from cdc.config import load_config

    config = load_config(config_path)
    src = config.source
    view: dict[str, Any] = {
        "config": str(config_path),
        "pipeline": config.name,
        "type": src.type,
        "url": src.url.redacted,
        "tables": list(src.tables),
        "bus": config.bus.type,
        "sinks": [s.name for s in config.sinks],
    }
    try:
        from cdc.service import status

        st = status(config)["source"]
        view["phase"], view["position"] = st.get("phase"), st.get("position")
    except CdcError as exc:
        view["phase"], view["status_error"] = None, str(exc)
    if config.backups is not None:
        try:
            from cdc.backup.catalog import Catalog
            from cdc.backup.create import keys_for

            entries = Catalog(config.backups.destination, keys_for(config)).entries()
            newest = max(entries, key=lambda e: e.manifest.finished_ms if e.manifest else 0, default=None)
            view["backups"] = {"count": len(entries), "newest": newest.id if newest else None}
        except (CdcError, OSError) as exc:
            view["backups"] = {"error": redact(str(exc))}
    return view


def sink_views(config_path: Path) -> list[dict[str, Any]]:
    """Every sink of one config, with its lag when it can be read."""
    from cdc.config import load_config

    config = load_config(config_path)
    lag: dict[str, Any] = {}
    try:
        from cdc.service import status

        lag = status(config)["sinks"]
    except CdcError:
        lag = {}
    return [
        {
            "name": s.name,
            "url": s.url.redacted,
            "tables": list(s.tables),
            "schema_evolution": s.schema_evolution,
            "on_error": s.on_error,
            **{k: v for k, v in lag.get(s.name, {}).items() if k in ("lag_events", "lag_seconds", "position")},
        }
        for s in config.sinks
    ]


# ---------------------------------------------------------------------------------------------
# Edits
# ---------------------------------------------------------------------------------------------


def add_sink(
    config_path: Path,
    name: str,
    url: str,
    *,
    tables: Sequence[str] = (),
    schema_evolution: str | None = None,
    on_error: str | None = None,
) -> None:
    """Append a sink to the config's ``sinks`` list (validated as a whole before writing)."""
    doc = _read_document(config_path)
    sinks = doc.get("sinks")
    if sinks is None:
        from ruamel.yaml.comments import CommentedSeq

        sinks = doc["sinks"] = CommentedSeq()
    if any(isinstance(s, dict) and s.get("name") == name for s in sinks):
        raise ConfigError([f"sinks: a sink named {name!r} exists already in {config_path}"])
    from ruamel.yaml.comments import CommentedMap

    entry = CommentedMap()
    entry["name"] = name
    entry["url"] = url
    if tables:
        entry["tables"] = list(tables)
    if schema_evolution:
        entry["schema_evolution"] = schema_evolution
    if on_error:
        entry["on_error"] = on_error
    sinks.append(entry)
    _write_validated(config_path, _dump(doc))


def remove_sink(config_path: Path, name: str) -> None:
    """Remove the sink ``name`` from the config (its target's data is left as it is)."""
    doc = _read_document(config_path)
    sinks = doc.get("sinks") or []
    keep = [i for i, s in enumerate(sinks) if not (isinstance(s, dict) and s.get("name") == name)]
    if len(keep) == len(sinks):
        names = ", ".join(str(s.get("name")) for s in sinks if isinstance(s, dict)) or "none"
        raise ConfigError([f"sinks: no sink named {name!r} in {config_path} (sinks: {names})"])
    for i in reversed(range(len(sinks))):
        if i not in keep:
            del sinks[i]
    _write_validated(config_path, _dump(doc))


def add_source(
    config_path: Path,
    *,
    name: str,
    source_type: str,
    url: str,
    tables: Sequence[str],
    server_id: int | None,
    bootstrap: str | None,
) -> None:
    """Write a new config file for a new source (a Kafka bus with ``bootstrap``, else direct)."""
    if config_path.exists():
        raise ConfigError([f"{config_path}: exists already; a config holds one source, so use a new file"])
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    doc = CommentedMap()
    doc["name"] = name
    source = CommentedMap()
    source["type"] = source_type
    source["url"] = url
    if server_id is not None:
        source["server_id"] = server_id
    source["tables"] = list(tables) or ["*.*"]
    doc["source"] = source
    bus = CommentedMap()
    bus["type"] = "kafka" if bootstrap else "direct"
    if bootstrap:
        bus["bootstrap_servers"] = bootstrap
    doc["bus"] = bus
    doc["sinks"] = CommentedSeq()
    text = _dump(doc)
    if not bootstrap:
        # the direct bus needs a sink: validate with a placeholder, write without it
        from cdc.config import parse_config

        try:
            parse_config(text, base_dir=config_path.absolute().parent)
        except ConfigError as exc:
            rest = [p for p in exc.problems if "needs at least one sink" not in p]
            if rest:
                raise ConfigError(rest) from None
        _write_raw(config_path, text)
        return
    _write_validated(config_path, text)


def _write_raw(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.absolute().parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def drop_pg_slot(config_path: Path) -> str | None:
    """Drop the PostgreSQL replication slot (and the publication cdc named after it) of a config's
    source; returns the slot's name, or None for a source without one."""
    from cdc.config import load_config

    config = load_config(config_path)
    if config.source.type != "postgres":
        return None
    import psycopg
    from psycopg import sql

    slot = str(getattr(config.source, "slot"))  # noqa: B009 - a postgres source config has it
    publication = str(getattr(config.source, "publication"))  # noqa: B009
    from connectors.postgres.config import libpq_url

    try:
        url = libpq_url(config.source.url.get_secret_value())
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT active FROM pg_catalog.pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
            if row is not None:
                if row[0]:
                    raise CdcError(f"the replication slot {slot!r} is in use: stop the pipeline first")
                conn.execute("SELECT pg_catalog.pg_drop_replication_slot(%s)", (slot,))
            conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(publication)))
    except psycopg.Error as exc:
        raise CdcError(f"dropping the slot {slot!r}: {redact(str(exc)).strip()}") from exc
    return slot


# ---------------------------------------------------------------------------------------------
# The CLI
# ---------------------------------------------------------------------------------------------


@click.group("sources")
def sources_group() -> None:
    """List, add and remove data sources (one per config file)."""


@sources_group.command("list")
@_CONFIGS
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sources_list(config_paths: tuple[Path, ...], as_json: bool) -> None:
    """The source of each config: type, URL (no password), tables, phase, position and backups."""
    views = [source_view(p) for p in config_paths]
    if as_json:
        click.echo(json.dumps(views, indent=2))
        return
    for v in views:
        click.echo(f"{v['pipeline']} ({v['config']}): {v['type']} {v['url']}")
        click.echo(f"  tables: {', '.join(v['tables'])}; bus: {v['bus']}; sinks: {', '.join(v['sinks']) or 'none'}")
        if v.get("status_error"):
            click.echo(f"  status: {v['status_error']}")
        else:
            click.echo(f"  phase: {v.get('phase')}, position: {v.get('position') or '-'}")
        b = v.get("backups")
        if b is not None:
            click.echo(
                f"  backups: {b['error']}" if "error" in b else f"  backups: {b['count']}, newest {b['newest'] or '-'}"
            )


@sources_group.command("add")
@_CONFIG
@click.option("--name", required=True, help="The pipeline's name.")
@click.option("--type", "source_type", required=True, type=click.Choice(["mysql", "postgres"]))
@click.option("--url", required=True, help="The source's URL (use ${VAR} to keep a password out of the file).")
@click.option("--tables", "tables", multiple=True, metavar="PATTERN", help="db.table patterns (repeat).")
@click.option("--server-id", type=int, help="MySQL: the replica server id cdc reads the binlog with.")
@click.option("--kafka", "bootstrap", metavar="HOST:PORT", help="Use a Kafka bus at this address (default: direct).")
def sources_add(  # noqa: PLR0917 - click passes options positionally
    config_path: Path,
    name: str,
    source_type: str,
    url: str,
    tables: tuple[str, ...],
    server_id: int | None,
    bootstrap: str | None,
) -> None:
    """Write a new config file for a new source; add sinks with `cdc sinks add`."""
    add_source(
        config_path,
        name=name,
        source_type=source_type,
        url=url,
        tables=tables,
        server_id=server_id,
        bootstrap=bootstrap,
    )
    click.echo(f"wrote {config_path}; next: cdc sinks add -c {config_path} NAME --url URL, then cdc check")


@sources_group.command("remove")
@_CONFIG
@click.option("--drop-slot", is_flag=True, help="PostgreSQL: also drop the replication slot and publication.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def sources_remove(config_path: Path, drop_slot: bool, yes: bool) -> None:
    """Delete a source's config file (targets and backups are kept)."""
    drop = drop_slot
    if not config_path.exists():
        raise ConfigError([f"{config_path}: no such file"])
    if not yes:
        click.confirm(f"delete {config_path}{' and its replication slot' if drop else ''}?", abort=True)
    if drop:
        slot = drop_pg_slot(config_path)
        if slot is not None:
            click.echo(f"dropped the replication slot {slot}")
    os.replace(config_path, config_path.with_name(config_path.name + ".bak"))
    click.echo(f"removed {config_path} (kept as {config_path.name}.bak)")


@click.group("sinks")
def sinks_group() -> None:
    """List, add and remove the sinks of a config."""


@sinks_group.command("list")
@_CONFIG
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sinks_list(config_path: Path, as_json: bool) -> None:
    """Every sink: name, URL (no password), tables and lag."""
    views = sink_views(config_path)
    if as_json:
        click.echo(json.dumps(views, indent=2))
        return
    if not views:
        click.echo("no sinks")
    for v in views:
        lag = f", lag {v['lag_events']} events" if v.get("lag_events") is not None else ""
        click.echo(f"{v['name']}: {v['url']} tables {', '.join(v['tables'])}{lag}")


@sinks_group.command("add")
@_CONFIG
@click.argument("name")
@click.option("--url", required=True, help="SQLAlchemy URL of the target (use ${VAR} for a password).")
@click.option("--tables", "tables", multiple=True, metavar="PATTERN", help="Source tables it applies (repeat).")
@click.option("--schema-evolution", type=click.Choice(["none", "basic"]))
@click.option("--on-error", type=click.Choice(["fail", "dead_letter"]))
def sinks_add(  # noqa: PLR0917 - click passes options positionally
    config_path: Path, name: str, url: str, tables: tuple[str, ...], schema_evolution: str | None, on_error: str | None
) -> None:
    """Add a sink; it starts from the beginning of the change topics (or the snapshot) when run."""
    add_sink(config_path, name, url, tables=tables, schema_evolution=schema_evolution, on_error=on_error)
    click.echo(f"added sink {name} to {config_path}; `cdc check -c {config_path}` tests it")


@sinks_group.command("remove")
@_CONFIG
@click.argument("name")
def sinks_remove(config_path: Path, name: str) -> None:
    """Remove a sink from the config; its target's rows and positions are left as they are."""
    remove_sink(config_path, name)
    click.echo(f"removed sink {name} from {config_path} (the target's data is kept)")

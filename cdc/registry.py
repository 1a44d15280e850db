"""The one place where connectors register.

A connector is a subpackage of ``connectors/`` with a fixed set of modules:

* ``config``: imports no driver. A source package defines ``CONFIG_MODEL``, its
  :class:`~cdc.config.SourceConfigBase` subclass whose ``type`` is the key below. A sink
  package defines ``accepts(scheme: str) -> bool`` (does it serve a URL with this scheme,
  ``+driver`` included) and ``SCHEMES`` (the URL dialects it serves, for messages).
* ``source`` / ``sink``: ``create_source(config, ...)`` / ``create_sink(config, ...)``,
  which may import drivers. They are imported only by :func:`load_source` / :func:`load_sink`,
  so that validating a config, ``cdc --help`` and the unit tests load no driver.

Adding a connector means adding one line to :data:`SOURCES` or :data:`SINKS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any, Final, cast

from cdc.errors import ConfigError

if TYPE_CHECKING:
    from cdc.config import SourceConfigBase
    from cdc.connector import Sink, Source

__all__ = [
    "SINKS",
    "SOURCES",
    "SinkFactory",
    "SourceFactory",
    "load_sink",
    "load_source",
    "sink_schemes",
    "sink_type_for_url",
    "source_config_model",
]

#: ``source.type`` → the connector package.
SOURCES: Final[Mapping[str, str]] = MappingProxyType({"mysql": "connectors.mysql", "postgres": "connectors.postgres"})

#: sink connector name → the connector package. A sink's connector follows from its URL scheme.
SINKS: Final[Mapping[str, str]] = MappingProxyType({"sql": "connectors.sql"})

SourceFactory = Callable[..., "Source"]
SinkFactory = Callable[..., "Sink"]


def _package(table: Mapping[str, str], kind: str, where: str) -> str:
    try:
        return table[kind]
    except KeyError:
        known = ", ".join(table)
        raise ConfigError([f"{where}: unknown connector {kind!r}; choose one of {known}"]) from None


def _config_module(package: str) -> ModuleType:
    # Config modules import no driver; failing to import one is a bug, not a user error.
    return importlib.import_module(f"{package}.config")


def source_config_model(kind: str) -> type[SourceConfigBase]:
    """The config model of source type ``kind`` (``mysql``, ``postgres``); imports no driver.

    Raises :class:`~cdc.errors.ConfigError` for an unknown ``kind``.
    """
    from cdc.config import SourceConfigBase

    module = _config_module(_package(SOURCES, kind, "source.type"))
    model = getattr(module, "CONFIG_MODEL", None)
    if not (isinstance(model, type) and issubclass(model, SourceConfigBase)):
        raise TypeError(f"{module.__name__}.CONFIG_MODEL must be a SourceConfigBase subclass")
    if model.model_fields["type"].default != kind:
        raise TypeError(f"{model.__name__}.type must default to {kind!r}, the key it is registered under")
    return model


def sink_type_for_url(url: str) -> str | None:
    """The key in :data:`SINKS` of the first sink connector that serves ``url``, or None."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    for kind, package in SINKS.items():
        if _config_module(package).accepts(scheme):
            return kind
    return None


def sink_schemes() -> list[str]:
    """Every URL dialect some sink serves (for messages), in registration order."""
    out: list[str] = []
    for package in SINKS.values():
        out.extend(s for s in _config_module(package).SCHEMES if s not in out)
    return out


def _load(module_name: str, attribute: str, where: str, what: str) -> Callable[..., Any]:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name == module_name:
            reason = f"this installation has no {module_name} module"
        elif exc.name:
            reason = f"it needs the Python module {exc.name!r}, which is not installed (run: make install)"
        else:
            reason = str(exc)
        raise ConfigError([f"{where}: the {what} connector cannot be loaded: {reason}"]) from exc
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ConfigError([f"{where}: the {what} connector is incomplete: {module_name} has no {attribute}()"])
    return cast("Callable[..., Any]", factory)


def load_source(kind: str) -> SourceFactory:
    """``connectors.<kind>.source:create_source``, imported now (it may import drivers).

    Raises :class:`~cdc.errors.ConfigError` if ``kind`` is unknown or the module or one
    of its dependencies cannot be imported.
    """
    module = f"{_package(SOURCES, kind, 'source.type')}.source"
    return cast("SourceFactory", _load(module, "create_source", "source.type", kind))


def load_sink(kind: str = "sql") -> SinkFactory:
    """``connectors.<kind>.sink:create_sink``, imported now (it may import drivers).

    ``kind`` is :attr:`cdc.config.SinkConfig.connector`. Raises
    :class:`~cdc.errors.ConfigError` like :func:`load_source`.
    """
    module = f"{_package(SINKS, kind, 'sinks')}.sink"
    return cast("SinkFactory", _load(module, "create_sink", "sinks", kind))

"""``source:`` keys of ``type: postgres`` (logical replication with pgoutput).

Besides the common keys of :class:`cdc.config.SourceConfigBase`:

=======================  =================================================================
``slot``                 replication slot; default ``cdc_<name>`` (lower case, other chars → ``_``)
``publication``          publication; default the same as the slot
``proto_version``        pgoutput protocol version, 1 or 2 (default 2: streams large transactions)
``interval_handling``    ``numeric`` (default, microseconds) or ``string`` (ISO-8601)
``time_precision``       as for every source, but ``adaptive`` by default (Debezium's PostgreSQL
                         default: ``time(p≤3)`` in milliseconds, ``time`` otherwise in µs)
``create_slot``          create the slot when missing (default true)
``create_publication``   create the publication when missing (default true)
=======================  =================================================================

Imports no driver.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import field_validator

from cdc.config import SourceConfigBase
from cdc.values import IntervalHandling, TimePrecision

__all__ = ["CONFIG_MODEL", "PostgresSourceConfig", "default_slot_name", "libpq_url"]

_SLOT = re.compile(r"[a-z0-9_]{1,63}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def default_slot_name(pipeline: str) -> str:
    """``cdc_<pipeline>`` in lower case, every character a slot name cannot hold replaced by ``_``, at most 63."""
    return ("cdc_" + re.sub(r"[^a-z0-9_]", "_", pipeline.lower()))[:63]


class PostgresSourceConfig(SourceConfigBase):
    """The ``source`` section for ``type: postgres``.

    ``slot`` and ``publication`` are filled from the pipeline name by :class:`cdc.config.Config`
    when left out; validated on their own they are required.
    """

    type: Literal["postgres"] = "postgres"
    slot: str
    publication: str
    proto_version: Literal[1, 2] = 2
    interval_handling: IntervalHandling = IntervalHandling.NUMERIC
    time_precision: TimePrecision = TimePrecision.ADAPTIVE
    create_slot: bool = True
    create_publication: bool = True

    url_dialects: ClassVar[tuple[str, ...]] = ("postgresql", "postgres")

    @field_validator("slot")
    @classmethod
    def _check_slot(cls, value: str) -> str:
        if not _SLOT.fullmatch(value):
            raise ValueError(f"must be 1 to 63 lower-case letters, digits or '_' (PostgreSQL's rule) (got {value!r})")
        return value

    @field_validator("publication")
    @classmethod
    def _check_publication(cls, value: str) -> str:
        if not _IDENTIFIER.fullmatch(value):
            raise ValueError(f"must be 1 to 63 letters, digits or '_', not starting with a digit (got {value!r})")
        return value

    @field_validator("proto_version", mode="before")
    @classmethod
    def _digits_as_int(cls, value: Any) -> Any:
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    @classmethod
    def with_pipeline_defaults(cls, data: dict[str, Any], pipeline: str) -> dict[str, Any]:
        """``slot`` defaults to :func:`default_slot_name`, ``publication`` to the slot."""
        if data.get("slot") is None:
            data["slot"] = default_slot_name(pipeline)
        if data.get("publication") is None:
            slot = data["slot"]
            data["publication"] = slot if isinstance(slot, str) and _IDENTIFIER.fullmatch(slot) else "cdc"
        return data


CONFIG_MODEL = PostgresSourceConfig


def libpq_url(url: str) -> str:
    """The URL for libpq: ``postgresql://``, without SQLAlchemy's ``+driver``."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.lower().startswith(("postgresql", "postgres")) else url

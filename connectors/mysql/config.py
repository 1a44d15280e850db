"""``source:`` keys of ``type: mysql`` (MySQL 8 and MariaDB; binlog in ROW format).

Besides the common keys of :class:`cdc.config.SourceConfigBase`:

=============================  ======================================================
``server_id``                  required; the replica id cdc uses on the binlog stream
``bigint_unsigned_handling``   ``precise`` (default, Decimal) or ``long`` (int64)
``zero_date_handling``         what a zero date (``0000-00-00``) becomes, see below
``gtid``                       resume by GTID set when the server has GTIDs (default true)
=============================  ======================================================

Imports no driver.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from cdc.config import SourceConfigBase
from cdc.values import BigintUnsignedHandling

__all__ = ["CONFIG_MODEL", "MAX_SERVER_ID", "MySqlSourceConfig", "ZeroDateHandling"]

MAX_SERVER_ID = 2**32 - 1


class ZeroDateHandling(StrEnum):
    """What a MySQL zero date or datetime (``0000-00-00``, or a zero month or day) becomes.

    None of the modes turns a zero date into NULL silently: the default stops capture, and
    the others are explicit choices.
    """

    ERROR = "error"
    """Stop with a :class:`~cdc.errors.DecodeError` naming the table, column and position."""
    NULL = "null"
    """NULL when the column is nullable; still an error for a NOT NULL column."""
    DEBEZIUM = "debezium"
    """As Debezium does: NULL when the column is nullable, 1970-01-01 (the epoch) when NOT NULL."""


class MySqlSourceConfig(SourceConfigBase):
    """The ``source`` section for ``type: mysql``."""

    type: Literal["mysql"] = "mysql"
    server_id: int = Field(ge=1, le=MAX_SERVER_ID)
    bigint_unsigned_handling: BigintUnsignedHandling = BigintUnsignedHandling.PRECISE
    zero_date_handling: ZeroDateHandling = ZeroDateHandling.ERROR
    gtid: bool = True

    @model_validator(mode="before")
    @classmethod
    def _yaml_null_is_the_null_mode(cls, data: Any) -> Any:
        """``zero_date_handling: null`` in YAML is a null, which elsewhere means "left out"; here it
        names the ``null`` mode, as the user wrote it, not the default (``error``)."""
        if isinstance(data, dict) and "zero_date_handling" in data and data["zero_date_handling"] is None:
            return {**data, "zero_date_handling": ZeroDateHandling.NULL.value}
        return data

    url_dialects: ClassVar[tuple[str, ...]] = ("mysql", "mariadb")
    hints: ClassVar[dict[str, str]] = {
        "server_id": (
            f"a number from 1 to {MAX_SERVER_ID}: cdc reads the binlog as a replica with this id, so it must "
            "differ from the server's own server_id and from every other replica and cdc pipeline of that server"
        ),
    }


CONFIG_MODEL = MySqlSourceConfig

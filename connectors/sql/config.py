"""What the SQLAlchemy sink accepts as a target URL, and how it reaches SQLAlchemy.

The sink's keys themselves are :class:`cdc.config.SinkConfig` (they are the same for every
sink). Imports no driver, and not SQLAlchemy either.
"""

from __future__ import annotations

__all__ = ["DEFAULT_DRIVERS", "SCHEMES", "accepts", "sqlalchemy_url"]

#: URL dialects (the scheme before any ``+driver``) this sink serves.
SCHEMES: tuple[str, ...] = ("postgresql", "postgres", "mysql", "mariadb", "sqlite")

#: The driver used when a URL names none: the ones this project installs.
DEFAULT_DRIVERS: dict[str, str] = {"postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}


def accepts(scheme: str) -> bool:
    """Whether this sink serves a URL with ``scheme`` (``dialect`` or ``dialect+driver``, any case)."""
    dialect, plus, driver = scheme.lower().partition("+")
    return dialect in SCHEMES and (not plus or bool(driver))


def sqlalchemy_url(url: str) -> str:
    """``url`` as SQLAlchemy 2 needs it: ``postgres`` → ``postgresql`` (SQLAlchemy dropped the alias),
    and the installed driver added where the URL names none (``mysql://`` → ``mysql+pymysql://``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    dialect, plus, driver = scheme.lower().partition("+")
    if dialect == "postgres":
        dialect = "postgresql"
    if not plus and dialect in DEFAULT_DRIVERS:
        driver, plus = DEFAULT_DRIVERS[dialect], "+"
    return f"{dialect}{plus}{driver}://{rest}"

"""cdc: change-data-capture replication.

Sources (MySQL/MariaDB binlog, PostgreSQL pgoutput) publish Debezium-compatible change
events to a bus (Kafka, or the in-process ``direct`` bus); sinks apply them to any
SQLAlchemy target exactly once in effect.

This package is the service core. It imports no database driver; connectors live in
the top-level ``connectors`` package and are registered in :mod:`cdc.registry`.
"""

__version__ = "0.1.0"

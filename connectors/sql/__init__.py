"""The SQLAlchemy sink connector, registered in :mod:`cdc.registry` as ``sql``.

A sink's ``url`` selects it: :mod:`connectors.sql.config` lists the schemes it serves.
"""

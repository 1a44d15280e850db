"""Connectors: one subpackage each (``mysql``, ``postgres``, ``sql``), registered in :mod:`cdc.registry`."""

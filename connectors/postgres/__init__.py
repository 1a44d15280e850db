"""The PostgreSQL source connector (walsender + pgoutput), registered in :mod:`cdc.registry` as ``postgres``.

Importing this package loads :mod:`cdc.config` first: that module builds the ``source``
union from every connector's ``config`` module, which in turn derives from
:mod:`cdc.config`'s building blocks. Loading it here makes the import order irrelevant.
"""

import cdc.config  # noqa: F401  (see the docstring)

"""Optional compiled speed-ups; everything else is in pyproject.toml.

The extension is optional: without a C compiler the build carries on and cdc uses its pure-Python
code paths, which give the same results (tests compare them).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("connectors.mysql._speedups", ["connectors/mysql/_speedups.c"], optional=True,
                  extra_compile_args=["-O2"]),
        Extension("connectors.postgres._speedups", ["connectors/postgres/_speedups.c"], optional=True,
                  extra_compile_args=["-O2"]),
        Extension("connectors.mysql._backup_speedups", ["connectors/mysql/_backup_speedups.c"], optional=True,
                  extra_compile_args=["-O2"]),
    ]
)

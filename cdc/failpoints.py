"""Crash points for tests that kill a process at an exact moment.

``CDC_FAILPOINTS="name:N[,name:N…]"`` in the environment makes the N-th call of
``hit(name)`` in this process send itself SIGKILL: the same death as ``kill -9`` from outside,
with no cleanup, no flush and no ``finally``, but at a chosen instant instead of a random one.
Without the variable, :func:`hit` is one global lookup and a falsy test.

Points (where the guarantees are at stake):

* ``sink.after_apply``: a batch is committed in the target (rows and positions), its Kafka
  group offsets are not.
* ``sink.after_offsets``: the group offsets (a hint) were just committed.
* ``publisher.after_send``: change records were handed to the producer, nothing acknowledged.
* ``backup.after_chunk``: a backup's chunk file is written (the backup is still ``.partial``).
* ``restore.after_chunk``: a restore committed one chunk (its rows and its done-marker).
"""

from __future__ import annotations

import os
import signal

__all__ = ["hit"]


def _parse(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in text.split(","):
        name, _, count = part.strip().partition(":")
        if name:
            out[name] = int(count) if count.strip().isdigit() else 1
    return out


_ARMED: dict[str, int] = _parse(os.environ.get("CDC_FAILPOINTS", ""))


def hit(name: str) -> None:
    """Count a pass through ``name``; on the armed count, die as ``kill -9`` would."""
    if not _ARMED:
        return
    left = _ARMED.get(name)
    if left is None:
        return
    if left <= 1:
        os.kill(os.getpid(), signal.SIGKILL)
    _ARMED[name] = left - 1

"""Progress of long work (snapshots, backups, restores): done, rate and ETA, per task and overall.

Three ways to show it, chosen once when the :class:`Progress` is made:

* a live ``rich`` display (one bar per task, plus a total row when there are several) when
  the stream is a terminal and the display is enabled;
* one plain line about every ``interval`` seconds (10 by default), plus one line per finished
  task and a summary on :meth:`Progress.close`, when the display is enabled on a stream that is
  not a terminal (a log file, CI output)::

      shop: snapshot: 12,345/100,000 rows (12.3%), 1,234 rows/s, ETA 1m11s [shop.orders 5,000/20,000]

* nothing at all when disabled. ``enabled=None`` (the default) means enabled exactly when the
  stream is a terminal, so a service under systemd or Docker writes no progress by default.

Rates are measured over a sliding window (the last ``window`` seconds, 30 by default), so the
ETA follows the current speed rather than the average since the start. All methods are
thread-safe; :meth:`Progress.advance` is cheap enough to call once per batch.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, TextIO

__all__ = ["Progress", "Stats", "TaskHandle", "format_amount", "format_duration"]

Unit = Literal["rows", "bytes"]


def format_duration(seconds: float) -> str:
    """``5s``, ``3m05s``, ``1h02m``, ``3d04h``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def format_amount(n: float, unit: Unit) -> str:
    """``12,345`` for rows; ``1.5 MiB`` (binary units) for bytes."""
    if unit == "rows":
        return f"{round(n):,}"
    value = float(n)
    for suffix in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or suffix == "TiB":
            return f"{value:.0f} {suffix}" if suffix == "B" else f"{value:.1f} {suffix}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class Stats:
    """A snapshot of one task's (or the overall) progress at one instant."""

    done: int
    total: int | None
    elapsed_s: float
    rate: float | None  # units per second over the window; None until measurable
    eta_s: float | None  # None when the total or the rate is unknown, or done exceeds total

    @property
    def fraction(self) -> float | None:
        """``done / total`` capped at 1, or None without a total."""
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


class _Meter:
    """Counts and a sliding window of (time, done) samples."""

    def __init__(self, now: float, window: float) -> None:
        self.started = now
        self.window = window
        self.done = 0
        self.samples: deque[tuple[float, int]] = deque([(now, 0)])

    def add(self, now: float, n: int) -> None:
        self.done += n
        samples = self.samples
        if samples[-1][0] == now:
            samples[-1] = (now, self.done)
        else:
            samples.append((now, self.done))
        # keep one sample at or before the window's start, so the rate spans the whole window
        while len(samples) > 2 and samples[1][0] <= now - self.window:
            samples.popleft()

    def stats(self, now: float, total: int | None, finished_at: float | None = None) -> Stats:
        end = finished_at if finished_at is not None else now
        elapsed = max(0.0, end - self.started)
        t0, d0 = self.samples[0]
        if finished_at is not None:
            rate = self.done / elapsed if elapsed > 0 else None
        else:
            span = now - t0
            rate = (self.done - d0) / span if span > 0 else None
        eta: float | None = None
        if finished_at is not None:
            eta = 0.0
        elif total is not None and self.done <= total:
            if self.done == total:
                eta = 0.0
            elif rate:
                eta = (total - self.done) / rate
        return Stats(done=self.done, total=total, elapsed_s=elapsed, rate=rate, eta_s=eta)


@dataclass(eq=False)
class TaskHandle:
    """One unit of work (a table, a file). Made by :meth:`Progress.start_task`."""

    name: str
    total: int | None
    meter: _Meter = field(repr=False)
    finished_at: float | None = None
    ui_id: Any = field(default=None, repr=False)


class Progress:
    """Progress display for long work; see the module docstring for the three modes.

    ``clock`` (monotonic seconds) is injectable for tests. ``interval`` is the period of
    plain lines, ``window`` the span of the rate estimate.
    """

    def __init__(
        self,
        title: str,
        *,
        unit: Unit = "rows",
        enabled: bool | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval: float = 10.0,
        window: float = 30.0,
    ) -> None:
        self.title = title
        self.unit: Unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.interval = interval
        self.window = window
        tty = _isatty(self.stream)
        self.enabled = tty if enabled is None else enabled
        self.mode: Literal["rich", "plain", "off"] = ("rich" if tty else "plain") if self.enabled else "off"
        self._lock = threading.RLock()
        now = clock()
        self._overall = _Meter(now, window)
        self._tasks: list[TaskHandle] = []
        self._last_line = now
        self._closed = False
        self._rich: Any = None
        self._rich_total: Any = None
        self._last_refresh = float("-inf")

    # ------------------------------------------------------------------ API

    def start_task(self, name: str, total: int | None) -> TaskHandle:
        """Begin a task of ``total`` units (None: unknown) and return its handle."""
        with self._lock:
            task = TaskHandle(name=name, total=total, meter=_Meter(self.clock(), self.window))
            self._tasks.append(task)
            if self.mode == "rich":
                self._rich_add(task)
            return task

    def set_total(self, task: TaskHandle, total: int | None) -> None:
        """Change a task's expected total (an estimate that became known or more exact)."""
        with self._lock:
            task.total = total
            self._refresh(force=True)

    def advance(self, task: TaskHandle, n: int) -> None:
        """Count ``n`` more units done for ``task``."""
        if n <= 0:
            return
        with self._lock:
            now = self.clock()
            task.meter.add(now, n)
            self._overall.add(now, n)
            if self.mode == "plain" and now - self._last_line >= self.interval:
                self._last_line = now
                self._write(self.line())
            elif self.mode == "rich":
                self._refresh()

    def finish(self, task: TaskHandle) -> None:
        """Mark ``task`` done (idempotent); its rate becomes its average, its ETA 0."""
        with self._lock:
            if task.finished_at is not None:
                return
            now = self.clock()
            task.finished_at = now
            if self.mode == "plain":
                s = self.stats(task)
                self._write(
                    f"{self.title}: {task.name} done, {format_amount(s.done, self.unit)} {self.unit_label} "
                    f"in {format_duration(s.elapsed_s)}{self._rate_text(s)}"
                )
            elif self.mode == "rich":
                self._refresh(force=True)

    def close(self) -> None:
        """Stop the display; in plain mode write a summary line when anything was done. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.mode == "rich" and self._rich is not None:
                self._refresh(force=True)
                self._rich.stop()
                self._rich = None
            elif self.mode == "plain" and self._tasks:
                s = self.stats()
                self._write(
                    f"{self.title}: {format_amount(s.done, self.unit)} {self.unit_label} "
                    f"in {format_duration(s.elapsed_s)}{self._rate_text(s)}"
                )

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ numbers

    @property
    def unit_label(self) -> str:
        return "rows" if self.unit == "rows" else ""

    def stats(self, task: TaskHandle | None = None) -> Stats:
        """Progress of ``task``, or overall (all tasks; the total is known when every task's is)."""
        with self._lock:
            now = self.clock()
            if task is not None:
                return task.meter.stats(now, task.total, task.finished_at)
            totals = [t.total for t in self._tasks]
            total = sum(t for t in totals if t is not None) if totals and None not in totals else None
            if self._tasks and all(t.finished_at is not None for t in self._tasks):
                finished = max(t.finished_at for t in self._tasks if t.finished_at is not None)
                return self._overall.stats(now, total, finished)
            return self._overall.stats(now, total)

    def line(self) -> str:
        """The plain progress line: overall numbers, then the unfinished tasks (at most three)."""
        s = self.stats()
        text = f"{self.title}: {self._amount(s)}{self._rate_text(s)}"
        if s.eta_s is not None and s.done != s.total:
            text += f", ETA {format_duration(s.eta_s)}"
        active = [t for t in self._tasks if t.finished_at is None]
        if active:
            shown = [f"{t.name} {self._amount(self.stats(t), unit=False)}" for t in active[:3]]
            more = f" +{len(active) - 3} more" if len(active) > 3 else ""
            text += " [" + ", ".join(shown) + more + "]"
        return text

    def _amount(self, s: Stats, *, unit: bool = True) -> str:
        label = f" {self.unit_label}" if unit and self.unit_label else ""
        done = format_amount(s.done, self.unit)
        if s.total is None:
            return f"{done}{label}"
        text = f"{done}/{format_amount(s.total, self.unit)}{label}"
        fraction = s.fraction
        if unit and fraction is not None:
            text += f" ({fraction * 100:.1f}%)"
        return text

    def _rate_text(self, s: Stats) -> str:
        if s.rate is None:
            return ""
        if self.unit == "rows":
            return f", {format_amount(s.rate, 'rows')} rows/s"
        return f", {format_amount(s.rate, 'bytes')}/s"

    # ------------------------------------------------------------------ output

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not stop the work
            self.mode = "off"

    def _rich_start(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn
        from rich.progress import Progress as RichProgress

        self._rich = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[amount]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[eta]}"),
            console=Console(file=self.stream),
            transient=False,
            auto_refresh=True,
            refresh_per_second=4,
        )
        self._rich.start()

    def _rich_add(self, task: TaskHandle) -> None:
        if self._rich is None:
            self._rich_start()
        task.ui_id = self._rich.add_task(f"{self.title}: {task.name}", total=task.total, amount="", rate="", eta="")
        if len(self._tasks) == 2 and self._rich_total is None:
            self._rich_total = self._rich.add_task(f"{self.title}: total", total=None, amount="", rate="", eta="")
        self._refresh(force=True)

    def _refresh(self, *, force: bool = False) -> None:
        """Push the numbers to the rich display, at most five times a second unless forced."""
        if self.mode != "rich" or self._rich is None:
            return
        now = self.clock()
        if not force and now - self._last_refresh < 0.2:
            return
        self._last_refresh = now
        rows: list[tuple[Any, Stats, bool]] = [(t.ui_id, self.stats(t), t.finished_at is not None) for t in self._tasks]
        if self._rich_total is not None:
            rows.append((self._rich_total, self.stats(), all(t.finished_at is not None for t in self._tasks)))
        for ui_id, s, finished in rows:
            eta = "" if s.eta_s is None else ("done" if s.eta_s == 0 else f"ETA {format_duration(s.eta_s)}")
            if finished:
                total: int | None = s.done
            else:
                total = s.total if s.total is not None and s.done <= s.total else None
            self._rich.update(
                ui_id,
                completed=s.done,
                total=total,
                amount=self._amount(s),
                rate=self._rate_text(s).lstrip(", "),
                eta=eta,
            )


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False

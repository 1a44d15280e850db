"""Shared helpers for the benchmark scripts: resource figures, percentiles and result files."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))


def env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def stack_env() -> dict[str, str]:
    """The local stack's URLs (make stack-env), unless the environment already has them."""
    out = dict(os.environ)
    if "CDC_KAFKA_BOOTSTRAP" not in out:
        data = json.loads((ROOT / ".stack" / "env.json").read_text())
        out.update(data)
    return out


class Meter:
    """CPU seconds and wall time of this process over a block; peak RSS of the process."""

    def __enter__(self) -> Meter:
        self._t0 = time.perf_counter()
        r = resource.getrusage(resource.RUSAGE_SELF)
        self._cpu0 = r.ru_utime + r.ru_stime
        return self

    def __exit__(self, *exc: object) -> None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        self.wall_s = time.perf_counter() - self._t0
        self.cpu_s = r.ru_utime + r.ru_stime - self._cpu0
        self.peak_rss_mb = r.ru_maxrss / 1024


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def run_case(script: Path, *args: str) -> dict[str, Any]:
    """Run one measurement in a fresh process (so RSS is its own); it prints one JSON object last."""
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=stack_env())
    if proc.returncode != 0:
        raise RuntimeError(f"{script.name} {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def write_results(name: str, rows: list[dict[str, Any]]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(rows, indent=2) + "\n")
    return path


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
        return "-" if v is None else str(v)

    widths = {c: max(len(c), *(len(fmt(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(fmt(r.get(c)).ljust(widths[c]) for c in columns))


def timed(fn: Callable[[], Any]) -> tuple[Any, Meter]:
    with Meter() as m:
        out = fn()
    return out, m

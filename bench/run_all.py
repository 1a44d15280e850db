"""`make bench`: run every benchmark script under bench/ and print one table of their results.

A benchmark is a script ``bench/<name>.py`` (not starting with ``_``) that measures against
the real local stack and writes ``bench/results/<name>.json``: a list of rows, each a dict
with at least ``case`` and the measured figures (rows/s, lag percentiles, CPU seconds,
peak RSS), including the raw library or native reference measured in the same run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"


def main() -> int:
    scripts = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_") and p.name != "run_all.py")
    only = set(sys.argv[1:])
    if only:
        scripts = [p for p in scripts if p.stem in only]
    if not scripts:
        print("bench: no benchmark scripts under bench/ yet")
        return 0
    RESULTS.mkdir(exist_ok=True)
    failed = []
    for script in scripts:
        print(f"== bench/{script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)], check=False).returncode != 0:
            failed.append(script.name)
    rows = []
    for script in scripts:
        path = RESULTS / f"{script.stem}.json"
        if path.exists():
            rows.extend({"bench": script.stem, **row} for row in json.loads(path.read_text()))
    if rows:
        cols = list(dict.fromkeys(k for row in rows for k in row))
        widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in cols}
        print("  ".join(c.ljust(widths[c]) for c in cols))
        for row in rows:
            print("  ".join(_fmt(row.get(c)).ljust(widths[c]) for c in cols))
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.3g}"
    return str(v)


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: restore points against the engines' own dump tools, on the same data in the same run.

One table ``orders`` of N rows (default 1,000,000) and 8 mixed columns (bigint key, int, varchar(16),
numeric(12,2), timestamp(6)/datetime(6), varchar(255) with an md5, int, varchar(120)) is written
into PostgreSQL and into MariaDB with the same values. Then, for each engine:

* ``cdc backup create`` (its defaults: zstd level 1, 50,000-row chunks, no encryption) against
  ``pg_dump -Fc`` (its default zlib compression) / ``mariadb-dump --single-transaction --quick``
  piped into ``zstd -3`` (mariadb-dump does not compress);
* ``cdc restore --until backup`` (bulk load only, no Kafka replay) of that backup into a fresh,
  empty database of the same engine, against ``pg_restore`` of the dump / ``zstd -dc | mariadb``.

Each of the eight cases runs ``BENCH_BACKUP_ROUNDS`` times (default 5; the tool and cdc alternate within a
round, every restore into a freshly created database) and the median round is reported, with every
round's wall time in ``walls``. ``BENCH_BACKUP_WARMUP`` rounds (default 1) run first and are not
counted: the first run of a case after the tables are filled was often 20-30% slower than the later
ones, for the tools and cdc alike (the servers still writing the filled tables out, cold caches).

The default size is a million rows because every ``python -m cdc``
pays a fixed start-up (interpreter, click, pydantic, SQLAlchemy, the driver: about 0.4 s here) that
the native tools do not; at 200,000 rows that alone is as long as ``pg_restore``'s whole run, so
small sizes measure start-up rather than rows/s (``python bench/backup.py 200000`` shows it).

Every case runs the real command (``python -m cdc ...`` or the tool) as a child of its own case
process, so wall time includes start-up for all of them; CPU seconds are the children's (user +
system; the database servers' own CPU is not counted for anyone) and peak RSS is the largest
child's. Sizes are the bytes the backup or dump occupies. ``x_native`` is cdc's rows/s over the
tool's. Target (issue #8): at least 1.0x.

cdc runs from compiled bytecode, as an installed package does (``pip install`` compiles it): the
run compiles ``cdc`` and ``connectors`` once (``compileall``, into their git-ignored
``__pycache__``) before measuring, whatever ``PYTHONDONTWRITEBYTECODE`` says. Without it every cdc
process would first compile the project's own modules (0.1-0.2 s here), which is not what a
deployment pays; the libraries it imports are compiled already.

Usage: python bench/backup.py [N]                        (default 1000000; BENCH_BACKUP_ROWS)
       BENCH_BACKUP_ROUNDS=5 BENCH_BACKUP_WARMUP=1 BENCH_BACKUP_ENGINES=pg,mariadb
           rounds measured per case, rounds run first and not counted, engines measured
       python bench/backup.py --profile backup|restore pg|mariadb [N]
           one cdc case in this process under pyinstrument (the ``dev`` extra); prints the call
           tree and writes bench/results/backup_profile.html
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from _common import RESULTS, ROOT, env, print_table, run_case, stack_env, write_results

HERE = Path(__file__).resolve()
PG_BIN = Path(env("BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))

PG_TABLE = """CREATE TABLE orders (
  id bigint PRIMARY KEY, customer_id integer, status varchar(16), amount numeric(12,2), created_at timestamp(6),
  note varchar(255), flags integer, email varchar(120))"""
PG_FILL = """INSERT INTO orders
SELECT g, g % 9973, (ARRAY['new', 'paid', 'shipped', 'cancelled'])[g % 4 + 1], (g % 100000) / 100.0,
       timestamp '2023-11-14' + g * interval '1 second' + (g % 1000) * interval '1 microsecond',
       'order note ' || g || ' ' || md5(g::text), g & 7, 'customer' || (g % 9973) || '@example.com'
FROM generate_series(1, {n}) g"""
MY_TABLE = """CREATE TABLE orders (
  id BIGINT PRIMARY KEY, customer_id INT, status VARCHAR(16), amount DECIMAL(12,2), created_at DATETIME(6),
  note VARCHAR(255), flags INT, email VARCHAR(120)) CHARACTER SET utf8mb4"""
MY_FILL = """INSERT INTO orders
SELECT seq, seq % 9973, ELT(seq % 4 + 1, 'new', 'paid', 'shipped', 'cancelled'), (seq % 100000) / 100,
       TIMESTAMP('2023-11-14') + INTERVAL seq SECOND + INTERVAL (seq % 1000) MICROSECOND,
       CONCAT('order note ', seq, ' ', MD5(seq)), seq & 7, CONCAT('customer', seq % 9973, '@example.com')
FROM seq_1_to_{n}"""


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------


def _pg_url(database: str) -> str:
    return urlsplit(stack_env()["CDC_PG_URL"])._replace(path="/" + database).geturl()


def _my_url(database: str) -> str:
    return urlsplit(stack_env()["CDC_MYSQL_URL"])._replace(path="/" + database).geturl()


def _pg_admin() -> Any:
    import psycopg

    return psycopg.connect(stack_env()["CDC_PG_URL"], autocommit=True)


def _my_conn(database: str | None = None) -> Any:
    import pymysql

    url = urlsplit(stack_env()["CDC_MYSQL_URL"])
    return pymysql.connect(
        host=url.hostname,
        port=url.port or 3306,
        user=unquote(url.username or "root"),
        password=unquote(url.password or ""),
        database=database,
        autocommit=True,
    )


def _my_args() -> list[str]:
    url = urlsplit(stack_env()["CDC_MYSQL_URL"])
    args = ["-h", url.hostname or "127.0.0.1", "-P", str(url.port or 3306), "-u", unquote(url.username or "root")]
    if url.password:
        args.append(f"-p{unquote(url.password)}")
    return args


def create_databases(name: str, n: int, engines: list[str]) -> None:
    """The source databases (filled) and the empty restore targets, in the engines measured."""
    import psycopg
    from psycopg import sql

    if "pg" in engines:
        with _pg_admin() as admin:
            for db in (name, f"{name}_cdc", f"{name}_native"):
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
        with psycopg.connect(_pg_url(name), autocommit=True) as conn:
            conn.execute(PG_TABLE)
            conn.execute(PG_FILL.format(n=int(n)))
            conn.execute("VACUUM ANALYZE orders")
    if "mariadb" in engines:
        conn = _my_conn()
        with conn.cursor() as cur:
            for db in (name, f"{name}_cdc", f"{name}_native"):
                cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
            cur.execute(f"USE `{name}`")
            cur.execute(MY_TABLE)
            cur.execute(MY_FILL.format(n=int(n)))
            cur.execute("ANALYZE TABLE orders")
        conn.close()


def drop_databases(name: str) -> None:
    from psycopg import sql

    with _pg_admin() as admin:
        for db in (name, f"{name}_cdc", f"{name}_native"):
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
    conn = _my_conn()
    with conn.cursor() as cur:
        for db in (name, f"{name}_cdc", f"{name}_native"):
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
    conn.close()


def write_config(directory: Path, engine: str, name: str) -> Path:
    if engine == "pg":
        source = f"  type: postgres\n  url: {_pg_url(name)}\n  tables: ['public.orders']\n"
    else:
        source = f"  type: mysql\n  url: {_my_url(name)}\n  server_id: 88731\n  tables: ['{name}.orders']\n"
    path = directory / f"cdc-{engine}.yaml"
    path.write_text(
        f"name: bench_{engine}\nsource:\n{source}"
        f"bus:\n  type: direct\nsinks:\n  - name: unused\n    url: sqlite:///{directory}/unused.db\n"
        f"backups:\n  destination: {directory}/backups-{engine}\n"
    )
    return path


def count_rows(engine: str, database: str) -> int:
    if engine == "pg":
        import psycopg

        with psycopg.connect(_pg_url(database), autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM public.orders").fetchone()
            return int(row[0]) if row else 0
    conn = _my_conn(database)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM orders")
        n = int(cur.fetchone()[0])
    conn.close()
    return n


def compile_bytecode() -> None:
    """Compile cdc's modules once (as installing the package does), for every cdc process of the run."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "cdc", "connectors"], cwd=ROOT, check=True)


# ---------------------------------------------------------------------------------------------
# Cases: each runs its commands as children and reports their wall time, CPU and peak RSS
# ---------------------------------------------------------------------------------------------


def _children(commands: list[list[str]], *, stdout_file: Path | None = None) -> float:
    """Run ``commands`` as a pipeline (each one's stdout into the next); returns the wall time."""
    t0 = time.perf_counter()
    procs: list[subprocess.Popen[bytes]] = []
    out = open(stdout_file, "wb") if stdout_file else None  # noqa: SIM115 - closed below
    try:
        inp: Any = subprocess.DEVNULL
        for i, cmd in enumerate(commands):
            last = i == len(commands) - 1
            proc = subprocess.Popen(
                cmd,
                stdin=inp,
                stdout=(out if out is not None else subprocess.DEVNULL) if last else subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=ROOT,
            )
            if procs and procs[-1].stdout is not None:
                procs[-1].stdout.close()  # the next process holds it now
            inp = proc.stdout
            procs.append(proc)
        errors = []
        for cmd, proc in zip(commands, procs, strict=True):
            assert proc.stderr is not None
            err = proc.stderr.read()
            proc.wait()
            if proc.returncode != 0:
                errors.append(
                    f"{' '.join(cmd[:3])}... exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}"
                )
        if errors:
            raise RuntimeError("; ".join(errors))
    finally:
        if out is not None:
            out.close()
    return time.perf_counter() - t0


def _measure(commands: list[list[str]], **kw: Any) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = _children(commands, **kw)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall_s": wall,
        "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "peak_rss_mb": after.ru_maxrss / 1024,
    }


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _cdc(*args: str) -> list[str]:
    return [sys.executable, "-m", "cdc", *args]


def case(kind: str, engine: str, name: str, directory: Path) -> dict[str, Any]:
    cfg = directory / f"cdc-{engine}.yaml"
    dump = directory / ("orders.dump" if engine == "pg" else "orders.sql.zst")
    if kind == "cdc-backup":
        shutil.rmtree(directory / f"backups-{engine}" / f"bench-{engine}", ignore_errors=True)  # an earlier round's
        out = _measure([_cdc("backup", "create", "-c", str(cfg), "--id", f"bench-{engine}")])
        out["size_bytes"] = _size(directory / f"backups-{engine}" / f"bench-{engine}")
    elif kind == "cdc-restore":
        target = _pg_url(f"{name}_cdc") if engine == "pg" else _my_url(f"{name}_cdc")
        out = _measure(
            [_cdc("restore", "-c", str(cfg), "--backup", f"bench-{engine}", "--target", target, "--until", "backup")]
        )
        out["restored_rows"] = count_rows(engine, f"{name}_cdc")
    elif kind == "native-backup" and engine == "pg":
        out = _measure([[str(PG_BIN / "pg_dump"), "-Fc", "-t", "public.orders", "-f", str(dump), _pg_url(name)]])
        out["size_bytes"] = _size(dump)
    elif kind == "native-backup":
        raw = ["mariadb-dump", *_my_args(), "--single-transaction", "--quick", name, "orders"]
        out = _measure([raw, ["zstd", "-3", "-q", "-c"]], stdout_file=dump)
        out["size_bytes"] = _size(dump)
    elif kind == "native-restore" and engine == "pg":
        out = _measure([[str(PG_BIN / "pg_restore"), "-d", _pg_url(f"{name}_native"), str(dump)]])
        out["restored_rows"] = count_rows(engine, f"{name}_native")
    elif kind == "native-restore":
        out = _measure([["zstd", "-dc", str(dump)], ["mariadb", *_my_args(), f"{name}_native"]])
        out["restored_rows"] = count_rows(engine, f"{name}_native")
    else:
        raise SystemExit(f"unknown case {kind} {engine}")
    return out


# ---------------------------------------------------------------------------------------------
# Profiling one cdc case in-process
# ---------------------------------------------------------------------------------------------


def profile(what: str, engine: str, n: int) -> None:
    from pyinstrument import Profiler

    from cdc.backup.create import create_backup
    from cdc.backup.restore import Until, restore
    from cdc.config import load_config

    name = f"bench_bk_{uuid.uuid4().hex[:8]}"
    directory = Path(tempfile.mkdtemp(prefix="cdc-bench-backup-"))
    try:
        create_databases(name, n, [engine])
        config = load_config(write_config(directory, engine, name))
        profiler = Profiler(interval=0.0005)
        if what == "backup":
            profiler.start()
        t0 = time.perf_counter()
        manifest = create_backup(config, backup_id="bench")
        if what == "restore":
            target = _pg_url(f"{name}_cdc") if engine == "pg" else _my_url(f"{name}_cdc")
            profiler.start()
            t0 = time.perf_counter()
            restore(config, manifest.id, target, until=Until.parse("backup"))
        wall = time.perf_counter() - t0
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=os.environ.get("PROFILE_ALL") == "1"))
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "backup_profile.html").write_text(profiler.output_html())
        print(json.dumps({"case": f"{what} {engine}", "rows": n, "wall_s": wall, "rows_per_s": n / wall}))
    finally:
        drop_databases(name)
        shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------

LABELS = {
    ("pg", "cdc-backup"): "cdc backup create",
    ("pg", "native-backup"): "pg_dump -Fc",
    ("pg", "cdc-restore"): "cdc restore (bulk load)",
    ("pg", "native-restore"): "pg_restore",
    ("mariadb", "cdc-backup"): "cdc backup create",
    ("mariadb", "native-backup"): "mariadb-dump | zstd -3",
    ("mariadb", "cdc-restore"): "cdc restore (bulk load)",
    ("mariadb", "native-restore"): "zstd -dc | mariadb",
}


COLUMNS = [
    *("engine", "case", "rows", "wall_s", "rows_per_s", "x_native"),
    *("cpu_s", "peak_rss_mb", "size_mb", "size_vs_native", "load_1m"),
]


def empty_target(engine: str, database: str, *, create: bool = True) -> None:
    """Drop and create a restore target (each round restores into an empty database). With ``create`` false,
    only drop it: a restored table left behind would be vacuumed and analyzed by PostgreSQL's autovacuum
    (which reads and writes it all) during a later case."""
    if engine == "pg":
        from psycopg import sql

        with _pg_admin() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            if create:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        return
    conn = _my_conn()
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        if create:
            cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    conn.close()


def settle(engines: list[str]) -> None:
    """Start each case from the same server state, on every server the run uses (one still writing out the
    last case's or the fill's pages slows a case on the other down too): PostgreSQL checkpoints, so the
    WAL a previous case wrote (a million-row restore writes hundreds of MB) is not flushed in the middle
    of the next; MariaDB writes out every dirty InnoDB page."""
    if "pg" in engines:
        with _pg_admin() as admin:
            admin.execute("CHECKPOINT")
    if "mariadb" in engines:
        # InnoDB writes a restore's dirty pages out in the background for seconds after it (after the fill,
        # for a minute): have them all written now, as PostgreSQL's CHECKPOINT does.
        conn = _my_conn()
        with conn.cursor() as cur:
            cur.execute("FLUSH TABLES")
            cur.execute("SELECT @@GLOBAL.innodb_max_dirty_pages_pct")
            before = cur.fetchone()[0]
            cur.execute("SET GLOBAL innodb_max_dirty_pages_pct = 0")
            try:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
                    if int(cur.fetchone()[1]) == 0:
                        break
                    time.sleep(0.2)
            finally:
                cur.execute("SET GLOBAL innodb_max_dirty_pages_pct = %s", (before,))
        conn.close()
    time.sleep(0.5)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--profile":
        what = sys.argv[2] if len(sys.argv) > 2 else "backup"
        engine = sys.argv[3] if len(sys.argv) > 3 else "pg"
        profile(what, engine, int(sys.argv[4]) if len(sys.argv) > 4 else 200_000)
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--case":
        kind, engine, name, where = sys.argv[2:6]
        print(json.dumps(case(kind, engine, name, Path(where))))
        return 0
    n = int(sys.argv[1]) if len(sys.argv) > 1 else int(env("BENCH_BACKUP_ROWS", "1000000"))
    rounds = max(1, int(env("BENCH_BACKUP_ROUNDS", "5")))
    warmup = max(0, int(env("BENCH_BACKUP_WARMUP", "1")))
    name = f"bench_bk_{uuid.uuid4().hex[:8]}"
    directory = Path(tempfile.mkdtemp(prefix="cdc-bench-backup-"))
    results: list[dict[str, Any]] = []
    engines = env("BENCH_BACKUP_ENGINES", "pg,mariadb").split(",")
    try:
        compile_bytecode()
        create_databases(name, n, engines)
        for engine in engines:
            write_config(directory, engine, name)
            measured: dict[str, dict[str, Any]] = {}
            runs: dict[str, list[dict[str, Any]]] = {}
            kinds = ("native-backup", "cdc-backup", "native-restore", "cdc-restore")
            for round_ in range(warmup + rounds):  # the tool and cdc alternate: drift on the machine hits both
                for kind in kinds:
                    if kind.endswith("restore"):
                        empty_target(engine, f"{name}_{kind.split('-')[0]}")
                    settle(engines)
                    out = run_case(HERE, "--case", kind, engine, name, str(directory))
                    if "restored_rows" in out and out["restored_rows"] != n:
                        raise RuntimeError(f"{kind} {engine} restored {out['restored_rows']} of {n} rows")
                    if kind.endswith("restore"):  # counted: nothing of it may run on during the next case
                        empty_target(engine, f"{name}_{kind.split('-')[0]}", create=False)
                    if round_ >= warmup:
                        runs.setdefault(kind, []).append(out)
            for kind in kinds:
                ordered = sorted(runs[kind], key=lambda o: float(o["wall_s"]))
                out = dict(ordered[len(ordered) // 2])  # the median round (its CPU and RSS with it)
                out["walls"] = [round(float(o["wall_s"]), 3) for o in runs[kind]]
                measured[kind] = out
                row = {
                    "engine": "PostgreSQL 15" if engine == "pg" else "MariaDB 10.11",
                    "case": LABELS[(engine, kind)],
                    "rows": n,
                    "wall_s": out["wall_s"],
                    "walls": out["walls"],
                    "rows_per_s": n / out["wall_s"],
                    "cpu_s": out["cpu_s"],
                    "peak_rss_mb": out["peak_rss_mb"],
                    "size_mb": out["size_bytes"] / 2**20 if "size_bytes" in out else None,
                    "load_1m": os.getloadavg()[0],  # other work on the machine skews every figure
                }
                if kind.startswith("cdc"):
                    native = measured[kind.replace("cdc", "native")]
                    row["x_native"] = native["wall_s"] / out["wall_s"]
                    if "size_bytes" in out:
                        row["size_vs_native"] = out["size_bytes"] / native["size_bytes"]
                results.append(row)
    finally:
        drop_databases(name)
        shutil.rmtree(directory, ignore_errors=True)
    print_table(
        results,
        [
            "engine",
            "case",
            "rows",
            "wall_s",
            "walls",
            "rows_per_s",
            "x_native",
            "cpu_s",
            "peak_rss_mb",
            "size_mb",
            "size_vs_native",
        ],
    )
    for r in results:
        if "x_native" in r:
            verdict = "MET" if r["x_native"] >= 1.0 else "NOT MET"
            print(f"target (>= 1.0x native) {r['engine']} {r['case']}: {r['x_native']:.2f}x {verdict}")
    print(f"results: {write_results('backup', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

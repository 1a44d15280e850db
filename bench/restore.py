"""Benchmark: restore points. Rows/s of ``cdc backup create`` from MariaDB, and of the bulk load of
``cdc restore`` into PostgreSQL and MariaDB, against the local stack.

The source table has 8 columns (bigint key, int, varchar(16), decimal(12,2), datetime(6), varchar(255),
int, varchar(120)), as in ``bench/sink.py``. The backup uses the default 50,000-row chunks (zstd level 3,
no encryption; ``--key`` adds AES-256-GCM). The restore loads each chunk as one batch of ``op: r``
events through the SQL sink (PostgreSQL: COPY into a staging table and one merge; MariaDB: PyMySQL
multi-row ``INSERT … ON DUPLICATE KEY UPDATE``), with ``--until backup`` (no Kafka replay).

Usage: python bench/restore.py [N] [--key]     (default N 200000; BENCH_RESTORE_ROWS)
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import env, print_table, stack_env, write_results


def _mysql(url: str, database: str | None) -> Any:
    from urllib.parse import unquote, urlsplit

    import pymysql

    p = urlsplit(url)
    return pymysql.connect(
        host=p.hostname or "127.0.0.1",
        port=p.port or 3306,
        user=unquote(p.username or "root"),
        password=unquote(p.password or ""),
        database=database,
        charset="utf8mb4",
        autocommit=True,
    )


def _with_db(url: str, name: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url)._replace(path="/" + name).geturl()


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else int(env("BENCH_RESTORE_ROWS", "200000"))
    encrypted = "--key" in sys.argv
    stack = stack_env()
    mysql_url, pg_url = stack["CDC_MYSQL_URL"], stack["CDC_PG_URL"]
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = _mysql(mysql_url, None)
    admin.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    target_my = f"{name}_t"
    admin.cursor().execute(f"CREATE DATABASE `{target_my}` CHARACTER SET utf8mb4")
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as pg:
        pg.execute(f'CREATE DATABASE "{name}"')
    rows_out: list[dict[str, Any]] = []
    try:
        conn = _mysql(mysql_url, name)
        cur = conn.cursor()
        cur.execute(
            "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id INT, status VARCHAR(16), "
            "amount DECIMAL(12,2), created_at DATETIME(6), note VARCHAR(255), flags INT, email VARCHAR(120))"
        )
        base = datetime(2023, 11, 14)
        for start in range(0, n, 10_000):
            cur.executemany(
                "INSERT INTO orders VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        i,
                        i % 9973,
                        "new",
                        Decimal(i % 100_000) / 100,
                        base + timedelta(microseconds=i),
                        f"order note {i} " + "lorem ipsum dolor sit " * 3,
                        i & 7,
                        f"customer{i % 9973}@example.com",
                    )
                    for i in range(start, min(n, start + 10_000))
                ],
            )
        with tempfile.TemporaryDirectory() as tmp:
            cfg_path = Path(tmp) / "cdc.yaml"
            key = ""
            if encrypted:
                (Path(tmp) / "k").write_text("ab" * 32)
                key = "  encryption_key_file: k\n"
            cfg_path.write_text(
                f"name: bench\nsource:\n  type: mysql\n  url: {mysql_url}\n  server_id: 4242\n"
                f"  tables: ['{name}.*']\nbus:\n  type: direct\nsinks:\n  - name: x\n    url: sqlite:///{tmp}/x.db\n"
                f"backups:\n  destination: {tmp}/backups\n{key}"
            )
            from cdc.backup.create import create_backup
            from cdc.backup.restore import Until, restore
            from cdc.config import load_config

            config = load_config(cfg_path)
            t0 = time.perf_counter()
            manifest = create_backup(config)
            wall = time.perf_counter() - t0
            rows_out.append(
                {
                    "case": "backup create",
                    "rows": n,
                    "wall_s": wall,
                    "rows_per_s": n / wall,
                    "bytes_per_row": manifest.size / n,
                }
            )
            for target, url in (
                ("restore into postgresql", _with_db(pg_url, name)),
                ("restore into mariadb", _with_db(mysql_url, target_my)),
            ):
                t0 = time.perf_counter()
                result = restore(config, manifest.id, url, until=Until.parse("backup"))
                wall = time.perf_counter() - t0
                assert result.loaded_rows == n
                rows_out.append({"case": target, "rows": n, "wall_s": wall, "rows_per_s": n / wall})
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{target_my}`")
        with psycopg.connect(pg_url, autocommit=True) as pg:
            pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print_table(rows_out, ["case", "rows", "wall_s", "rows_per_s", "bytes_per_row"])
    path = write_results("restore" + ("-encrypted" if encrypted else ""), rows_out)
    print(f"results: {path}")


if __name__ == "__main__":
    main()

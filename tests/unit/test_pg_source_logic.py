"""Pure logic of the PostgreSQL source: buffering of streamed transactions (memory, then a file),
snapshot progress round trips, row images from text values, URLs and error messages."""

from __future__ import annotations

import pytest

from cdc.errors import DecodeError
from cdc.events import Column, Logical, TableId, TableSchema, Wire
from connectors.postgres.errors import connect_error, describe_url
from connectors.postgres.snapshot import SnapshotProgress, TablePlan
from connectors.postgres.source import _libpq_url, _StreamBuffer


def _records(n: int) -> list[tuple[int, int, bytes]]:
    return [(100 + i % 3, 1000 + i, bytes([i % 256]) * (i % 50 + 1)) for i in range(n)]


@pytest.mark.parametrize("spill_at", [None, 0, 10, 99])
def test_stream_buffer_keeps_order_in_memory_and_after_spilling(spill_at: int | None) -> None:
    buf = _StreamBuffer()
    expected = _records(100)
    in_memory = 0
    for k, (subxid, lsn, payload) in enumerate(expected):
        if k == spill_at:
            freed = buf.spill()
            assert freed == in_memory and buf.size == 0
            in_memory = 0
        in_memory += buf.add(subxid, lsn, payload)
    assert buf.size == in_memory
    assert list(buf) == expected
    assert list(buf) == expected  # iterable again (a replay reads it once, but nothing breaks twice)
    buf.close()
    assert buf.file is None and buf.records == []


def test_stream_buffer_marks_itself_incomplete_without_a_first_segment() -> None:
    assert _StreamBuffer().complete and not _StreamBuffer(complete=False).complete


def test_snapshot_progress_round_trip_and_view() -> None:
    p = SnapshotProgress(
        ["public.a", "public.b"],
        ["public.a"],
        "public.b",
        ["42", "x"],
        7,
        1500,
        100,
        {"public.a": 1000, "public.b": 600},
    )
    back = SnapshotProgress.from_dict(p.to_dict())
    assert back.to_dict() == p.to_dict()
    view = p.view()
    assert view == {
        "table": "public.b",
        "rows": 1500,
        "rows_total_estimate": 1500,
        "tables_done": 1,
        "tables_total": 2,
        "estimates": {"public.a": 1000, "public.b": 600},
    }


def _plan() -> TablePlan:
    wire_int = Wire("int32")
    wire_str = Wire("string")
    cols = (
        Column("id", "integer", Logical.INT32, wire_int, False, position=1),
        Column("name", "text", Logical.TEXT, wire_str, position=3),
    )
    schema = TableSchema(TableId("public", "t"), cols, ("id",))
    # column 2 of the full row ("secret") is excluded: it has no field
    return TablePlan(schema, ((0, "id", int), (2, "name", str.upper)), 3)


def test_table_plan_image_skips_excluded_columns_and_keeps_nulls() -> None:
    plan = _plan()
    assert plan.names == ("id", "name")
    assert plan.image(["7", "hunter2", "ann"]) == {"id": 7, "name": "ANN"}
    assert plan.image(["8", None, None]) == {"id": 8, "name": None}


def test_table_plan_conversion_error_names_the_column_never_the_value() -> None:
    with pytest.raises(DecodeError) as info:
        _plan().image(["not-a-number-hunter2", "x", "y"])
    assert "'id'" in str(info.value) and "integer" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_libpq_url_drops_the_sqlalchemy_driver() -> None:
    assert _libpq_url("postgresql+psycopg://u:p@h:5/db") == "postgresql://u:p@h:5/db"
    assert _libpq_url("postgres://u@h/db") == "postgresql://u@h/db"


def test_connect_errors_name_user_and_host_but_no_password() -> None:
    assert describe_url("postgresql://ann:pw@db.example:6543/shop") == ("ann", "db.example:6543", "shop")
    exc = Exception(
        'connection failed: connection to server at "10.0.0.1", port 6543 failed: FATAL:  '
        'password authentication failed for user "ann"'
    )
    err = connect_error(exc, "postgresql://ann:s3cret@db.example:6543/shop")
    text = str(err)
    assert "s3cret" not in text
    assert text == (
        "cannot connect to PostgreSQL at db.example:6543 as 'ann': password authentication failed for user \"ann\""
    )


def test_table_plan_image_with_names_that_are_not_identifiers() -> None:
    from connectors.postgres.types import IDENTITY

    names = ['a"b', "x'); import os; ('", "é 🎉", "{c}", "back\\slash"]
    cols = tuple(Column(n, "text", Logical.TEXT, Wire("string"), position=k + 1) for k, n in enumerate(names))
    plan = TablePlan(
        TableSchema(TableId("public", "q"), cols, ()),
        tuple((k, n, IDENTITY if k % 2 else str.upper) for k, n in enumerate(names)),
        len(names),
    )
    assert plan.image(["v0", "v1", None, "v3", "v4"]) == {
        'a"b': "V0",
        "x'); import os; ('": "v1",
        "é 🎉": None,
        "{c}": "v3",
        "back\\slash": "V4",
    }
    with pytest.raises(DecodeError):
        plan.image(["only one"])  # a tuple shorter than the relation: a typed error, not an IndexError

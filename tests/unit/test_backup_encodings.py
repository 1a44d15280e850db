"""Native chunk encodings without servers: the format-2 writer and reader, format-1 backups still read,
and the line formats (PostgreSQL COPY text, MySQL LOAD DATA text) read back to the values written."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdc.backup.catalog import Catalog
from cdc.backup.format import (
    MANIFEST,
    SEAL,
    BackupWriter,
    ChunkCodec,
    ChunkInfo,
    Manifest,
    iter_rows,
    make_seal,
    read_chunk,
    read_manifest,
)
from cdc.backup.keys import BackupKeys
from cdc.errors import BackupCorruptError, BackupError
from cdc.events import TableId
from connectors.mysql import backup as mysql_backup
from connectors.postgres.backup import copy_fields
from tests.unit.test_backup_format import KEY, POSITION, _change, _rows

ITEMS = TableId("shop", "items")
NATIVE = {"columns": ["id", "price", "note"], "anything": [1, "the connector's own"]}


def _commit(writer: BackupWriter) -> Manifest:
    return writer.commit(
        pipeline="shop", source="mysql", position=POSITION, snapshot_ms=2000, started_ms=1000, finished_ms=3000
    )


@pytest.mark.parametrize("keys", [None, BackupKeys(KEY)], ids=["plain", "encrypted"])
def test_native_chunks_round_trip_with_their_encoding_and_description(tmp_path: Path, keys: BackupKeys | None) -> None:
    writer = BackupWriter(tmp_path, "n1", keys)
    writer.open()
    writer.add_table(_change(ITEMS), "mysql-tsv", NATIVE)
    chunks = [b"1\t\\N\tone\n2\t3.50\ttab\\\there\n", b"3\t0.00\tline\\nfeed\n"]
    for text in chunks:
        writer.add_chunk(ITEMS, bytearray(text), text.count(b"\n"))
    manifest = _commit(writer)

    read = read_manifest(tmp_path / "n1", keys)
    (entry,) = read.tables
    assert (read.format, entry.encoding, entry.native, entry.rows) == (2, "mysql-tsv", NATIVE, 3)
    assert [c.file.rsplit("/", 1)[-1] for c in entry.chunks] == [
        "000000.tsv.zst" + (".aes" if keys else ""),
        "000001.tsv.zst" + (".aes" if keys else ""),
    ]
    codec = ChunkCodec("n1", keys)
    got = [codec.lines(read_chunk(tmp_path / "n1", c, "b"), c, "b") for c in entry.chunks]
    assert got == chunks
    verified = Catalog(tmp_path, keys).verify("n1")
    assert (verified.rows, verified.chunks) == (3, 2) and manifest.rows == 3


def test_a_native_chunk_whose_lines_disagree_with_the_manifest_is_refused(tmp_path: Path) -> None:
    codec = ChunkCodec("b", None)
    data = codec.seal(b"1\n2\n3\n", "data/0000/000000.copy.zst")
    sha = __import__("hashlib").sha256(data).hexdigest()
    for rows, text_ok in ((3, True), (2, False), (4, False)):
        chunk = ChunkInfo("data/0000/000000.copy.zst", rows, len(data), sha)
        if text_ok:
            assert codec.lines(data, chunk, "b") == b"1\n2\n3\n"
        else:
            with pytest.raises(BackupCorruptError, match="3 lines; the manifest says"):
                codec.lines(data, chunk, "b")
    unterminated = codec.seal(b"1\n2", "f")
    chunk = ChunkInfo("f", 1, len(unterminated), __import__("hashlib").sha256(unterminated).hexdigest())
    with pytest.raises(BackupCorruptError):
        codec.lines(unterminated, chunk, "b")


def test_rows_and_native_chunks_do_not_mix_in_one_table(tmp_path: Path) -> None:
    writer = BackupWriter(tmp_path, "mix", None)
    writer.open()
    writer.add_table(_change(ITEMS), "pg-copy", NATIVE)
    with pytest.raises(BackupError, match="add_chunk"):
        writer.add_rows(ITEMS, _rows(2))
    other = TableId("shop", "other")
    writer.add_table(_change(other))
    with pytest.raises(BackupError, match="add_rows"):
        writer.add_chunk(other, b"1\n", 1)
    with pytest.raises(BackupError, match="unknown chunk encoding"):
        writer.add_table(_change(other), "csv", {})
    writer.abort()


def test_a_format_1_backup_still_reads(tmp_path: Path) -> None:
    """Format 1 knew only JSON lines and had no encoding fields; it reads as before (its seal covers its bytes)."""
    writer = BackupWriter(tmp_path, "old", None, chunk_rows=4)
    writer.open()
    writer.add_table(_change(ITEMS))
    writer.add_rows(ITEMS, _rows(10))
    _commit(writer)
    path = tmp_path / "old"
    doc = orjson.loads((path / MANIFEST).read_bytes())
    doc["format"] = 1
    for table in doc["tables"]:
        del table["encoding"], table["native"]
    data = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    (path / MANIFEST).write_bytes(data)
    (path / SEAL).write_bytes(make_seal(data, None))

    manifest = read_manifest(path, None)
    (entry,) = manifest.tables
    assert (manifest.format, entry.encoding, entry.native) == (1, "jsonl", None)
    rows = [r for _, chunk in iter_rows(path, manifest, entry, None) for r in chunk]
    assert rows == _rows(10)
    assert Catalog(tmp_path, None).verify("old").rows == 10


def test_an_encoding_this_cdc_does_not_know_is_refused(tmp_path: Path) -> None:
    writer = BackupWriter(tmp_path, "x", None)
    writer.open()
    writer.add_table(_change(ITEMS), "pg-copy", NATIVE)
    writer.add_chunk(ITEMS, b"1\n", 1)
    _commit(writer)
    doc = orjson.loads((tmp_path / "x" / MANIFEST).read_bytes())
    doc["tables"][0]["encoding"] = "parquet"
    with pytest.raises(BackupError, match="encoding 'parquet'"):
        Manifest.from_bytes(orjson.dumps(doc))


# ---------------------------------------------------------------------------------------------
# PostgreSQL COPY text
# ---------------------------------------------------------------------------------------------

_COPY_OUT = {"\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _copy_to(values: list[str | None]) -> bytes:
    """One line as COPY TO writes it in text format (PostgreSQL docs, "Text Format")."""
    return "\t".join("\\N" if v is None else "".join(_COPY_OUT.get(c, c) for c in v) for v in values).encode()


@given(st.lists(st.one_of(st.none(), st.text()), min_size=1, max_size=6))
def test_copy_text_lines_read_back_to_the_values(values: list[str | None]) -> None:
    assert copy_fields(_copy_to(values)) == values


def test_copy_text_also_reads_the_escapes_only_copy_from_takes() -> None:
    assert copy_fields(b"\\101\\x42\\7\tplain\t\\N\t\\\\N\t\\q") == ["AB\x07", "plain", None, "\\N", "q"]


# ---------------------------------------------------------------------------------------------
# MySQL LOAD DATA text
# ---------------------------------------------------------------------------------------------


def _server_line(values: list[str | None]) -> bytes:
    """One line as the backup's SELECT has the server write it: backslash and tab get a backslash before
    them, a line feed becomes ``\\n``, NULL is ``\\N``."""

    def esc(v: str) -> str:
        return re.sub(r"[\\\t]", lambda m: "\\" + m.group(0), v).replace("\n", "\\n")

    return "\t".join("\\N" if v is None else esc(v) for v in values).encode()


@given(st.lists(st.one_of(st.none(), st.text()), min_size=1, max_size=6))
def test_load_data_lines_read_back_to_the_values(values: list[str | None]) -> None:
    line = _server_line(values)
    assert b"\n" not in line  # one row, one line
    fields = mysql_backup._split_fields(line)
    got = [None if f == b"\\N" else mysql_backup._ESCAPE.sub(mysql_backup._unescape, f).decode() for f in fields]
    assert got == values


def test_load_data_chunks_split_into_their_lines() -> None:
    text = _server_line(["a\nb", None]) + b"\n" + _server_line(["c\\", "d\te"]) + b"\n"
    lines = mysql_backup._split_lines(text)
    assert len(lines) == 2
    assert [mysql_backup._split_fields(line) for line in lines] == [[b"a\\nb", b"\\N"], [b"c\\\\", b"d\\\te"]]


# ---------------------------------------------------------------------------------------------
# The compiled line builder (connectors/mysql/_backup_speedups.c) against the Python reference
# ---------------------------------------------------------------------------------------------


def _lenenc(value: bytes | None) -> bytes:
    if value is None:
        return b"\xfb"
    n = len(value)
    if n < 0xFB:
        return bytes([n]) + value
    if n < 1 << 16:
        return b"\xfc" + n.to_bytes(2, "little") + value
    return b"\xfd" + n.to_bytes(3, "little") + value


def _packet(seq: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq % 256]) + payload


_VALUES = st.one_of(st.none(), st.binary(max_size=40), st.binary(min_size=250, max_size=300))


@pytest.mark.skipif(mysql_backup._SPEEDUPS is None, reason="the compiled line builder is not built")
@given(
    st.lists(st.lists(_VALUES, min_size=3, max_size=3), max_size=20),
    st.lists(st.booleans(), min_size=3, max_size=3),
    st.integers(1, 25),
    st.integers(0, 40),
)
def test_the_compiled_line_builder_writes_what_the_reference_writes(
    rows: list[list[bytes | None]], hexed: list[bool], max_rows: int, cut: int
) -> None:
    assert mysql_backup._SPEEDUPS is not None
    convert = mysql_backup._SPEEDUPS.rows
    mask = bytes(hexed)
    payloads = [b"".join(_lenenc(v) for v in row) for row in rows]
    stream = b"".join(_packet(k + 2, p) for k, p in enumerate(payloads)) + _packet(len(rows) + 2, b"\xfe\0\0\2\0")
    expected = [mysql_backup._row_line(p, mask) for p in payloads]
    # fed in two pieces, cut anywhere, at most max_rows rows per call: the same lines, then the end
    got: list[bytes] = []
    buf, pos, status = stream[: len(stream) * cut // 40], 0, 0
    rest = stream[len(buf) :]
    for _ in range(200):
        end, lines, n, status, _seq, _suspect = convert(buf, pos, 3, mask, max_rows)
        assert n <= max_rows and lines.count(b"\n") == n
        got.append(lines)
        pos = end
        if status == 1:
            break
        if status == 0:
            buf, pos, rest = buf[pos:] + rest, 0, b""
    assert status == 1 and pos == len(buf)
    assert b"".join(got) == b"".join(expected)


def _real_date(text: bytes) -> bool:
    """What PyMySQL reads as a date (the reference of the compiled reader's date check)."""
    import datetime
    import re

    if not re.fullmatch(rb"\d{4}-\d{2}-\d{2}", text[:10]):
        return False
    try:
        datetime.date(int(text[:4]), int(text[5:7]), int(text[8:10]))
    except ValueError:
        return False
    return True


_DATES = st.one_of(
    st.none(),
    st.builds(
        lambda y, m, d, rest: b"%04d-%02d-%02d%s" % (y, m, d, rest),
        st.integers(0, 9999),
        st.integers(0, 13),
        st.integers(0, 32),
        st.sampled_from([b"", b" 00:00:00", b" 23:59:59.999999"]),
    ),
    st.binary(max_size=12),
)


@pytest.mark.skipif(mysql_backup._SPEEDUPS is None, reason="the compiled line builder is not built")
@given(st.lists(st.tuples(_DATES, _VALUES), max_size=20))
def test_the_compiled_line_builder_counts_the_rows_holding_a_zero_or_impossible_date(
    rows: list[tuple[bytes | None, bytes | None]],
) -> None:
    assert mysql_backup._SPEEDUPS is not None
    mask = b"\x02\x00"  # a date column, then another one (not looked at)
    payloads = [_lenenc(d) + _lenenc(v) for d, v in rows]
    stream = b"".join(_packet(k + 2, p) for k, p in enumerate(payloads)) + _packet(len(rows) + 2, b"\xfe\0\0\2\0")
    _end, lines, n, status, _seq, suspect = mysql_backup._SPEEDUPS.rows(stream, 0, 2, mask, 100)
    assert status == 1 and n == len(rows)
    assert lines == b"".join(mysql_backup._row_line(p, mask) for p in payloads)  # the date bit writes nothing
    assert suspect == sum(1 for d, _ in rows if d is not None and not _real_date(d))


@pytest.mark.skipif(mysql_backup._SPEEDUPS is None, reason="the compiled line builder is not built")
def test_the_compiled_line_builder_stops_at_errors_and_long_packets_and_refuses_bad_rows() -> None:
    assert mysql_backup._SPEEDUPS is not None
    convert = mysql_backup._SPEEDUPS.rows
    row = _packet(2, _lenenc(b"a") + _lenenc(None))
    error = _packet(3, b"\xff\x15\x04#HY000boom")
    assert convert(row + error, 0, 2, b"\0\0", 10)[1:4] == (b"a\t\\N\n", 1, 2)
    long = b"\xff\xff\xff\x03" + b"x" * 10
    assert convert(row + long, 0, 2, b"\0\0", 10)[2:4] == (1, 3)
    with pytest.raises(ValueError, match="expected shape"):
        convert(_packet(2, _lenenc(b"a")), 0, 2, b"\0\0", 10)  # one value where two are expected
    with pytest.raises(ValueError, match="expected shape"):
        convert(_packet(2, b"\x05ab" + _lenenc(b"c")), 0, 2, b"\0\0", 10)  # a length past the packet

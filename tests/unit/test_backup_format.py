"""The backup format: chunks, encryption, manifest and seal; tampering is detected, killed writers leave no backup."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

from cdc.backup.catalog import Catalog
from cdc.backup.format import (
    MANIFEST,
    SEAL,
    BackupWriter,
    ChunkCodec,
    ChunkInfo,
    Manifest,
    check_seal,
    make_seal,
    partial_in_use,
    read_manifest,
)
from cdc.backup.keys import BackupKeys, parse_key
from cdc.errors import BackupCorruptError, BackupError
from cdc.events import Column, Logical, SchemaChange, TableId, TableSchema, Wire
from cdc.positions import MySqlPosition

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
POSITION = MySqlPosition("mysql-bin.000003", 4711, None, 1)


def _change(table: TableId) -> SchemaChange:
    cols = (
        Column("id", "INT", Logical.INT32, Wire("int32", optional=False), nullable=False, position=1),
        Column(
            "price",
            "DECIMAL(10,2)",
            Logical.DECIMAL,
            Wire(
                "bytes", "org.apache.kafka.connect.data.Decimal", 1, {"scale": "2", "connect.decimal.precision": "10"}
            ),
            precision=10,
            scale=2,
            position=2,
        ),
        Column("note", "VARCHAR(20)", Logical.STRING, Wire("string"), length=20, position=3),
    )
    schema = TableSchema(table, cols, ("id",), 3)
    source = {
        "connector": "mysql",
        "name": "shop",
        "db": table.schema,
        "table": table.table,
        "ts_ms": 1,
        "file": "f.1",
        "pos": 4,
    }
    return SchemaChange("CREATE", schema, None, source, 1, POSITION)


def _rows(n: int, start: int = 0) -> list[dict[str, object]]:
    return [{"id": i, "price": "AZs=", "note": f"row {i} ünïcødé"} for i in range(start, start + n)]


def _write(dest: Path, backup_id: str, keys: BackupKeys | None, rows: int = 25, chunk_rows: int = 10) -> Manifest:
    writer = BackupWriter(dest, backup_id, keys, chunk_rows=chunk_rows)
    writer.open()
    a, b = TableId("shop", "items"), TableId("shop", "empty")
    writer.add_table(_change(a))
    writer.add_table(_change(b))
    writer.add_rows(a, _rows(rows))
    return writer.commit(
        pipeline="shop", source="mysql", position=POSITION, snapshot_ms=2000, started_ms=1000, finished_ms=3000
    )


@pytest.mark.parametrize("keys", [None, BackupKeys(KEY)], ids=["plain", "encrypted"])
def test_a_backup_round_trips_rows_definitions_and_position(tmp_path: Path, keys: BackupKeys | None) -> None:
    manifest = _write(tmp_path, "b1", keys, rows=25, chunk_rows=10)
    assert not (tmp_path / "b1.partial").exists()
    loaded = read_manifest(tmp_path / "b1", keys)
    assert loaded.position == POSITION
    assert (loaded.snapshot_ms, loaded.started_ms, loaded.finished_ms) == (2000, 1000, 3000)
    assert [str(t.table) for t in loaded.tables] == ["shop.items", "shop.empty"]
    items = loaded.tables[0]
    assert [c.rows for c in items.chunks] == [10, 10, 5]
    assert items.rows == 25 and loaded.rows == 25 and loaded.tables[1].rows == 0
    assert loaded.size == manifest.size == sum(os.path.getsize(tmp_path / "b1" / c.file) for c in items.chunks)
    # the definition travels exactly (the schema-change encoding of the change topics)
    assert items.schema().schema == _change(TableId("shop", "items")).schema
    codec = ChunkCodec("b1", keys)
    rows = [r for c in items.chunks for r in codec.decode((tmp_path / "b1" / c.file).read_bytes(), c, "b1")]
    assert rows == _rows(25)
    assert (loaded.encryption is not None) == (keys is not None)
    result = Catalog(tmp_path, keys).verify("b1")
    assert (result.chunks, result.rows) == (3, 25)
    assert result.seal == ("hmac-sha256" if keys else "sha256")


def test_encrypted_chunks_hide_the_rows_and_need_the_key(tmp_path: Path) -> None:
    keys = BackupKeys(KEY)
    _write(tmp_path, "b1", keys)
    data = b"".join(p.read_bytes() for p in (tmp_path / "b1" / "data").rglob("*.aes"))
    assert data and b"row 1" not in data
    with pytest.raises(BackupError, match="no key is configured"):
        read_manifest(tmp_path / "b1", None)
    with pytest.raises(BackupError, match="another key"):
        read_manifest(tmp_path / "b1", BackupKeys(OTHER_KEY))


def test_two_encryptions_of_the_same_rows_differ(tmp_path: Path) -> None:
    codec = ChunkCodec("b1", BackupKeys(KEY))
    assert codec.encode(_rows(3), "f") != codec.encode(_rows(3), "f")  # random nonce per chunk


@pytest.mark.parametrize("keys", [None, BackupKeys(KEY)], ids=["plain", "encrypted"])
def test_a_flipped_byte_in_a_data_file_is_refused(tmp_path: Path, keys: BackupKeys | None) -> None:
    manifest = _write(tmp_path, "b1", keys)
    chunk = manifest.tables[0].chunks[1]
    path = tmp_path / "b1" / chunk.file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BackupCorruptError, match=r"000001\.jsonl\.zst.*SHA-256"):
        Catalog(tmp_path, keys).verify("b1")
    with pytest.raises(BackupCorruptError):
        Catalog(tmp_path, keys).check_files(tmp_path / "b1", manifest)


@pytest.mark.parametrize("keys", [None, BackupKeys(KEY)], ids=["plain", "encrypted"])
def test_a_flipped_byte_in_the_manifest_is_refused(tmp_path: Path, keys: BackupKeys | None) -> None:
    _write(tmp_path, "b1", keys)
    path = tmp_path / "b1" / MANIFEST
    data = bytearray(path.read_bytes())
    i = data.index(b'"rows": 25')
    data[i + 8] = ord("6")  # claim 26 rows
    path.write_bytes(bytes(data))
    with pytest.raises(BackupCorruptError, match="manifest does not match"):
        read_manifest(tmp_path / "b1", keys)
    entries = Catalog(tmp_path, keys).entries()
    assert [(e.id, e.status) for e in entries] == [("b1", "corrupt")]


def test_an_encrypted_chunk_moved_to_another_place_fails_authentication(tmp_path: Path) -> None:
    keys = BackupKeys(KEY)
    manifest = _write(tmp_path, "b1", keys)
    first, second = manifest.tables[0].chunks[:2]
    codec = ChunkCodec("b1", keys)
    data = (tmp_path / "b1" / first.file).read_bytes()
    moved = ChunkInfo(second.file, first.rows, first.size, first.sha256)  # a manifest rewritten to match
    with pytest.raises(BackupCorruptError, match="AES-GCM"):
        codec.decode(data, moved, "b1")


def test_the_sha256_seal_is_not_authentication_so_a_keyed_reader_refuses_it(tmp_path: Path) -> None:
    _write(tmp_path, "b1", None)
    manifest = (tmp_path / "b1" / MANIFEST).read_bytes()
    forged = manifest.replace(b'"rows": 25', b'"rows": 26')
    # anyone can recompute a SHA-256 seal: without a key it detects accidents, not a forger...
    assert check_seal(forged, make_seal(forged, None), None, "b1") == "sha256"
    # ...so a reader with a key accepts only HMAC seals, which need the key
    with pytest.raises(BackupCorruptError, match="not authenticated"):
        check_seal(manifest, (tmp_path / "b1" / SEAL).read_bytes(), BackupKeys(KEY), "b1")
    keyed = make_seal(forged, BackupKeys(KEY))
    with pytest.raises(BackupCorruptError, match="HMAC"):
        check_seal(manifest, keyed, BackupKeys(KEY), "b1")


def test_a_backup_renamed_to_another_id_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "b1", None)
    (tmp_path / "b1").rename(tmp_path / "b2")
    with pytest.raises(BackupCorruptError, match="names backup 'b1'"):
        read_manifest(tmp_path / "b2", None)


def test_a_manifest_of_another_format_version_is_refused() -> None:
    doc = {"format": 99, "id": "x"}
    with pytest.raises(BackupError, match="format version 99"):
        Manifest.from_bytes(orjson.dumps(doc))


def test_a_killed_writer_leaves_only_a_partial_directory_that_is_never_listed(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path[:0] = {sys.path!r}
        from pathlib import Path
        from tests.unit.test_backup_format import _change, _rows
        from cdc.backup.format import BackupWriter
        from cdc.events import TableId
        w = BackupWriter(Path({str(tmp_path)!r}), "killed", None, chunk_rows=5)
        w.open()
        t = TableId("shop", "items")
        w.add_table(_change(t))
        w.add_rows(t, _rows(12))
        w.wait()
        print("written", flush=True)
        os.kill(os.getpid(), 9)
        """
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    assert "written" in proc.stdout
    partial = tmp_path / "killed.partial"
    assert len(list((partial / "data").rglob("*.zst"))) == 2
    catalog = Catalog(tmp_path, None)
    assert catalog.entries() == []
    assert [(p.id, p.in_use) for p in catalog.partials()] == [("killed", False)]
    with pytest.raises(BackupError, match="only an incomplete"):
        catalog.load("killed")


def test_a_partial_backup_being_written_is_in_use_and_not_pruned(tmp_path: Path) -> None:
    from cdc.config import BackupRetentionConfig

    writer = BackupWriter(tmp_path, "live", None)
    writer.open()
    assert partial_in_use(tmp_path / "live.partial")
    result = Catalog(tmp_path, None).prune(BackupRetentionConfig())
    assert result.removed_partials == [] and (tmp_path / "live.partial").exists()
    writer.abort()
    assert not (tmp_path / "live.partial").exists()


def test_prune_removes_abandoned_partials_and_interrupted_deletes(tmp_path: Path) -> None:
    from cdc.config import BackupRetentionConfig

    _write(tmp_path, "b1", None)
    (tmp_path / "dead.partial" / "data").mkdir(parents=True)
    (tmp_path / "dead.partial" / ".lock").touch()
    (tmp_path / "old.deleting").mkdir()
    result = Catalog(tmp_path, None).prune(BackupRetentionConfig())
    assert result.removed_partials == ["dead"] and result.kept == ["b1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b1"]


def test_delete_removes_a_backup(tmp_path: Path) -> None:
    _write(tmp_path, "b1", None)
    _write(tmp_path, "b2", None)
    catalog = Catalog(tmp_path, None)
    catalog.delete("b1")
    assert [e.id for e in catalog.entries()] == ["b2"]
    with pytest.raises(BackupError, match="no backup 'b1'"):
        catalog.delete("b1")


@pytest.mark.parametrize(
    "text",
    [KEY.hex().encode(), KEY.hex().upper().encode() + b"\n", base64.b64encode(KEY) + b"\n", KEY],
    ids=["hex", "HEX-newline", "base64", "raw"],
)
def test_key_files_in_every_documented_form(text: bytes) -> None:
    assert parse_key(text) == KEY


@pytest.mark.parametrize(
    "text", [b"", b"abc", KEY.hex()[:-2].encode(), b"x" * 33], ids=["empty", "short", "hex-31", "33"]
)
def test_bad_key_files_are_refused_without_showing_them(text: bytes) -> None:
    with pytest.raises(ValueError) as info:
        parse_key(text)
    assert "256-bit" in str(info.value)
    if len(text) > 4:
        assert text.decode(errors="replace") not in str(info.value)


def test_derived_keys_are_distinct_and_per_backup() -> None:
    keys = BackupKeys(KEY)
    assert keys.chunk_key("a") != keys.chunk_key("b")
    assert keys.mac_key() not in (keys.chunk_key("a"), KEY)
    assert keys.key_id == BackupKeys(KEY).key_id != BackupKeys(OTHER_KEY).key_id
    assert KEY.hex() not in repr(keys)

"""The backup format: a directory of compressed (optionally encrypted) chunk files and a sealed manifest.

Layout of a complete backup ``<destination>/<id>/``::

    manifest.json                 what the backup holds (below); written last
    manifest.seal                 HMAC-SHA256 (with a key) or SHA-256 (without) of manifest.json
    data/0000/000000.copy.zst     table 0, chunk 0 (".aes" appended when encrypted)
    data/0000/000001.copy.zst     ...

**Chunks.** A chunk holds up to ``chunk_rows`` rows of one table, in the table's **encoding**
(``TableEntry.encoding``; one line per row except in ``pg-binary``):

* ``jsonl`` (``.jsonl.zst``): each line is the ``after`` image of the snapshot's ``op: r`` event as
  JSON, in Debezium's representation (the very values the change topics carry), so a restore hands
  them to the sink's usual conversion unchanged. Any source can write it; format 1 knew only this.
* ``pg-copy`` (``.copy.zst``, PostgreSQL sources): the rows as ``COPY … TO STDOUT`` writes them in
  its text format (tab-separated, ``\\N`` for NULL, backslash escapes), under the session settings of
  :func:`connectors.postgres.types.session_options`, so every value is the text of its type's output
  function: exactly what the initial snapshot and pgoutput read.
* ``pg-binary`` (``.pgbin.zst``, PostgreSQL sources, tables whose every column has a type of
  :data:`connectors.postgres.copybin.BINARY_TYPES`): each chunk a whole stream of ``COPY … TO STDOUT
  (FORMAT binary)`` (header, one tuple per row, end marker). PostgreSQL loads it without parsing text;
  another engine gets the same values as from ``pg-copy`` (:mod:`connectors.postgres.copybin`). It is
  not line-based: its rows are counted by the connector (``count_rows``).
* ``mysql-tsv`` (``.tsv.zst``, MySQL/MariaDB sources): the rows as ``LOAD DATA`` reads them
  (tab-separated, ``\\N`` for NULL, backslash escapes; binary columns in hex), each value the text
  the server's text protocol sends for it.

A native encoding is read and written without converting a single value in Python: a restore into
the same engine loads the lines as they are (``COPY FROM``, ``LOAD DATA``), a restore into another
engine turns them into Debezium values with the source connector's own text converters
(``native`` in the table's entry says how: the columns, their types and the representation modes
of the source). The lines are compressed as one zstandard frame (with its content checksum). With a key, the frame is
encrypted with AES-256-GCM under the backup's own derived key (:mod:`cdc.backup.keys`), with a
random 96-bit nonce per chunk and the backup id and file name as associated data, so a chunk
cannot be moved to another place or another backup unnoticed; the file is then
``b"CDCB\\x01" + nonce + ciphertext-and-tag``. The manifest records every chunk's row count, size
and the SHA-256 of its bytes as stored.

**Manifest** (``manifest.json``, JSON): ``format`` (:data:`FORMAT_VERSION`; this version also reads
format 1, and refuses others),
``id``, ``pipeline``, ``source`` (connector type), ``position`` (the source position of the
snapshot's consistent view, :meth:`cdc.positions.Position.to_dict`), ``snapshot_ms`` (wall-clock
time when that view was taken), ``started_ms``, ``finished_ms``, ``compression``, ``encryption``
(``"aes-256-gcm"`` or null), ``key_id``, ``cdc_version`` and ``tables``: per table its id, its
definition as the schema-change event value :meth:`cdc.envelope.EnvelopeCodec.encode_schema_change`
writes (so types travel exactly as on the change topics), its row count, its chunks, its
``encoding`` and, for a native encoding, ``native`` (what reading it takes; written by the source
connector and read by it again).

**Seal** (``manifest.seal``, JSON): with a key, ``{"alg": "hmac-sha256", "key_id", "mac"}`` over
the manifest's bytes with the derived MAC key: real authentication, only the key's holder can
make one. Without a key, ``{"alg": "sha256", "digest"}``: it detects corruption and accidental or
careless edits, but anyone can recompute it, so it does not stop a deliberate forger. A reader
that holds a key refuses SHA-256-sealed backups, because accepting them would let anyone replace
an authenticated backup with an unauthenticated one.

**Atomicity.** A backup is written into ``<id>.partial/`` (which holds a lock for as long as its
writer lives), every file is fsynced, the manifest and its seal last, then the directory is
renamed to ``<id>/`` and the parent fsynced. A directory without the ``.partial`` suffix is
therefore complete; a killed writer leaves only a ``.partial`` directory, which is never listed as
a backup and which ``prune`` removes once its lock is free.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import hashlib
import hmac
import os
import re
import secrets
import shutil
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from cdc import __version__, failpoints
from cdc.backup.keys import BackupKeys
from cdc.envelope import EnvelopeCodec
from cdc.errors import BackupCorruptError, BackupError, DecodeError
from cdc.events import SchemaChange, TableId
from cdc.positions import Position, position_from_dict

__all__ = [
    "ENCODINGS",
    "FORMAT_VERSION",
    "LINE_ENCODINGS",
    "MANIFEST",
    "PARTIAL_SUFFIX",
    "SEAL",
    "BackupWriter",
    "ChunkCodec",
    "ChunkInfo",
    "Manifest",
    "TableEntry",
    "check_seal",
    "count_native",
    "make_seal",
    "read_manifest",
    "show_position",
    "valid_backup_id",
]

FORMAT_VERSION = 2
#: The format versions this cdc reads (format 1: JSON-lines chunks only).
READABLE_FORMATS = (1, 2)
#: The chunk encodings and the suffix of their files (see the module docstring).
ENCODINGS = {"jsonl": ".jsonl.zst", "pg-copy": ".copy.zst", "pg-binary": ".pgbin.zst", "mysql-tsv": ".tsv.zst"}
#: The native encodings that hold one line per row (the others are counted by their connector).
LINE_ENCODINGS = frozenset({"pg-copy", "mysql-tsv"})
MANIFEST = "manifest.json"
SEAL = "manifest.seal"
PARTIAL_SUFFIX = ".partial"
LOCK = ".lock"
ENCRYPTION = "aes-256-gcm"

_MAGIC = b"CDCB\x01"
_NONCE = 12
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,150}")


def show_position(position: Position) -> str:
    """A position as a person (and ``cdc restore --until``) writes it: ``binlog.000042:1234`` or an LSN."""
    from cdc.positions import MySqlPosition, PgPosition, format_lsn

    if isinstance(position, MySqlPosition):
        return f"{position.file}:{position.pos}"
    if isinstance(position, PgPosition):
        return format_lsn(position.lsn)
    return str(position)


def valid_backup_id(backup_id: str) -> bool:
    """Whether ``backup_id`` can name a backup directory (letters, digits, ``.``, ``_``, ``-``; no suffix)."""
    return bool(_ID.fullmatch(backup_id)) and not backup_id.endswith((PARTIAL_SUFFIX, ".deleting"))


# ---------------------------------------------------------------------------------------------
# Manifest
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    """One data file: its path inside the backup, its rows, its size and SHA-256 as stored."""

    file: str
    rows: int
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "rows": self.rows, "size": self.size, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ChunkInfo:
        return cls(str(d["file"]), int(d["rows"]), int(d["size"]), str(d["sha256"]))


@dataclass(slots=True)
class TableEntry:
    """One table of a backup: its definition (a schema-change event value), row count and chunks."""

    table: TableId
    schema_change: dict[str, Any]
    rows: int = 0
    chunks: list[ChunkInfo] = field(default_factory=list)
    encoding: str = "jsonl"
    native: dict[str, Any] | None = None  # for a native encoding: what reading it takes (the connector's)

    def schema(self, codec: EnvelopeCodec | None = None) -> SchemaChange:
        """The table's definition as the :class:`~cdc.events.SchemaChange` it was taken from."""
        codec = codec or EnvelopeCodec("backup")
        try:
            return codec.decode_schema_change(orjson.dumps(self.schema_change))
        except DecodeError as exc:
            raise BackupCorruptError(f"the definition of {self.table} in the manifest cannot be read: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": str(self.table),
            "schema": self.table.schema,
            "name": self.table.table,
            "definition": self.schema_change,
            "rows": self.rows,
            "chunks": [c.to_dict() for c in self.chunks],
            "encoding": self.encoding,
            "native": self.native,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TableEntry:
        encoding = str(d.get("encoding", "jsonl"))
        if encoding not in ENCODINGS:
            raise BackupError(
                f"table {d.get('schema')}.{d.get('name')} is stored in encoding {encoding[:40]!r}, which this cdc "
                "cannot read",
                hint="use the cdc version that wrote it",
            )
        native = d.get("native")
        return cls(
            TableId(str(d["schema"]), str(d["name"])),
            dict(d["definition"]),
            int(d["rows"]),
            [ChunkInfo.from_dict(c) for c in d["chunks"]],
            encoding,
            dict(native) if native is not None else None,
        )


@dataclass(slots=True)
class Manifest:
    """What a backup holds; see the module docstring for the fields."""

    id: str
    pipeline: str
    source: str
    position: Position
    snapshot_ms: int
    started_ms: int
    finished_ms: int
    tables: list[TableEntry]
    encryption: str | None = None
    key_id: str | None = None
    compression: str = "zstd"
    cdc_version: str = __version__
    format: int = FORMAT_VERSION

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def size(self) -> int:
        """Bytes of the data files as stored."""
        return sum(c.size for t in self.tables for c in t.chunks)

    def table(self, table: TableId) -> TableEntry | None:
        return next((t for t in self.tables if t.table == table), None)

    def to_bytes(self) -> bytes:
        doc = {
            "format": self.format,
            "id": self.id,
            "pipeline": self.pipeline,
            "source": self.source,
            "position": self.position.to_dict(),
            "snapshot_ms": self.snapshot_ms,
            "started_ms": self.started_ms,
            "finished_ms": self.finished_ms,
            "compression": self.compression,
            "encryption": self.encryption,
            "key_id": self.key_id,
            "cdc_version": self.cdc_version,
            "tables": [t.to_dict() for t in self.tables],
        }
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "manifest") -> Manifest:
        """Parse a manifest; :class:`~cdc.errors.BackupCorruptError` for anything malformed or of another format."""
        try:
            doc = orjson.loads(data)
            version = doc["format"]
            if version not in READABLE_FORMATS:
                raise BackupError(
                    f"{where} has format version {version!r}; this cdc reads versions "
                    f"{', '.join(map(str, READABLE_FORMATS))}",
                    hint="use the cdc version that wrote it",
                )
            return cls(
                id=str(doc["id"]),
                pipeline=str(doc["pipeline"]),
                source=str(doc["source"]),
                position=position_from_dict(doc["position"]),
                snapshot_ms=int(doc["snapshot_ms"]),
                started_ms=int(doc["started_ms"]),
                finished_ms=int(doc["finished_ms"]),
                tables=[TableEntry.from_dict(t) for t in doc["tables"]],
                encryption=doc.get("encryption"),
                key_id=doc.get("key_id"),
                compression=str(doc.get("compression", "zstd")),
                cdc_version=str(doc.get("cdc_version", "")),
                format=int(version),
            )
        except BackupError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, DecodeError) as exc:
            raise BackupCorruptError(f"{where} is malformed: {type(exc).__name__}: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# Seal
# ---------------------------------------------------------------------------------------------


def make_seal(manifest: bytes, keys: BackupKeys | None) -> bytes:
    """The seal of ``manifest``'s bytes: HMAC-SHA256 with the derived key, else a plain SHA-256."""
    if keys is not None:
        mac = hmac.new(keys.mac_key(), manifest, hashlib.sha256).hexdigest()
        doc: dict[str, Any] = {"v": 1, "alg": "hmac-sha256", "key_id": keys.key_id, "mac": mac}
    else:
        doc = {"v": 1, "alg": "sha256", "digest": hashlib.sha256(manifest).hexdigest()}
    return orjson.dumps(doc) + b"\n"


def check_seal(manifest: bytes, seal: bytes, keys: BackupKeys | None, where: str) -> str:
    """Check ``seal`` against ``manifest``'s bytes; returns the algorithm (``hmac-sha256`` or ``sha256``).

    Raises :class:`~cdc.errors.BackupCorruptError` when they do not match (or the seal is malformed,
    or it is a plain SHA-256 while ``keys`` are given), :class:`~cdc.errors.BackupError` when an
    HMAC seal needs a key that is not given or was made with another key.
    """
    try:
        doc = orjson.loads(seal)
        alg = doc["alg"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise BackupCorruptError(f"{where}: the manifest's seal is malformed") from exc
    if alg == "hmac-sha256":
        if keys is None:
            raise BackupError(
                f"{where} is encrypted and authenticated with a key, and no key is configured",
                hint="set backups.encryption_key_file to the key it was made with",
            )
        if doc.get("key_id") != keys.key_id:
            raise BackupError(
                f"{where} was made with another key (key id {doc.get('key_id')!r}; the configured key's id is "
                f"{keys.key_id!r})",
                hint="set backups.encryption_key_file to the key it was made with",
            )
        expected = hmac.new(keys.mac_key(), manifest, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, str(doc.get("mac", ""))):
            raise BackupCorruptError(f"{where}: the manifest does not match its HMAC: it was altered or damaged")
        return "hmac-sha256"
    if alg == "sha256":
        if keys is not None:
            raise BackupCorruptError(
                f"{where} carries only a SHA-256 seal, which anyone can recompute, while a key is configured: "
                "it is not authenticated, so it is refused",
                hint="a backup taken without a key can only be used with backups.encryption_key_file unset",
            )
        if not hmac.compare_digest(hashlib.sha256(manifest).hexdigest(), str(doc.get("digest", ""))):
            raise BackupCorruptError(
                f"{where}: the manifest does not match its SHA-256 seal: it was altered or damaged"
            )
        return "sha256"
    raise BackupCorruptError(f"{where}: the manifest's seal names an unknown algorithm {str(alg)[:40]!r}")


def read_manifest(directory: Path, keys: BackupKeys | None) -> Manifest:
    """The manifest of the complete backup in ``directory``, its seal checked, its id matching the directory."""
    where = f"backup {directory.name}"
    try:
        data = (directory / MANIFEST).read_bytes()
        seal = (directory / SEAL).read_bytes()
    except FileNotFoundError as exc:
        raise BackupCorruptError(f"{where} has no {Path(exc.filename or '').name}: it is incomplete") from exc
    except OSError as exc:
        raise BackupError(f"{where}: cannot read its manifest: {exc.strerror or exc}") from exc
    check_seal(data, seal, keys, where)
    manifest = Manifest.from_bytes(data, where)
    if manifest.id != directory.name:
        raise BackupCorruptError(f"{where}: its manifest names backup {manifest.id!r}: it was moved or swapped")
    if manifest.encryption is not None and manifest.encryption != ENCRYPTION:
        raise BackupError(f"{where} uses encryption {manifest.encryption!r}, which this cdc cannot read")
    return manifest


# ---------------------------------------------------------------------------------------------
# Chunks
# ---------------------------------------------------------------------------------------------


class ChunkCodec:
    """Turns rows into a chunk file's bytes and back, for one backup (see the module docstring)."""

    def __init__(self, backup_id: str, keys: BackupKeys | None, level: int = 1) -> None:
        self.backup_id = backup_id
        self.keys = keys
        self.level = level
        self._aead: Any = None

    def _cipher(self) -> Any:
        if self._aead is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            assert self.keys is not None
            self._aead = AESGCM(self.keys.chunk_key(self.backup_id))
        return self._aead

    def _aad(self, file: str) -> bytes:
        return f"cdc-backup\0{self.backup_id}\0{file}".encode()

    def encode(self, rows: Sequence[Mapping[str, Any]], file: str) -> bytes:
        """The stored bytes of a JSON-lines chunk holding ``rows`` at path ``file`` of the backup."""
        return self.seal(self.json_lines(rows), file)

    @staticmethod
    def json_lines(rows: Sequence[Mapping[str, Any]]) -> bytes:
        """``rows`` as JSON lines (the uncompressed content of a chunk)."""
        dumps = orjson.dumps
        # (not OPT_APPEND_NEWLINE: orjson then leaves each small result in an oversized buffer)
        return b"".join([dumps(row) + b"\n" for row in rows])

    def seal(self, text: bytes | bytearray, file: str) -> bytes:
        """The stored bytes of a chunk whose content is ``text``: compressed, then encrypted with a key.

        Holds the GIL only briefly (zstandard and the cipher release it), so it can run in a thread
        while the next rows are read."""
        import zstandard

        frame = zstandard.ZstdCompressor(level=self.level, write_checksum=True).compress(text)
        if self.keys is None:
            return frame
        nonce = secrets.token_bytes(_NONCE)
        sealed: bytes = self._cipher().encrypt(nonce, frame, self._aad(file))
        return _MAGIC + nonce + sealed

    def open(self, data: bytes, chunk: ChunkInfo, where: str) -> bytes:
        """The content (the lines) of a chunk's stored bytes, after checking size, SHA-256 and tag against
        ``chunk``; :class:`~cdc.errors.BackupCorruptError` for any mismatch. Rows are not counted here."""
        self.check(data, chunk, where)
        frame = data
        if self.keys is not None:
            from cryptography.exceptions import InvalidTag

            if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + _NONCE + 16:
                raise BackupCorruptError(f"{where}: {chunk.file} is not an encrypted chunk")
            nonce = data[len(_MAGIC) : len(_MAGIC) + _NONCE]
            try:
                frame = self._cipher().decrypt(nonce, data[len(_MAGIC) + _NONCE :], self._aad(chunk.file))
            except InvalidTag as exc:
                raise BackupCorruptError(f"{where}: {chunk.file} fails its AES-GCM authentication") from exc
        elif data.startswith(_MAGIC):
            raise BackupError(f"{where}: {chunk.file} is encrypted and no key is configured")
        import zstandard

        try:
            text: bytes = zstandard.ZstdDecompressor().decompress(frame)
        except zstandard.ZstdError as exc:
            raise BackupCorruptError(f"{where}: {chunk.file} does not decompress: {exc}") from exc
        return text

    def decode(self, data: bytes, chunk: ChunkInfo, where: str) -> list[dict[str, Any]]:
        """The rows of a JSON-lines chunk's stored bytes, after checking size, SHA-256, tag and row count
        against ``chunk``. Raises :class:`~cdc.errors.BackupCorruptError` for any mismatch."""
        return self.rows_of(self.open(data, chunk, where), chunk, where)

    @staticmethod
    def rows_of(text: bytes, chunk: ChunkInfo, where: str) -> list[dict[str, Any]]:
        """The rows of a JSON-lines chunk's content (:meth:`open`), checked against ``chunk``'s row count."""
        rows = _json_lines(text)
        if rows is None:
            raise BackupCorruptError(f"{where}: {chunk.file} holds a line that is not a JSON object")
        ChunkCodec.check_rows(len(rows), chunk, where)
        return rows

    @staticmethod
    def check_rows(count: int, chunk: ChunkInfo, where: str) -> None:
        """BackupCorruptError unless ``count`` rows came out of ``chunk``, as the manifest says."""
        if count != chunk.rows:
            raise BackupCorruptError(f"{where}: {chunk.file} holds {count} rows; the manifest says {chunk.rows}")

    def lines(self, data: bytes, chunk: ChunkInfo, where: str) -> bytes:
        """The lines of a native chunk's stored bytes (each row one line ending in a line feed: both native
        encodings escape line feeds inside values), after checking size, SHA-256, tag and row count."""
        return self.lines_of(self.open(data, chunk, where), chunk, where)

    @staticmethod
    def lines_of(text: bytes, chunk: ChunkInfo, where: str) -> bytes:
        """A native chunk's content (:meth:`open`), checked against ``chunk``'s row count: one line a row."""
        count = text.count(b"\n")
        if count != chunk.rows or (text and not text.endswith(b"\n")):
            raise BackupCorruptError(f"{where}: {chunk.file} holds {count} lines; the manifest says {chunk.rows} rows")
        return text

    @staticmethod
    def check(data: bytes, chunk: ChunkInfo, where: str) -> None:
        """Size and SHA-256 of a chunk's stored bytes against the manifest (BackupCorruptError if they differ)."""
        if len(data) != chunk.size:
            raise BackupCorruptError(
                f"{where}: {chunk.file} has {len(data)} bytes; the manifest says {chunk.size}: "
                "it was altered or damaged"
            )
        if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), chunk.sha256):
            raise BackupCorruptError(f"{where}: {chunk.file} does not match its SHA-256: it was altered or damaged")


def _json_lines(text: bytes) -> list[dict[str, Any]] | None:
    """The JSON objects of a chunk's lines, or None if a line is not a JSON object.

    JSON text never holds a raw line feed (inside strings it is escaped), so the lines joined
    with commas form one JSON array, which is parsed in one call; each element is then checked to
    be an object, so a damaged chunk that still parses (a line split in two) is refused too."""
    body = text.strip(b"\n").replace(b"\n", b",")
    if not body:
        return []
    paused = gc.isenabled()
    gc.disable()  # the rows are acyclic: spare the collector scanning them as they are built
    try:
        rows = orjson.loads(b"[" + body + b"]")
    except orjson.JSONDecodeError:
        return None
    finally:
        if paused:
            gc.enable()
    if not all(type(row) is dict for row in rows):
        return None
    return list(rows)


def read_chunk(directory: Path, chunk: ChunkInfo, where: str) -> bytes:
    """A chunk file's stored bytes; a missing file is a :class:`~cdc.errors.BackupCorruptError`."""
    try:
        return (directory / chunk.file).read_bytes()
    except FileNotFoundError as exc:
        raise BackupCorruptError(f"{where}: the data file {chunk.file} is missing") from exc
    except OSError as exc:
        raise BackupError(f"{where}: cannot read {chunk.file}: {exc.strerror or exc}") from exc


# ---------------------------------------------------------------------------------------------
# Writing a backup
# ---------------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


@dataclass(slots=True)
class _OpenTable:
    entry: TableEntry
    index: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    written: int = 0  # chunks handed to the sealing thread
    pending: list[Future[ChunkInfo]] = field(default_factory=list)  # in chunk order, not yet in entry.chunks


#: Threads that compress, encrypt and write chunks (zstandard and the cipher release the GIL).
SEALING_THREADS = max(1, min(4, os.cpu_count() or 1))
#: Chunks being compressed and written at most, beyond which adding rows waits (bounds memory).
MAX_PENDING_CHUNKS = SEALING_THREADS + 1


class BackupWriter:
    """Writes one backup: :meth:`open`, then :meth:`add_table` / :meth:`add_rows` in any order
    (rows of a table after its definition), then :meth:`commit` (or :meth:`abort`).

    Until :meth:`commit` returns, the backup exists only as ``<id>.partial/``, locked by this
    writer; after it, it is complete under ``<id>/`` (see the module docstring).
    """

    def __init__(
        self,
        destination: Path,
        backup_id: str,
        keys: BackupKeys | None,
        *,
        chunk_rows: int = 50_000,
        level: int = 1,
        codec: EnvelopeCodec | None = None,
    ) -> None:
        if not valid_backup_id(backup_id):
            raise BackupError(f"{backup_id!r} cannot name a backup")
        self.destination = destination
        self.backup_id = backup_id
        self.keys = keys
        self.chunk_rows = chunk_rows
        self.chunks = ChunkCodec(backup_id, keys, level)
        self.codec = codec or EnvelopeCodec("backup", schemas=False)
        self.partial = destination / (backup_id + PARTIAL_SUFFIX)
        self.final = destination / backup_id
        self.bytes_written = 0
        self._written = threading.Lock()
        self._tables: dict[TableId, _OpenTable] = {}
        self._lock: BinaryIO | None = None
        self._dirs: set[Path] = set()
        # chunks are compressed, encrypted, written and fsynced by SEALING_THREADS threads (those steps
        # release the GIL), while the caller goes on reading and encoding rows; chunks keep their order
        self._sealer: ThreadPoolExecutor | None = None
        self._inflight: deque[Future[ChunkInfo]] = deque()

    def open(self) -> None:
        """Create ``<id>.partial/`` and lock it; BackupError if the destination cannot take it."""
        try:
            self.destination.mkdir(parents=True, exist_ok=True)
            if self.final.exists():
                raise BackupError(f"a backup {self.backup_id!r} already exists in {self.destination}")
            self.partial.mkdir()
            lock = open(self.partial / LOCK, "wb")  # noqa: SIM115 - held until commit or abort
        except FileExistsError as exc:
            raise BackupError(f"a backup {self.backup_id!r} is already being written in {self.destination}") from exc
        except OSError as exc:
            raise BackupError(f"cannot write a backup into {self.destination}: {exc.strerror or exc}") from exc
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._lock = lock
        (self.partial / "data").mkdir()

    def add_table(self, change: SchemaChange, encoding: str = "jsonl", native: dict[str, Any] | None = None) -> None:
        """Record a table's definition (a later one for the same table replaces it) and the encoding its
        rows will come in: ``jsonl`` (:meth:`add_rows`) or a native one (:meth:`add_chunk`), with what
        reading it takes (``native``, stored in the manifest)."""
        if encoding not in ENCODINGS:
            raise BackupError(f"unknown chunk encoding {encoding!r}")
        table = change.schema.table
        _, value = self.codec.encode_schema_change(change)  # plain JSON: the codec embeds no Connect schema
        doc = orjson.loads(value)
        current = self._tables.get(table)
        if current is not None:
            started = bool(current.entry.chunks or current.pending or current.rows)
            if started and (encoding, native) != (current.entry.encoding, current.entry.native):
                raise BackupError(f"the encoding of {table} changed after its first rows")
            current.entry.schema_change = doc
            current.entry.encoding, current.entry.native = encoding, native
            return
        self._tables[table] = _OpenTable(TableEntry(table, doc, encoding=encoding, native=native), len(self._tables))

    def add_chunk(self, table: TableId, text: bytes | bytearray, rows: int) -> None:
        """Write one chunk of ``table`` in its native encoding: ``rows`` whole lines (each ending in a line
        feed), as the source connector read them. The connector cuts the chunks (at ``chunk_rows``)."""
        t = self._tables.get(table)
        if t is None:
            raise BackupError(f"rows of {table} arrived before its definition")
        if t.entry.encoding == "jsonl":
            raise BackupError(f"{table} is stored as JSON lines; its rows come through add_rows")
        if rows:
            self._submit(t, text, rows)

    def add_rows(self, table: TableId, rows: Sequence[dict[str, Any]]) -> None:
        """Append row images of ``table``; full chunks are written out as they fill."""
        t = self._tables.get(table)
        if t is None:
            raise BackupError(f"rows of {table} arrived before its definition")
        if t.entry.encoding != "jsonl":
            raise BackupError(f"{table} is stored in encoding {t.entry.encoding}; its rows come through add_chunk")
        buf = t.rows
        buf.extend(rows)
        while len(buf) >= self.chunk_rows:
            self._flush(t, buf[: self.chunk_rows])
            del buf[: self.chunk_rows]

    def _flush(self, t: _OpenTable, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._submit(t, self.chunks.json_lines(rows), len(rows))  # needs the GIL: here; the rest in the thread

    def _submit(self, t: _OpenTable, text: bytes | bytearray, rows: int) -> None:
        """Hand a chunk's content to the sealing thread (compress, encrypt, write, fsync)."""
        folder = self.partial / "data" / f"{t.index:04d}"
        if folder not in self._dirs:
            folder.mkdir(exist_ok=True)
            self._dirs.add(folder)
        name = f"data/{t.index:04d}/{t.written:06d}{ENCODINGS[t.entry.encoding]}" + (".aes" if self.keys else "")
        t.written += 1
        if self._sealer is None:
            self._sealer = ThreadPoolExecutor(max_workers=SEALING_THREADS, thread_name_prefix="cdc-backup-write")
        future = self._sealer.submit(self._seal, text, name, rows)
        t.pending.append(future)
        t.entry.rows += rows
        self._inflight.append(future)
        while len(self._inflight) > MAX_PENDING_CHUNKS:
            self._result(self._inflight.popleft())  # raises the thread's error here

    def _seal(self, text: bytes | bytearray, name: str, rows: int) -> ChunkInfo:
        data = self.chunks.seal(text, name)
        _write_file(self.partial / name, data)
        failpoints.hit("backup.after_chunk")
        with self._written:
            self.bytes_written += len(data)
        return ChunkInfo(name, rows, len(data), hashlib.sha256(data).hexdigest())

    def _result(self, future: Future[ChunkInfo]) -> ChunkInfo:
        try:
            return future.result()
        except OSError as exc:
            raise BackupError(f"cannot write backup {self.backup_id}: {exc.strerror or exc}") from exc

    def wait(self) -> None:
        """Wait until every full chunk of the rows added so far is written (rows of chunks not yet full
        stay buffered until more rows fill them, or until :meth:`commit`)."""
        self._drain()

    def _drain(self) -> None:
        """Wait for every chunk handed to the sealing thread; record them in their tables, in order."""
        for t in sorted(self._tables.values(), key=lambda t: t.index):
            for future in t.pending:
                t.entry.chunks.append(self._result(future))
            t.pending = []
        self._inflight.clear()

    def tables(self) -> list[TableEntry]:
        return [t.entry for t in sorted(self._tables.values(), key=lambda t: t.index)]

    def commit(
        self, *, pipeline: str, source: str, position: Position, snapshot_ms: int, started_ms: int, finished_ms: int
    ) -> Manifest:
        """Write the last chunks, the manifest and its seal, fsync everything and rename to ``<id>/``."""
        for t in self._tables.values():
            self._flush(t, t.rows)
            t.rows = []
        self._drain()
        manifest = Manifest(
            id=self.backup_id,
            pipeline=pipeline,
            source=source,
            position=position,
            snapshot_ms=snapshot_ms,
            started_ms=started_ms,
            finished_ms=finished_ms,
            tables=self.tables(),
            encryption=ENCRYPTION if self.keys is not None else None,
            key_id=self.keys.key_id if self.keys is not None else None,
        )
        data = manifest.to_bytes()
        try:
            for folder in self._dirs:
                _fsync_dir(folder)
            _fsync_dir(self.partial / "data")
            _write_file(self.partial / MANIFEST, data)
            _write_file(self.partial / SEAL, make_seal(data, self.keys))
            (self.partial / LOCK).unlink()
            _fsync_dir(self.partial)
            os.rename(self.partial, self.final)
            _fsync_dir(self.destination)
        except OSError as exc:
            raise BackupError(f"cannot complete backup {self.backup_id}: {exc.strerror or exc}") from exc
        finally:
            self._release()
        return manifest

    def abort(self) -> None:
        """Remove the partial backup (after a failure). Safe to call more than once."""
        self._stop_sealer()
        self._release()
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.partial)

    def _stop_sealer(self) -> None:
        if self._sealer is not None:
            self._sealer.shutdown(wait=True, cancel_futures=True)  # nothing writes into what is removed
            self._sealer = None
        self._inflight.clear()

    def _release(self) -> None:
        self._stop_sealer()
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.close()
            self._lock = None


def partial_in_use(path: Path) -> bool:
    """Whether the partial backup directory ``path`` is still being written (its writer holds the lock)."""
    try:
        f = open(path / LOCK, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        f.close()
    return False


def row_decoder(source: str, entry: TableEntry) -> Callable[[bytes], list[dict[str, Any]]]:
    """For a table in a native encoding: the source connector's function from a chunk's lines (as
    :meth:`ChunkCodec.lines` returns them) to row images in Debezium's representation, the values its
    initial snapshot would have published. ``source`` is the manifest's connector type.

    Raises :class:`~cdc.errors.BackupError` when this cdc has no such connector; the function raises
    :class:`~cdc.errors.BackupCorruptError` for a line it cannot read."""
    decoder: Callable[[bytes], list[dict[str, Any]]] = backup_module(source).row_decoder(entry)
    return decoder


def backup_module(source: str) -> Any:
    """The backup support of the source connector ``source`` (``connectors/<type>/backup.py``): its snapshot
    for backups, and the reading and loading of its native chunks (``row_decoder``, ``native_loader``)."""
    import importlib

    from cdc import registry

    package = registry.SOURCES.get(source)
    if package is None:
        raise BackupError(f"backups of {source!r} sources cannot be read by this cdc (no such connector)")
    return importlib.import_module(f"{package}.backup")


def iter_rows(
    directory: Path, manifest: Manifest, entry: TableEntry, keys: BackupKeys | None
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(chunk index, rows) for every chunk of ``entry``, each checked before it is decoded."""
    codec = ChunkCodec(manifest.id, keys)
    where = f"backup {manifest.id}"
    decode = None if entry.encoding == "jsonl" else row_decoder(manifest.source, entry)
    for i, chunk in enumerate(entry.chunks):
        data = read_chunk(directory, chunk, where)
        if decode is None:
            yield i, codec.decode(data, chunk, where)
            continue
        text = codec.open(data, chunk, where)
        rows = decode(ChunkCodec.lines_of(text, chunk, where) if entry.encoding in LINE_ENCODINGS else text)
        ChunkCodec.check_rows(len(rows), chunk, where)
        yield i, rows


def count_native(source: str, entry: TableEntry, text: bytes, chunk: ChunkInfo, where: str) -> int:
    """The rows of a native chunk's content (:meth:`ChunkCodec.open`), checked against ``chunk``'s row count:
    its lines, or for an encoding that is not line-based what the source connector's ``count_rows``
    counts (BackupCorruptError for content it cannot read)."""
    if entry.encoding in LINE_ENCODINGS:
        ChunkCodec.lines_of(text, chunk, where)
        return chunk.rows
    count: int = backup_module(source).count_rows(entry, text)
    ChunkCodec.check_rows(count, chunk, where)
    return count

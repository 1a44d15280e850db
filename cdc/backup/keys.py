"""Backup keys: the key file's format, and the keys derived from it.

The key file (``backups.encryption_key_file``) holds one 256-bit key, as 64 hexadecimal digits, as
base64 of 32 bytes, or as the 32 raw bytes (surrounding whitespace is ignored in the text forms).
``openssl rand -hex 32 > backup.key`` makes one.

The key itself never encrypts anything. HKDF-SHA256 derives, with distinct labels:

* per backup, the AES-256-GCM key of its data files (salt: the backup id), so that random 96-bit
  nonces are drawn under a fresh key for every backup;
* the HMAC-SHA256 key that authenticates manifests;
* a public key id (8 bytes, hex) stored in every manifest and seal, so that a backup made with
  another key is named as such instead of failing as "corrupt".

This module imports ``cryptography`` only when a key is used, so that reading a config stays cheap.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["KEY_BYTES", "BackupKeys", "parse_key"]

KEY_BYTES = 32

_HEX = re.compile(rb"[0-9a-fA-F]{64}")


def parse_key(data: bytes) -> bytes:
    """The 32-byte key held by a key file's content; ValueError (without the content) otherwise."""
    text = data.strip()
    if _HEX.fullmatch(text):
        return bytes.fromhex(text.decode())
    if len(text) in (43, 44):
        try:
            raw = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == KEY_BYTES:
            return raw
    if len(data) == KEY_BYTES:
        return data
    raise ValueError(
        "does not hold a 256-bit key: expected 64 hex digits, base64 of 32 bytes, or 32 raw bytes "
        f"(the file has {len(data)} bytes)"
    )


def _hkdf(key: bytes, info: bytes, salt: bytes | None = None, length: int = KEY_BYTES) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key)


class BackupKeys:
    """The keys derived from one master key. The master key is not kept in any printable field."""

    __slots__ = ("_chunk_keys", "_mac", "_master", "key_id")

    def __init__(self, master: bytes) -> None:
        if len(master) != KEY_BYTES:
            raise ValueError(f"a backup key has {KEY_BYTES} bytes")
        self._master = master
        self._mac = _hkdf(master, b"cdc backup v1: manifest hmac-sha256")
        self.key_id = _hkdf(master, b"cdc backup v1: key id", length=8).hex()
        self._chunk_keys: dict[str, bytes] = {}

    def mac_key(self) -> bytes:
        """The HMAC-SHA256 key for manifests."""
        return self._mac

    def chunk_key(self, backup_id: str) -> bytes:
        """The AES-256-GCM key for the data files of backup ``backup_id``."""
        key = self._chunk_keys.get(backup_id)
        if key is None:
            key = self._chunk_keys[backup_id] = _hkdf(
                self._master, b"cdc backup v1: chunk aes-256-gcm", salt=backup_id.encode()
            )
        return key

    def __repr__(self) -> str:
        return f"BackupKeys(key_id={self.key_id!r})"

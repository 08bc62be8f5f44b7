"""Contacts at rest: AES-256-GCM (the ``cryptography`` package's audited AEAD, never hand-rolled).

A sealed value is ``base64(version | len(key_id) | key_id | nonce(12) | ciphertext+tag)``. The
key id travels with the ciphertext so that any configured key opens it (rotation: new data is
sealed with the current key, old rows stay readable until re-sealed). The associated data binds
the ciphertext to its subscription id and key id: a ciphertext copied onto another row, or
relabelled with another key id, fails to open instead of decrypting to someone else's contact.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = 1
# 96-bit random nonces; NIST SP 800-38D allows 2**32 random-nonce encryptions per key, far more
# contacts than a ward registers before its key is rotated
NONCE_BYTES = 12
AAD_PREFIX = b"madoguchi/notify/contact/v1"


class CryptoError(ValueError):
    """A value that cannot be opened: unknown key id, malformed, or tampered with."""


def _aad(row_id: str, key_id: str, prefix: bytes = AAD_PREFIX) -> bytes:
    return b"\x00".join((prefix, row_id.encode(), key_id.encode()))


def seal(keys: dict[str, bytes], key_id: str, row_id: str, plaintext: str) -> str:
    """Encrypt ``plaintext`` for the row ``row_id`` with the key ``key_id``."""
    return base64.b64encode(seal_bytes(keys, key_id, row_id, plaintext.encode())).decode("ascii")


def seal_bytes(keys: dict[str, bytes], key_id: str, row_id: str, plaintext: bytes,
               aad_prefix: bytes = AAD_PREFIX) -> bytes:
    """The raw sealed form (no base64) of ``plaintext``: for files (the notice PDFs), where a
    third more bytes for base64 buys nothing. ``aad_prefix`` names what kind of thing it is, so
    a sealed file cannot be passed off as a sealed contact."""
    key = keys.get(key_id)
    if key is None or len(key) != 32:
        raise CryptoError(f"no 32-byte key with id {key_id!r}")
    kid = key_id.encode()
    if not 0 < len(kid) < 256:
        raise CryptoError("key id must be 1-255 bytes")
    nonce = os.urandom(NONCE_BYTES)
    ct = AESGCM(key).encrypt(nonce, plaintext, _aad(row_id, key_id, aad_prefix))
    return bytes((FORMAT, len(kid))) + kid + nonce + ct


def key_id_of(sealed: str) -> str:
    """The key id a sealed value names (not authenticated until ``open_sealed`` succeeds)."""
    raw = _decode(sealed)
    return raw[2:2 + raw[1]].decode("ascii", "replace")


def _decode(sealed: str) -> bytes:
    try:
        raw = base64.b64decode(sealed, validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError("not base64") from None
    return _check(raw)


def _check(raw: bytes) -> bytes:
    if len(raw) < 2 or raw[0] != FORMAT or len(raw) < 2 + raw[1] + NONCE_BYTES + 16:
        raise CryptoError("not a sealed value of a known format")
    return raw


def open_sealed(keys: dict[str, bytes], row_id: str, sealed: str) -> str:
    """Decrypt a value sealed for ``row_id`` with any of ``keys``."""
    try:
        return open_bytes(keys, row_id, _decode(sealed)).decode()
    except UnicodeDecodeError:
        raise CryptoError("authentication failed: wrong key, wrong row or tampered") from None


def open_bytes(keys: dict[str, bytes], row_id: str, raw: bytes,
               aad_prefix: bytes = AAD_PREFIX) -> bytes:
    """Decrypt what ``seal_bytes`` made for ``row_id`` with any of ``keys``."""
    raw = _check(raw)
    n = raw[1]
    key_id = raw[2:2 + n].decode("ascii", "replace")
    key = keys.get(key_id)
    if key is None:
        raise CryptoError(f"unknown key id {key_id!r} (was it removed before rotation?)")
    nonce, ct = raw[2 + n:2 + n + NONCE_BYTES], raw[2 + n + NONCE_BYTES:]
    try:
        return AESGCM(key).decrypt(nonce, ct, _aad(row_id, key_id, aad_prefix))
    except InvalidTag:
        raise CryptoError("authentication failed: wrong key, wrong row or tampered") from None


def key_id_of_bytes(raw: bytes) -> str:
    """The key id a raw sealed value names (for rotation: which files still need re-sealing)."""
    raw = _check(raw)
    return raw[2:2 + raw[1]].decode("ascii", "replace")


def reseal(keys: dict[str, bytes], key_id: str, row_id: str, sealed: str) -> str:
    """The same plaintext sealed again with ``key_id`` (rotation)."""
    return seal(keys, key_id, row_id, open_sealed(keys, row_id, sealed))

"""Encryption at rest for secrets and personal data, with the key kept outside the database.

The key file holds 64 random bytes (hex): the first 32 are an AES-256-GCM key for reversible
secrets (subscriber passwords, which CHAP and MS-CHAP need in the clear; NAS secrets; CPF, phone,
address), the last 32 an HMAC-SHA256 key for lookups by CPF/CNPJ or phone without decrypting.
The file is created on first use with mode 0600; the database never sees it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from binascii import a2b_base64
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from aaa.errors import AAAError, ConfigError

_PREFIX = "v1:"
_PREFIX_LENGTH = len(_PREFIX)
_NONCE = 12


class VaultError(AAAError):
    """A ciphertext could not be decrypted with this key (wrong key file or corrupted value)."""


class Vault:
    """Encrypts and decrypts short strings; computes keyed lookup hashes."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 64:
            raise ConfigError("encryption key must be 64 bytes")
        self._aead = AESGCM(key[:32])
        self._mac_key = key[32:]

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), None)
        return _PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str) -> str:
        if not token.startswith(_PREFIX):
            raise VaultError("stored value is not an encrypted token")
        try:
            raw = a2b_base64(token[_PREFIX_LENGTH:], strict_mode=True)  # base64.b64decode's own checks cost 3x this
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], None).decode("utf-8")
        except (InvalidTag, ValueError):
            raise VaultError("stored value cannot be decrypted with this key file") from None

    def encrypt_optional(self, plaintext: str | None) -> str | None:
        return None if plaintext is None else self.encrypt(plaintext)

    def decrypt_optional(self, token: str | None) -> str | None:
        return None if token is None else self.decrypt(token)

    def lookup_hash(self, value: str) -> str:
        """Keyed hash for equality lookups (the same value always gives the same hash)."""
        return hmac.new(self._mac_key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def load_or_create_key(path: Path) -> bytes:
    """Read the key file, creating it (mode 0600) with a fresh random key if it does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(64) + "\n")
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise ConfigError(f"{path}: key file is not hex") from None
    if len(key) != 64:
        raise ConfigError(f"{path}: key file must hold 64 bytes of hex")
    return key

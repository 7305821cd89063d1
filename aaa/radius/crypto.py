"""RADIUS attribute cryptography on plain bytes: PAP hiding, CHAP, and salted attribute encryption.

Pure functions, independent of any packet library; the codec and the server call them with the
values they have already pulled out of a packet.

* PAP (RFC 2865 section 5.2): ``User-Password`` is hidden with an MD5 chain keyed by the shared
  secret and the request authenticator (``pap_hide`` / ``pap_unhide``).
* CHAP (RFC 1994, RFC 2865 section 2.2): ``chap_verify`` checks ``CHAP-Password`` against the
  CHAP-Challenge, or the request authenticator when the NAS sent no CHAP-Challenge.
* Salted encryption (RFC 2548 sections 2.4.2/2.4.3, also RFC 2868 section 3.5): a two-octet salt
  with its high bit set, then length octet + data + zero padding, hidden with the same MD5 chain
  started from ``MD5(secret + request authenticator + salt)`` (``salt_encrypt`` / ``salt_decrypt``).
  MS-MPPE-Send-Key, MS-MPPE-Recv-Key and Tunnel-Password use it.

``md5_chain_encrypt`` / ``md5_chain_decrypt`` are the one MD5 chain all of these share.

A value whose shape is impossible (a length that is not a multiple of 16, too long, a salt without
its high bit) raises :class:`RadiusCryptoError`; a wrong password is never an exception, only
``False``/``None``. Nothing here logs: the inputs are passwords and secrets.
"""

from __future__ import annotations

import hmac
import itertools
import os
from collections.abc import Callable

from aaa.errors import ValidationError
from aaa.radius.digest import md5

__all__ = [
    "AUTHENTICATOR_LENGTH",
    "PAP_MAX_LENGTH",
    "RadiusCryptoError",
    "RandomSource",
    "chap_response",
    "chap_verify",
    "md5_chain_decrypt",
    "md5_chain_encrypt",
    "new_salts",
    "salt_pair",
    "pap_hide",
    "pap_unhide",
    "salt_decrypt",
    "salt_encrypt",
]

AUTHENTICATOR_LENGTH = 16
"""Octets in a RADIUS request authenticator (RFC 2865 section 3)."""

PAP_MAX_LENGTH = 128
"""Longest User-Password, in octets, before and after hiding (RFC 2865 section 5.2)."""

_BLOCK = 16
_CHAP_PASSWORD_LENGTH = 17  # CHAP Ident + 16-octet MD5 response
_SALT_LENGTH = 2
_LENGTH_OCTET = [bytes((i,)) for i in range(256)]
_ZEROS = bytes(_BLOCK)

RandomSource = Callable[[int], bytes]
"""Returns n random octets; ``os.urandom`` in production, a fixed function in tests."""


class RadiusCryptoError(ValidationError):
    """An encrypted or authentication attribute from a NAS has an impossible shape (length, salt)."""


def _check_authenticator(authenticator: bytes) -> None:
    if len(authenticator) != AUTHENTICATOR_LENGTH:
        raise RadiusCryptoError(
            f"request authenticator must be {AUTHENTICATOR_LENGTH} octets, got {len(authenticator)}"
        )


def _xor(left: bytes, right: bytes) -> bytes:
    return (int.from_bytes(left, "big") ^ int.from_bytes(right, "big")).to_bytes(len(left), "big")


def _pad(data: bytes) -> bytes:
    """Zero-pad to a whole number of 16-octet blocks, at least one block."""
    blocks = max(1, -(-len(data) // _BLOCK))
    return data.ljust(blocks * _BLOCK, b"\x00")


def md5_chain_encrypt(plain: bytes, secret: bytes, iv: bytes) -> bytes:
    """Hide ``plain`` (a multiple of 16 octets) with the RFC 2865 section 5.2 chain.

    ``b1 = MD5(secret + iv)``, ``c1 = p1 xor b1``, then ``bi = MD5(secret + c(i-1))``. ``iv`` is the
    request authenticator for User-Password and MS-CHAP-MPPE-Keys, authenticator + salt for the
    salted attributes.
    """
    if len(plain) % _BLOCK:
        raise RadiusCryptoError(f"plaintext must be a multiple of {_BLOCK} octets, got {len(plain)}")
    from_bytes = int.from_bytes
    parts = []
    previous = iv
    for start in range(0, len(plain), _BLOCK):
        previous = (from_bytes(plain[start : start + _BLOCK]) ^ from_bytes(md5(secret + previous).digest())).to_bytes(_BLOCK)
        parts.append(previous)
    return b"".join(parts)


def md5_chain_decrypt(hidden: bytes, secret: bytes, iv: bytes) -> bytes:
    """Reverse :func:`md5_chain_encrypt`; ``hidden`` must be a multiple of 16 octets."""
    if len(hidden) % _BLOCK:
        raise RadiusCryptoError(f"hidden value must be a multiple of {_BLOCK} octets, got {len(hidden)}")
    out = bytearray()
    previous = iv
    for start in range(0, len(hidden), _BLOCK):
        block = hidden[start : start + _BLOCK]
        out += _xor(block, md5(secret + previous).digest())
        previous = block
    return bytes(out)


def pap_hide(password: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """Hide a User-Password (RFC 2865 section 5.2): zero-pad to 16n octets, then the MD5 chain.

    An empty password becomes one block of hidden zeros. Raises :class:`RadiusCryptoError` for a
    password over 128 octets or an authenticator that is not 16 octets.
    """
    _check_authenticator(authenticator)
    if len(password) > PAP_MAX_LENGTH:
        raise RadiusCryptoError(f"User-Password is at most {PAP_MAX_LENGTH} octets, got {len(password)}")
    return md5_chain_encrypt(_pad(password), secret, authenticator)


def pap_unhide(hidden: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """Recover a User-Password from its hidden form, with the zero padding stripped.

    Raises :class:`RadiusCryptoError` unless ``hidden`` is 16 to 128 octets in whole 16-octet
    blocks. A wrong secret is not detectable here: it yields a wrong password.
    """
    _check_authenticator(authenticator)
    if not hidden or len(hidden) % _BLOCK or len(hidden) > PAP_MAX_LENGTH:
        raise RadiusCryptoError(
            f"hidden User-Password must be 16..{PAP_MAX_LENGTH} octets in 16-octet blocks, got {len(hidden)}"
        )
    return md5_chain_decrypt(hidden, secret, authenticator).rstrip(b"\x00")


def chap_response(ident: int, password: bytes, challenge: bytes) -> bytes:
    """The 16-octet CHAP response ``MD5(ident + password + challenge)`` (RFC 1994 section 4.1)."""
    return md5(bytes((ident,)) + password + challenge).digest()


def chap_verify(chap_password: bytes, challenge: bytes, password: bytes) -> bool:
    """Check a CHAP-Password attribute (ident octet + 16-octet response) in constant time.

    ``challenge`` is the CHAP-Challenge attribute, or the request authenticator when the NAS sent
    none (RFC 2865 section 2.2). ``password`` is the subscriber's cleartext password. Raises
    :class:`RadiusCryptoError` when CHAP-Password is not 17 octets or the challenge is empty.
    """
    if len(chap_password) != _CHAP_PASSWORD_LENGTH:
        raise RadiusCryptoError(
            f"CHAP-Password must be {_CHAP_PASSWORD_LENGTH} octets, got {len(chap_password)}"
        )
    if not challenge:
        raise RadiusCryptoError("CHAP challenge is empty")
    expected = chap_response(chap_password[0], password, challenge)
    return hmac.compare_digest(expected, chap_password[1:])


def new_salts(count: int, random: RandomSource = os.urandom) -> list[bytes]:
    """``count`` distinct two-octet salts with the high bit set, for one reply packet.

    RFC 2548 section 2.4.2 and RFC 2868 section 3.5 require every salted attribute in a packet to
    carry a different salt; at most 32768 exist. The server's MS-MPPE keys use :func:`salt_pair`.
    """
    if not 0 <= count <= 0x8000:
        raise RadiusCryptoError(f"cannot make {count} distinct salts")
    salts: list[bytes] = []
    seen: set[bytes] = set()
    while len(salts) < count:
        raw = random(_SALT_LENGTH)
        salt = bytes((raw[0] | 0x80, raw[1]))
        if salt not in seen:
            seen.add(salt)
            salts.append(salt)
    return salts


_SALT_COUNTER = itertools.count(int.from_bytes(os.urandom(2)))


def salt_pair() -> tuple[bytes, bytes]:
    """Two different salts with the high bit set, for the two salted attributes of one reply.

    What RFC 2548 section 2.4.2 asks of a salt: its most significant bit MUST be set, and the
    salts of one Access-Accept MUST differ, "to ensure the uniqueness of the keys used to encrypt
    each of the encrypted attributes". It travels in the clear; the secrecy is the shared secret's,
    and the keystream ``MD5(secret + Request Authenticator + salt)`` is new for every request
    anyway, the Request Authenticator being the NAS's random value. So the salts come from a
    counter, not from ``os.urandom`` for each attribute: the pair is ``0x8000 | 2n`` and
    ``0x8000 | 2n + 1`` for the next ``n`` modulo 16,384 (from a random start), so the two salts
    of a reply always differ, and a salt recurs only after 16,384 replies from this process.
    (FreeRADIUS also puts a counter into its salts, for the same uniqueness, and fills the other
    bits from its own generator.) ``next`` on the shared ``itertools.count`` is atomic under the
    GIL, so two threads never get the same ``n``.
    """
    first = 0x8000 | (next(_SALT_COUNTER) & 0x3FFF) << 1
    return first.to_bytes(2), (first | 1).to_bytes(2)


def salt_encrypt(data: bytes, secret: bytes, authenticator: bytes, salt: bytes) -> bytes:
    """Encrypt ``data`` as a salted attribute value: ``salt + chain(len(data) + data + padding)``.

    Used for MS-MPPE-Send-Key / MS-MPPE-Recv-Key (RFC 2548 sections 2.4.2-2.4.3) and
    Tunnel-Password (RFC 2868 section 3.5). ``salt`` is two octets with the high bit set, unique
    within the packet (see :func:`salt_pair`, :func:`new_salts`); ``authenticator`` is the
    Access-Request's.
    """
    if len(authenticator) != AUTHENTICATOR_LENGTH:
        _check_authenticator(authenticator)
    if len(salt) != _SALT_LENGTH or not salt[0] & 0x80:
        raise RadiusCryptoError("salt must be two octets with the high bit set")
    size = len(data)
    if size == _BLOCK:  # an MPPE key: the length octet and 15 key octets, then the last key octet and zeros
        from_bytes = int.from_bytes
        first = (from_bytes(_LENGTH_OCTET[_BLOCK] + data[:15]) ^ from_bytes(md5(secret + authenticator + salt).digest())).to_bytes(_BLOCK)
        return salt + first + ((data[15] << 120) ^ from_bytes(md5(secret + first).digest())).to_bytes(_BLOCK)
    if size > 0xFF:
        raise RadiusCryptoError(f"salted data is at most 255 octets, got {size}")
    plain = _LENGTH_OCTET[size] + data + _ZEROS[: _BLOCK - 1 - size % _BLOCK]
    return salt + md5_chain_encrypt(plain, secret, authenticator + salt)


def salt_decrypt(value: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """Reverse :func:`salt_encrypt`: return the data, without length octet or padding.

    Raises :class:`RadiusCryptoError` for a value that is not salt + 16n octets, a salt without
    its high bit, or a decrypted length octet longer than the data (usually a wrong secret).
    """
    _check_authenticator(authenticator)
    body = value[_SALT_LENGTH:]
    if len(value) < _SALT_LENGTH + _BLOCK or len(body) % _BLOCK or not value[0] & 0x80:
        raise RadiusCryptoError(f"salted value has an impossible shape ({len(value)} octets)")
    plain = md5_chain_decrypt(body, secret, authenticator + value[:_SALT_LENGTH])
    length = plain[0]
    if length > len(plain) - 1:
        raise RadiusCryptoError("salted value's length octet exceeds its data")
    return plain[1 : 1 + length]

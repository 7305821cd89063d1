"""MS-CHAPv1 and MS-CHAPv2 authentication and MPPE key derivation, on plain bytes.

What a RADIUS server does with Microsoft's CHAP dialects:

* MS-CHAPv1 (RFC 2433; RADIUS attributes RFC 2548 section 2.1): verify the NT-Response of an
  MS-CHAP-Response against the 8-octet MS-CHAP-Challenge and build MS-CHAP-MPPE-Keys
  (RFC 2548 section 2.4.1), hidden like User-Password.
* MS-CHAPv2 (RFC 2759; RFC 2548 section 2.3): verify an MS-CHAP2-Response against the 16-octet
  MS-CHAP-Challenge, build MS-CHAP2-Success (ident + ``S=`` authenticator response) and derive the
  MPPE master keys (RFC 3079 section 3) sent as MS-MPPE-Send-Key / MS-MPPE-Recv-Key, salt-encrypted
  (RFC 2548 sections 2.4.2-2.4.3).
* MS-CHAP-Error values (RFC 2759 section 6 codes) for a reject.

Password material is either the cleartext password (``str``) or the stored 16-octet NT hash
(``bytes``), so a provider may keep only NT hashes. A wrong password gives ``None``; an attribute
of impossible shape raises :class:`~aaa.radius.crypto.RadiusCryptoError`. Nothing here logs.

Direction of the MPPE keys: the RADIUS server speaks for the authenticator (the NAS), the
"server" of RFC 3079. MS-MPPE-Send-Key is the key the NAS sends with, ``GetAsymmetricStartKey``
with IsSend and IsServer both true (Magic3, RFC 3079 section 3.4 and its section 3.5.3 vector);
MS-MPPE-Recv-Key uses Magic2. FreeRADIUS's rlm_mschap does the same.
"""

from __future__ import annotations

import hmac
import os
from binascii import hexlify
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from aaa.radius import legacy_crypto
from aaa.radius.crypto import (
    RadiusCryptoError,
    RandomSource,
    md5_chain_decrypt,
    md5_chain_encrypt,
    new_salts,
    salt_decrypt,
    salt_encrypt,
    salt_pair,
)
from aaa.radius.digest import sha1

__all__ = [
    "MsChap1Accept",
    "MsChap2Accept",
    "MsChapError",
    "NtKeys",
    "PasswordMaterial",
    "challenge_hash",
    "challenge_response",
    "decrypt_ms_chap_mppe_keys",
    "decrypt_mppe_key",
    "encrypt_ms_chap_mppe_keys",
    "encrypt_mppe_key",
    "generate_authenticator_response",
    "generate_nt_response",
    "get_asymmetric_start_key",
    "get_master_key",
    "get_new_key_from_sha",
    "hash_nt_password_hash",
    "lm_password_hash",
    "mppe_key_attributes",
    "mschap1_authenticate",
    "mschap1_error",
    "mschap1_mppe_keys",
    "mschap2_authenticate",
    "mschap2_error",
    "mschap2_mppe_keys",
    "mschap2_success",
    "nt_hash_of",
    "nt_keys",
    "nt_password_hash",
    "reduce_session_key",
]

PasswordMaterial = str | bytes
"""Cleartext password (``str``) or the stored 16-octet NT password hash (``bytes``)."""

_NT_HASH_LENGTH = 16
_NT_RESPONSE_LENGTH = 24
_MSCHAP1_CHALLENGE_LENGTH = 8
_MSCHAP2_CHALLENGE_LENGTH = 16
_MSCHAP1_RESPONSE_LENGTH = 50  # ident, flags, LM-Response(24), NT-Response(24)
_MSCHAP2_RESPONSE_LENGTH = 50  # ident, flags, peer challenge(16), reserved(8), NT-Response(24)
_USE_NT_RESPONSE = 0x01
_LM_MAX_PASSWORD = 14
_LM_MAGIC = b"KGS!@#$%"

# RFC 2759 section 8.7 and RFC 3079 section 3.4 constants.
_AUTH_MAGIC1 = b"Magic server to client signing constant"
_AUTH_MAGIC2 = b"Pad to make it do more than one iteration"
_MASTER_MAGIC = b"This is the MPPE Master Key"
_CLIENT_SEND_MAGIC = b"On the client side, this is the send key; on the server side, it is the receive key."
_SERVER_SEND_MAGIC = b"On the client side, this is the receive key; on the server side, it is the send key."
_SHS_PAD1 = b"\x00" * 40
_SHS_PAD2 = b"\xf2" * 40
# What follows the master key in GetAsymmetricStartKey's SHA-1: SHSpad1 + magic + SHSpad2, for the
# server's send key (the client's receive key, Magic3) and its receive key (Magic2).
_SERVER_SEND_TAIL = _SHS_PAD1 + _SERVER_SEND_MAGIC + _SHS_PAD2
_SERVER_RECV_TAIL = _SHS_PAD1 + _CLIENT_SEND_MAGIC + _SHS_PAD2
_SUCCESS_PREFIX = [bytes((ident,)) + b"S=" for ident in range(256)]
"""MS-CHAP2-Success starts with the response's ident octet, then ``S=``."""


class MsChapError(IntEnum):
    """Failure codes carried in MS-CHAP-Error (RFC 2759 section 6, RFC 2433 section 6)."""

    RESTRICTED_LOGON_HOURS = 646
    ACCOUNT_DISABLED = 647
    PASSWORD_EXPIRED = 648
    NO_DIALIN_PERMISSION = 649
    AUTHENTICATION_FAILURE = 691
    CHANGING_PASSWORD = 709


_DEFAULT_MESSAGES = {
    MsChapError.RESTRICTED_LOGON_HOURS: "Logon outside allowed hours",
    MsChapError.ACCOUNT_DISABLED: "Account disabled",
    MsChapError.PASSWORD_EXPIRED: "Password expired",
    MsChapError.NO_DIALIN_PERMISSION: "No dial-in permission",
    MsChapError.AUTHENTICATION_FAILURE: "Authentication failed",
    MsChapError.CHANGING_PASSWORD: "Error changing password",
}


# --- hashes --------------------------------------------------------------------------------------


def nt_password_hash(password: str) -> bytes:
    """NtPasswordHash: MD4 of the UTF-16LE password, no terminator (RFC 2759 section 8.3)."""
    return legacy_crypto.md4(password.encode("utf-16-le"))


def hash_nt_password_hash(password_hash: bytes) -> bytes:
    """HashNtPasswordHash: MD4 of the 16-octet NT hash (RFC 2759 section 8.4)."""
    return legacy_crypto.md4(password_hash)


def nt_hash_of(material: PasswordMaterial) -> bytes:
    """The NT hash from cleartext (``str``) or an already stored 16-octet hash (``bytes``)."""
    if isinstance(material, str):
        return nt_password_hash(material)
    if len(material) != _NT_HASH_LENGTH:
        raise RadiusCryptoError(f"a stored NT hash is {_NT_HASH_LENGTH} octets, got {len(material)}")
    return bytes(material)


def lm_password_hash(password: str) -> bytes | None:
    """LmPasswordHash (RFC 2433 appendix A.2), or ``None`` where LAN Manager cannot hash it.

    The password is upper-cased, zero-padded to 14 octets, and each 7-octet half DES-encrypts
    ``KGS!@#$%``. Passwords over 14 characters or outside ASCII have no LM hash.
    """
    upper = password.upper()
    if len(upper) > _LM_MAX_PASSWORD or not upper.isascii():
        return None
    padded = upper.encode("ascii").ljust(_LM_MAX_PASSWORD, b"\x00")
    return _des_encrypt(_LM_MAGIC, padded[:7]) + _des_encrypt(_LM_MAGIC, padded[7:])


def _des_encrypt(clear: bytes, key7: bytes) -> bytes:
    """DesEncrypt (RFC 2759 section 8.6): a 56-bit key spread over 8 octets, parity ignored."""
    return legacy_crypto.des_ecb((_des_key(key7),), clear)


def _des_key(key7: bytes) -> bytes:
    """A 56-bit DES key spread over 8 octets, parity ignored (RFC 2759 section 8.6)."""
    b = int.from_bytes(key7, "big")
    return bytes((
        b >> 48 & 0xFE, b >> 41 & 0xFE, b >> 34 & 0xFE, b >> 27 & 0xFE,
        b >> 20 & 0xFE, b >> 13 & 0xFE, b >> 6 & 0xFE, b << 1 & 0xFE,
    ))  # fmt: skip


@dataclass(frozen=True, slots=True)
class NtKeys:
    """What MS-CHAP derives from a password and nothing else, computed once per password.

    ``nt_hash`` (MD4 of the password), ``hash_hash`` (MD4 of that, for the authenticator response
    and the MPPE keys) and the three DES keys that ChallengeResponse spreads out of the NT hash,
    already scheduled (:func:`aaa.radius.legacy_crypto.des_prepare`, about 400 octets). The server
    keeps them on the cached subscriber, so they are derived again only when the subscriber changes
    (a new cache entry). With libcrypto's MD4 and DES deriving them costs about 10 µs and a
    ChallengeResponse about 3 µs (7.5 µs when the keys were scheduled on every login).
    """

    nt_hash: bytes
    hash_hash: bytes
    des: tuple[Any, ...]

    def challenge_response(self, challenge: bytes) -> bytes:
        """ChallengeResponse (RFC 2759 section 8.5) with this password's hash."""
        return legacy_crypto.des_ecb_prepared(self.des, challenge)


def nt_keys(password: PasswordMaterial) -> NtKeys:
    """The :class:`NtKeys` of a cleartext password or a stored 16-octet NT hash."""
    nt_hash = nt_hash_of(password)
    padded = nt_hash + b"\x00" * 5
    des = legacy_crypto.des_prepare((_des_key(padded[0:7]), _des_key(padded[7:14]), _des_key(padded[14:21])))
    return NtKeys(nt_hash, hash_nt_password_hash(nt_hash), des)


def challenge_response(challenge: bytes, password_hash: bytes) -> bytes:
    """ChallengeResponse (RFC 2759 section 8.5): 24 octets from an 8-octet challenge and a hash."""
    if len(challenge) != 8 or len(password_hash) != _NT_HASH_LENGTH:
        raise RadiusCryptoError("ChallengeResponse takes an 8-octet challenge and a 16-octet hash")
    padded = password_hash + b"\x00" * 5
    return b"".join(_des_encrypt(challenge, padded[i : i + 7]) for i in (0, 7, 14))


def challenge_hash(peer_challenge: bytes, authenticator_challenge: bytes, username: bytes) -> bytes:
    """ChallengeHash (RFC 2759 section 8.2): first 8 octets of SHA1(peer + authenticator + user).

    Any ``DOMAIN\\`` prefix of ``username`` is dropped, as the RFC requires.
    """
    return sha1(peer_challenge + authenticator_challenge + username.rpartition(b"\\")[2]).digest()[:8]


def generate_nt_response(
    authenticator_challenge: bytes, peer_challenge: bytes, username: bytes, password: PasswordMaterial
) -> bytes:
    """GenerateNTResponse (RFC 2759 section 8.1): the 24-octet NT-Response a peer sends."""
    challenge = challenge_hash(peer_challenge, authenticator_challenge, username)
    return challenge_response(challenge, nt_hash_of(password))


def generate_authenticator_response(
    password: PasswordMaterial,
    nt_response: bytes,
    peer_challenge: bytes,
    authenticator_challenge: bytes,
    username: bytes,
) -> bytes:
    """GenerateAuthenticatorResponse (RFC 2759 section 8.7): ``b"S="`` + 40 upper-case hex digits."""
    hash_hash = hash_nt_password_hash(nt_hash_of(password))
    challenge = challenge_hash(peer_challenge, authenticator_challenge, username)
    return _authenticator_response(hash_hash, nt_response, challenge)


def _authenticator_response(hash_hash: bytes, nt_response: bytes, challenge: bytes) -> bytes:
    """GenerateAuthenticatorResponse from the hash-hash and the 8-octet ChallengeHash."""
    return b"S=" + _authenticator_hex(hash_hash, nt_response, challenge)


def _authenticator_hex(hash_hash: bytes, nt_response: bytes, challenge: bytes) -> bytes:
    """The 40 upper-case hex digits of the authenticator response (after ``S=``)."""
    digest = sha1(hash_hash + nt_response + _AUTH_MAGIC1).digest()
    return hexlify(sha1(digest + challenge + _AUTH_MAGIC2).digest()).upper()


# --- MPPE key derivation (RFC 3079) ---------------------------------------------------------------


def get_master_key(password_hash_hash: bytes, nt_response: bytes) -> bytes:
    """GetMasterKey (RFC 3079 section 3.4): 16 octets of SHA1(hash-hash + NT-Response + magic)."""
    return sha1(password_hash_hash + nt_response + _MASTER_MAGIC).digest()[:16]


def get_asymmetric_start_key(master_key: bytes, key_length: int, *, is_send: bool, is_server: bool) -> bytes:
    """GetAsymmetricStartKey (RFC 3079 section 3.4); ``key_length`` 16 for 128-bit, 8 for 40/56-bit.

    The server's send key is the client's receive key: both use the "server send" magic.
    """
    if key_length not in (8, 16):
        raise RadiusCryptoError(f"MPPE start keys are 8 or 16 octets, got {key_length}")
    tail = _SERVER_SEND_TAIL if is_send == is_server else _SERVER_RECV_TAIL
    return sha1(master_key + tail).digest()[:key_length]


def get_new_key_from_sha(start_key: bytes, session_key: bytes, key_length: int) -> bytes:
    """GetNewKeyFromSHA (RFC 3079 section 3.3, RFC 3078 section 7.3): the NAS's next session key."""
    return sha1(start_key[:key_length] + _SHS_PAD1 + session_key[:key_length] + _SHS_PAD2).digest()[
        :key_length
    ]


def reduce_session_key(key: bytes, bits: int) -> bytes:
    """Weaken an 8-octet key to 40 or 56 bits with the fixed prefix of RFC 3079 section 3.3."""
    if len(key) != 8 or bits not in (40, 56):
        raise RadiusCryptoError("only an 8-octet key reduces, to 40 or 56 bits")
    prefix = b"\xd1\x26\x9e" if bits == 40 else b"\xd1"
    return prefix + key[len(prefix) :]


def mschap2_mppe_keys(password: PasswordMaterial, nt_response: bytes) -> tuple[bytes, bytes]:
    """The server's 16-octet (MS-MPPE-Send-Key, MS-MPPE-Recv-Key) plaintexts after MS-CHAPv2."""
    return _mppe_keys(hash_nt_password_hash(nt_hash_of(password)), nt_response)


def _mppe_keys(hash_hash: bytes, nt_response: bytes) -> tuple[bytes, bytes]:
    """The 16-octet send and receive start keys (GetAsymmetricStartKey with IsServer true)."""
    master = get_master_key(hash_hash, nt_response)
    return sha1(master + _SERVER_SEND_TAIL).digest()[:16], sha1(master + _SERVER_RECV_TAIL).digest()[:16]


def encrypt_mppe_key(key: bytes, secret: bytes, authenticator: bytes, salt: bytes) -> bytes:
    """An MS-MPPE-Send-Key or -Recv-Key attribute value (RFC 2548 sections 2.4.2-2.4.3)."""
    return salt_encrypt(key, secret, authenticator, salt)


def decrypt_mppe_key(value: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """The key inside an MS-MPPE-Send-Key or -Recv-Key value (the NAS's side; used by tests)."""
    return salt_decrypt(value, secret, authenticator)


def mppe_key_attributes(
    send_key: bytes,
    recv_key: bytes,
    secret: bytes,
    authenticator: bytes,
    random: RandomSource | None = None,
) -> tuple[bytes, bytes]:
    """(MS-MPPE-Send-Key, MS-MPPE-Recv-Key) values, encrypted with two distinct salts.

    The salts come from :func:`~aaa.radius.crypto.salt_pair` (a counter, see there why that is
    what RFC 2548 asks for), or from ``random`` when one is given (tests).
    """
    send_salt, recv_salt = salt_pair() if random is None else new_salts(2, random)
    return (
        salt_encrypt(send_key, secret, authenticator, send_salt),
        salt_encrypt(recv_key, secret, authenticator, recv_salt),
    )


# --- MS-CHAPv2 -----------------------------------------------------------------------------------


@dataclass(slots=True)
class MsChap2Accept:
    """A verified MS-CHAP2-Response: what the Access-Accept needs.

    ``success`` is the MS-CHAP2-Success value (ident + ``S=...``); ``send_key`` and ``recv_key``
    are the plaintext MS-MPPE-Send-Key / MS-MPPE-Recv-Key, to encrypt with
    :func:`mppe_key_attributes`. (Not frozen: a frozen dataclass's ``__init__`` sets each field
    through ``object.__setattr__``, four times slower, and this is built on every login.)
    """

    ident: int
    success: bytes
    send_key: bytes
    recv_key: bytes


def mschap2_success(ident: int, authenticator_response: bytes) -> bytes:
    """The MS-CHAP2-Success value: the response's ident octet + ``S=<40 hex>`` (RFC 2548 2.3.3)."""
    return bytes((ident,)) + authenticator_response


def mschap2_authenticate(
    response: bytes, challenge: bytes, username: bytes, password: PasswordMaterial | NtKeys
) -> MsChap2Accept | None:
    """Verify an MS-CHAP2-Response against the MS-CHAP-Challenge; ``None`` for a wrong password.

    ``response`` is the 50-octet attribute (ident, flags, peer challenge, 8 reserved, NT-Response);
    ``challenge`` the 16-octet MS-CHAP-Challenge; ``username`` the User-Name as the peer sent it;
    ``password`` the cleartext, the NT hash, or (fastest) its :class:`NtKeys`.
    Raises :class:`RadiusCryptoError` when either attribute has the wrong length.
    """
    if len(response) != _MSCHAP2_RESPONSE_LENGTH:
        raise RadiusCryptoError(f"MS-CHAP2-Response must be 50 octets, got {len(response)}")
    if len(challenge) != _MSCHAP2_CHALLENGE_LENGTH:
        raise RadiusCryptoError(f"MS-CHAPv2 MS-CHAP-Challenge must be 16 octets, got {len(challenge)}")
    keys = password if isinstance(password, NtKeys) else nt_keys(password)
    nt_response = response[26:50]
    challenge8 = challenge_hash(response[2:18], challenge, username)
    if not hmac.compare_digest(keys.challenge_response(challenge8), nt_response):
        return None
    ident = response[0]
    send_key, recv_key = _mppe_keys(keys.hash_hash, nt_response)
    return MsChap2Accept(
        ident, _SUCCESS_PREFIX[ident] + _authenticator_hex(keys.hash_hash, nt_response, challenge8), send_key, recv_key
    )


def mschap2_error(
    ident: int,
    code: MsChapError,
    *,
    message: str | None = None,
    retry: bool = False,
    challenge: bytes | None = None,
    random: RandomSource = os.urandom,
) -> bytes:
    """An MS-CHAP-Error value for MS-CHAPv2: ident + ``E=691 R=0 C=<32 hex> V=3 M=<message>``.

    ``challenge`` is the 16-octet challenge for a retry (random when not given); ``message``
    defaults to an English text for ``code``.
    """
    if challenge is None:
        challenge = random(_MSCHAP2_CHALLENGE_LENGTH)
    if len(challenge) != _MSCHAP2_CHALLENGE_LENGTH:
        raise RadiusCryptoError("an MS-CHAPv2 error carries a 16-octet challenge")
    text = message if message is not None else _DEFAULT_MESSAGES[code]
    body = f"E={int(code)} R={int(retry)} C={challenge.hex().upper()} V=3 M={text}"
    return bytes((ident,)) + body.encode("utf-8")


# --- MS-CHAPv1 -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MsChap1Accept:
    """A verified MS-CHAP-Response; ``mppe_keys`` is the 24-octet LM-Key + NT-Key plaintext."""

    ident: int
    mppe_keys: bytes


def mschap1_authenticate(
    response: bytes, challenge: bytes, password: PasswordMaterial
) -> MsChap1Accept | None:
    """Verify an MS-CHAP-Response (RFC 2548 section 2.1.3) with its NT-Response; ``None`` if wrong.

    ``response`` is 50 octets (ident, flags, LM-Response, NT-Response); ``challenge`` the 8-octet
    MS-CHAP-Challenge. Only the NT-Response counts: a response whose flags do not select it
    (LAN Manager only, Windows 95 era) is refused. Raises :class:`RadiusCryptoError` on bad lengths.
    """
    if len(response) != _MSCHAP1_RESPONSE_LENGTH:
        raise RadiusCryptoError(f"MS-CHAP-Response must be 50 octets, got {len(response)}")
    if len(challenge) != _MSCHAP1_CHALLENGE_LENGTH:
        raise RadiusCryptoError(f"MS-CHAPv1 MS-CHAP-Challenge must be 8 octets, got {len(challenge)}")
    if not response[1] & _USE_NT_RESPONSE:
        return None
    nt_hash = nt_hash_of(password)
    if not hmac.compare_digest(challenge_response(challenge, nt_hash), response[26:50]):
        return None
    return MsChap1Accept(response[0], mschap1_mppe_keys(password, nt_hash))


def mschap1_mppe_keys(password: PasswordMaterial, nt_hash: bytes | None = None) -> bytes:
    """MS-CHAP-MPPE-Keys plaintext (RFC 2548 section 2.4.1): LM-Key (8) + NT-Key (16).

    The LM-Key is the first 8 octets of the LM hash when the cleartext has one, zeros otherwise;
    the NT-Key is the NT hash's hash, which is what NASes use (FreeRADIUS sends the same).
    """
    if nt_hash is None:
        nt_hash = nt_hash_of(password)
    lm_hash = lm_password_hash(password) if isinstance(password, str) else None
    lm_key = lm_hash[:8] if lm_hash is not None else b"\x00" * 8
    return lm_key + hash_nt_password_hash(nt_hash)


def encrypt_ms_chap_mppe_keys(keys: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """Hide the 24-octet MS-CHAP-MPPE-Keys plaintext, zero-padded to 32, like User-Password."""
    if len(keys) != 24:
        raise RadiusCryptoError(f"MS-CHAP-MPPE-Keys plaintext is 24 octets, got {len(keys)}")
    if len(authenticator) != 16:
        raise RadiusCryptoError("request authenticator must be 16 octets")
    return md5_chain_encrypt(keys + b"\x00" * 8, secret, authenticator)


def decrypt_ms_chap_mppe_keys(value: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """The 24-octet LM-Key + NT-Key inside an MS-CHAP-MPPE-Keys value (the NAS's side)."""
    if len(value) != 32 or len(authenticator) != 16:
        raise RadiusCryptoError("MS-CHAP-MPPE-Keys is 32 octets, decrypted with a 16-octet authenticator")
    return md5_chain_decrypt(value, secret, authenticator)[:24]


def mschap1_error(ident: int, code: MsChapError, *, retry: bool = False) -> bytes:
    """An MS-CHAP-Error value for MS-CHAPv1: ident + ``E=<code> R=<0|1>`` (RFC 2433 section 6)."""
    return bytes((ident,)) + f"E={int(code)} R={int(retry)}".encode("ascii")

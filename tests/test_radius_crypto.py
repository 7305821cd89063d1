"""PAP hiding, CHAP and salted attribute encryption (aaa.radius.crypto) against their RFCs.

The reference functions below are written straight from the RFC pseudo-code (RFC 2865 section 5.2,
RFC 2548 section 2.4.2) so the module is checked against an independent formula, not itself.
The frozen vectors (secret "testing123", authenticator 00..0f) come from those formulas and agree
with pyrad 2.4's PwCrypt / SaltDecrypt, a second independent implementation.
"""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aaa.errors import AAAError
from aaa.radius.crypto import (
    RadiusCryptoError,
    chap_response,
    chap_verify,
    new_salts,
    pap_hide,
    pap_unhide,
    salt_decrypt,
    salt_encrypt,
    salt_pair,
)

SECRET = b"testing123"
AUTHENTICATOR = bytes.fromhex("000102030405060708090a0b0c0d0e0f")


def rfc2865_hide(password: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """RFC 2865 5.2 literally: b1 = MD5(S + RA), c(i) = p(i) xor b(i), b(i) = MD5(S + c(i-1))."""
    padded = password + b"\x00" * ((16 - len(password) % 16) % 16) if password else b"\x00" * 16
    chunks = [padded[i : i + 16] for i in range(0, len(padded), 16)]
    result = b""
    key_input = authenticator
    for chunk in chunks:
        b = hashlib.md5(secret + key_input).digest()
        c = bytes(x ^ y for x, y in zip(chunk, b, strict=True))
        result += c
        key_input = c
    return result


def rfc2548_encrypt(key: bytes, secret: bytes, authenticator: bytes, salt: bytes) -> bytes:
    """RFC 2548 2.4.2 literally: P = len + key + pad, b(1) = MD5(S + R + A), b(i) = MD5(S + c(i-1))."""
    plain = bytes([len(key)]) + key
    plain += b"\x00" * ((16 - len(plain) % 16) % 16)
    result = b""
    key_input = authenticator + salt
    for i in range(0, len(plain), 16):
        b = hashlib.md5(secret + key_input).digest()
        c = bytes(x ^ y for x, y in zip(plain[i : i + 16], b, strict=True))
        result += c
        key_input = c
    return salt + result


# --- PAP -----------------------------------------------------------------------------------------


def test_pap_hide_fixed_vector_one_block() -> None:
    """A short password hides to the frozen output of the RFC 2865 formula."""
    assert pap_hide(b"hello", SECRET, AUTHENTICATOR).hex() == "fe8b65a61bfd7a1a104607240014828b"


def test_pap_hide_fixed_vector_two_blocks() -> None:
    """A 20-octet password spans two blocks chained through the first ciphertext block."""
    hidden = pap_hide(b"senha-do-assinante-1", SECRET, AUTHENTICATOR)
    assert hidden.hex() == "e58b67a215d01e753d277457697ae3e58729681c28b4786ab6b3b14c813ae489"


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 31, 32, 33, 100, 127, 128])
def test_pap_hide_matches_rfc_formula(length: int) -> None:
    """pap_hide agrees with the literal RFC 2865 formula at every block boundary."""
    password = bytes(range(1, length + 1))
    assert pap_hide(password, SECRET, AUTHENTICATOR) == rfc2865_hide(password, SECRET, AUTHENTICATOR)


def test_pap_hide_empty_password_is_one_block() -> None:
    """An empty password still yields one 16-octet block (RFC 2865: at least 16 octets)."""
    assert len(pap_hide(b"", SECRET, AUTHENTICATOR)) == 16


def test_pap_unhide_long_password() -> None:
    """A 128-octet password survives hiding and unhiding."""
    password = b"x" * 128
    assert pap_unhide(pap_hide(password, SECRET, AUTHENTICATOR), SECRET, AUTHENTICATOR) == password


def test_pap_unhide_wrong_secret_gives_wrong_password() -> None:
    """With the wrong secret the result is garbage, not the password and not an exception."""
    hidden = pap_hide(b"hello", SECRET, AUTHENTICATOR)
    assert pap_unhide(hidden, b"other-secret", AUTHENTICATOR) != b"hello"


@pytest.mark.parametrize("length", [0, 15, 17, 144])
def test_pap_unhide_rejects_impossible_length(length: int) -> None:
    """A hidden value that is empty, not in 16-octet blocks, or over 128 octets raises."""
    with pytest.raises(RadiusCryptoError):
        pap_unhide(b"\x01" * length, SECRET, AUTHENTICATOR)


def test_pap_hide_rejects_password_over_128() -> None:
    """RFC 2865 caps User-Password at 128 octets."""
    with pytest.raises(RadiusCryptoError):
        pap_hide(b"x" * 129, SECRET, AUTHENTICATOR)


def test_pap_rejects_short_authenticator() -> None:
    """The request authenticator is exactly 16 octets."""
    with pytest.raises(RadiusCryptoError):
        pap_hide(b"hello", SECRET, AUTHENTICATOR[:15])


def test_crypto_error_is_an_aaa_error() -> None:
    """The module's error belongs to the project hierarchy, so the CLI and server handle it."""
    assert issubclass(RadiusCryptoError, AAAError)


@given(
    password=st.binary(min_size=0, max_size=128).map(lambda b: b.rstrip(b"\x00")),
    secret=st.binary(min_size=1, max_size=64),
    authenticator=st.binary(min_size=16, max_size=16),
)
def test_pap_round_trip(password: bytes, secret: bytes, authenticator: bytes) -> None:
    """Any password of 0-128 octets (without trailing NULs, which are padding) round-trips."""
    hidden = pap_hide(password, secret, authenticator)
    assert len(hidden) % 16 == 0 and 16 <= len(hidden) <= 128
    assert pap_unhide(hidden, secret, authenticator) == password


# --- CHAP ----------------------------------------------------------------------------------------

# A public CHAP vector (node "chap" package tests): ident 1, password "MyPw".
CHAP_CHALLENGE = bytes.fromhex("c49c74a7d3f8fa006ea57190f28ab34c")
CHAP_RESPONSE = bytes.fromhex("822c2bc654b1d0a8dbea8737fbbdde0e")


def test_chap_response_fixed_vector() -> None:
    """MD5(ident + password + challenge) gives the published response."""
    assert chap_response(1, b"MyPw", CHAP_CHALLENGE) == CHAP_RESPONSE


def test_chap_verify_accepts_right_password() -> None:
    """The published CHAP-Password verifies with the right password."""
    assert chap_verify(b"\x01" + CHAP_RESPONSE, CHAP_CHALLENGE, b"MyPw") is True


def test_chap_verify_rejects_wrong_password() -> None:
    """A wrong password fails without raising."""
    assert chap_verify(b"\x01" + CHAP_RESPONSE, CHAP_CHALLENGE, b"mypw") is False


def test_chap_verify_rejects_wrong_ident() -> None:
    """The ident octet is part of the hash: another ident fails."""
    assert chap_verify(b"\x02" + CHAP_RESPONSE, CHAP_CHALLENGE, b"MyPw") is False


def test_chap_verify_with_request_authenticator_as_challenge() -> None:
    """Without CHAP-Challenge the 16-octet request authenticator is the challenge (RFC 2865 2.2)."""
    response = hashlib.md5(b"\x07" + b"hotspot-pass" + AUTHENTICATOR).digest()
    assert chap_verify(b"\x07" + response, AUTHENTICATOR, b"hotspot-pass") is True


@pytest.mark.parametrize("length", [0, 16, 18])
def test_chap_verify_rejects_bad_chap_password_length(length: int) -> None:
    """CHAP-Password is exactly 17 octets."""
    with pytest.raises(RadiusCryptoError):
        chap_verify(b"\x01" * length, CHAP_CHALLENGE, b"MyPw")


# --- salted encryption (MS-MPPE keys, Tunnel-Password) ---------------------------------------------

SEND_KEY = bytes.fromhex("8b7cdc149b993a1ba118cb153f56dccb")


def test_salt_encrypt_fixed_vector() -> None:
    """A 16-octet MPPE key with salt 0x8001 encrypts to the frozen RFC 2548 output."""
    value = salt_encrypt(SEND_KEY, SECRET, AUTHENTICATOR, b"\x80\x01")
    assert value == b"\x80\x01" + bytes.fromhex(
        "222f78911e81bc02d486a8a0a785432f23e948690cf7b68255e9483cdb57bb05"
    )


@pytest.mark.parametrize("key_length", [0, 1, 8, 15, 16, 31, 32, 100])
def test_salt_encrypt_matches_rfc_formula(key_length: int) -> None:
    """salt_encrypt agrees with the literal RFC 2548 formula for any key length."""
    key = bytes(range(key_length))
    expected = rfc2548_encrypt(key, SECRET, AUTHENTICATOR, b"\x9a\xbc")
    assert salt_encrypt(key, SECRET, AUTHENTICATOR, b"\x9a\xbc") == expected


def test_salt_encrypt_mppe_key_is_34_octets() -> None:
    """Salt (2) + length octet, 16-octet key, padding (32): the MS-MPPE-Send-Key value size."""
    assert len(salt_encrypt(SEND_KEY, SECRET, AUTHENTICATOR, b"\x80\x01")) == 34


@given(
    data=st.binary(max_size=255),
    secret=st.binary(min_size=1, max_size=32),
    authenticator=st.binary(min_size=16, max_size=16),
    salt_low=st.binary(min_size=2, max_size=2),
)
def test_salt_round_trip(data: bytes, secret: bytes, authenticator: bytes, salt_low: bytes) -> None:
    """Encrypt then decrypt gives the data back, trailing NULs included (the length octet says)."""
    salt = bytes((salt_low[0] | 0x80, salt_low[1]))
    assert salt_decrypt(salt_encrypt(data, secret, authenticator, salt), secret, authenticator) == data


def test_salt_encrypt_rejects_salt_without_high_bit() -> None:
    """RFC 2548: the salt's most significant bit MUST be set."""
    with pytest.raises(RadiusCryptoError):
        salt_encrypt(SEND_KEY, SECRET, AUTHENTICATOR, b"\x7f\xff")


@pytest.mark.parametrize("value", [b"", b"\x80\x01", b"\x80\x01" + b"\x00" * 15, b"\x00\x01" + b"\x00" * 16])
def test_salt_decrypt_rejects_impossible_value(value: bytes) -> None:
    """Too short, not in 16-octet blocks, or salt without high bit: raises."""
    with pytest.raises(RadiusCryptoError):
        salt_decrypt(value, SECRET, AUTHENTICATOR)


def test_salt_pair_salts_have_the_high_bit_and_never_repeat_within_16384_replies() -> None:
    """The counter salts: both of a reply differ, every salt has its high bit set (RFC 2548 2.4.2),
    and 16,384 consecutive replies use 32,768 different salts (then the counter wraps)."""
    pairs = [salt_pair() for _ in range(16384)]
    salts = [salt for pair in pairs for salt in pair]
    assert all(len(salt) == 2 and salt[0] & 0x80 for salt in salts)
    assert all(send != recv for send, recv in pairs)
    assert len(set(salts)) == 32768
    assert salt_pair() == pairs[0]


def test_new_salts_are_distinct_with_high_bit() -> None:
    """Salts for one packet differ and carry the high bit, even when the random source repeats."""
    values = itertools.cycle([b"\x01\x02", b"\x01\x02", b"\x81\x02", b"\x00\x03"])
    salts = new_salts(2, lambda n: next(values))
    assert salts == [b"\x81\x02", b"\x80\x03"]


def test_the_hot_path_md5_gives_rfc_1321_answers_and_copies_keyed_states() -> None:
    """aaa.radius.digest.md5 (CPython's own MD5 where it has one) is MD5: RFC 1321's test suite,
    and a copied state goes on from where it was, as the HMAC of the codec needs."""
    import hashlib

    from aaa.radius.digest import md5

    vectors = {
        b"": "d41d8cd98f00b204e9800998ecf8427e",
        b"a": "0cc175b9c0f1b6a831c399e269772661",
        b"abc": "900150983cd24fb0d6963f7d28e17f72",
        b"message digest": "f96b697d7cb7938d525a2f31aaf161d0",
        b"abcdefghijklmnopqrstuvwxyz": "c3fcd3d76192e4007dfb496cca67e13b",
        b"1234567890" * 8: "57edf4a22be3c955ac49da2e2107b67a",
    }
    for data, expected in vectors.items():
        assert md5(data).hexdigest() == expected
    keyed = md5(b"k" * 64)
    first, second = keyed.copy(), keyed.copy()
    first.update(b"one")
    second.update(b"two")
    assert first.digest() == hashlib.md5(b"k" * 64 + b"one").digest()
    assert second.digest() == hashlib.md5(b"k" * 64 + b"two").digest()


def test_the_hot_path_sha1_gives_fips_180_answers() -> None:
    """aaa.radius.digest.sha1 (CPython's own SHA-1 where it has one, for MS-CHAPv2) is SHA-1:
    FIPS 180-2's examples and one input as long as an MS-CHAPv2 step's, against hashlib's."""
    import hashlib

    from aaa.radius.digest import sha1

    assert sha1(b"abc").hexdigest() == "a9993e364706816aba3e25717850c26c9cd0d89d"
    assert sha1(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").hexdigest() == "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
    assert sha1(b"").hexdigest() == "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    step = bytes(range(16)) + bytes(range(100, 124)) + b"Magic server to client signing constant"
    assert sha1(step).digest() == hashlib.sha1(step).digest()

"""MS-CHAPv1/v2 and MPPE keys (aaa.radius.mschap) against the RFCs' known-answer vectors.

Vectors: RFC 2759 section 9.2 (MS-CHAPv2 hash example), RFC 3079 section 3.5 (MPPE keys from
MS-CHAPv2, 40/56/128-bit), RFC 3079 section 2.5 (LAN Manager hash of "clientPass") and RFC 2433
appendix B.2 (MS-CHAPv1 hash example, password "MyPw").
"""

from __future__ import annotations

import itertools
import random

import pytest

from aaa.radius.crypto import RadiusCryptoError, pap_hide
from aaa.radius.mschap import (
    MsChapError,
    challenge_hash,
    challenge_response,
    decrypt_mppe_key,
    decrypt_ms_chap_mppe_keys,
    encrypt_mppe_key,
    encrypt_ms_chap_mppe_keys,
    generate_authenticator_response,
    generate_nt_response,
    get_asymmetric_start_key,
    get_master_key,
    get_new_key_from_sha,
    hash_nt_password_hash,
    lm_password_hash,
    mppe_key_attributes,
    mschap1_authenticate,
    mschap1_error,
    mschap1_mppe_keys,
    mschap2_authenticate,
    mschap2_error,
    mschap2_mppe_keys,
    nt_hash_of,
    nt_keys,
    nt_password_hash,
    reduce_session_key,
)

# RFC 2759 section 9.2 / RFC 3079 section 3.5.
USER = b"User"
PASSWORD = "clientPass"
AUTH_CHALLENGE = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")
PEER_CHALLENGE = bytes.fromhex("21402324255E262A28295F2B3A337C7E")
CHALLENGE = bytes.fromhex("D02E4386BCE91226")
PASSWORD_HASH = bytes.fromhex("44EBBA8D5312B8D611474411F56989AE")
NT_RESPONSE = bytes.fromhex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
PASSWORD_HASH_HASH = bytes.fromhex("41C00C584BD2D91C4017A2A12FA59F3F")
AUTHENTICATOR_RESPONSE = b"S=407A5589115FD0D6209F510FE9C04566932CDA56"
MASTER_KEY = bytes.fromhex("FDECE3717A8C838CB388E527AE3CDD31")
SEND_START_KEY_128 = bytes.fromhex("8B7CDC149B993A1BA118CB153F56DCCB")
SEND_SESSION_KEY_128 = bytes.fromhex("405CB2247A7956E6E211007AE27B22D4")
SEND_START_KEY_64 = bytes.fromhex("8B7CDC149B993A1B")
SEND_SESSION_KEY_40 = bytes.fromhex("D1269EC49FA62E3E")
SEND_SESSION_KEY_56 = bytes.fromhex("D15C00C49FA62E3E")
# The other direction (Magic2) of the same exchange, as peers and FreeRADIUS compute it.
RECV_START_KEY_128 = bytes.fromhex("D5F0E9521E3EA9589645E86051C82226")

# RFC 2433 appendix B.2.
V1_PASSWORD = "MyPw"
V1_CHALLENGE = bytes.fromhex("102DB5DF085D3041")
V1_PASSWORD_HASH = bytes.fromhex("FC156AF7EDCD6C0EDDE3337D427F4EAC")
V1_NT_RESPONSE = bytes.fromhex("4E9D3C8F9CFD385D5BF4D3246791956CA4C351AB409A3D61")
V1_LM_HASH = bytes.fromhex("75BA30198E6D1975AAD3B435B51404EE")

SECRET = b"testing123"
REQUEST_AUTHENTICATOR = bytes.fromhex("000102030405060708090a0b0c0d0e0f")


def mschap2_response_attribute(ident: int = 7, nt_response: bytes = NT_RESPONSE) -> bytes:
    return bytes((ident, 0)) + PEER_CHALLENGE + b"\x00" * 8 + nt_response


def mschap1_response_attribute(ident: int = 3, flags: int = 1, nt_response: bytes = V1_NT_RESPONSE) -> bytes:
    return bytes((ident, flags)) + b"\x00" * 24 + nt_response


# --- RFC 2759 section 9.2 ------------------------------------------------------------------------


def test_rfc2759_nt_password_hash() -> None:
    """NtPasswordHash("clientPass") is the RFC's PasswordHash."""
    assert nt_password_hash(PASSWORD) == PASSWORD_HASH


def test_rfc2759_hash_nt_password_hash() -> None:
    """HashNtPasswordHash gives the RFC's PasswordHashHash."""
    assert hash_nt_password_hash(PASSWORD_HASH) == PASSWORD_HASH_HASH


def test_rfc2759_challenge_hash() -> None:
    """ChallengeHash(peer, authenticator, "User") is the RFC's 8-octet Challenge."""
    assert challenge_hash(PEER_CHALLENGE, AUTH_CHALLENGE, USER) == CHALLENGE


def test_rfc2759_challenge_hash_ignores_domain() -> None:
    """A DOMAIN\\ prefix on the user name is not hashed (RFC 2759 section 8.2)."""
    assert challenge_hash(PEER_CHALLENGE, AUTH_CHALLENGE, b"PROVEDOR\\User") == CHALLENGE


def test_rfc2759_challenge_response() -> None:
    """ChallengeResponse(Challenge, PasswordHash) is the RFC's NT-Response."""
    assert challenge_response(CHALLENGE, PASSWORD_HASH) == NT_RESPONSE


def test_rfc2759_generate_nt_response() -> None:
    """GenerateNTResponse end to end from the cleartext password."""
    assert generate_nt_response(AUTH_CHALLENGE, PEER_CHALLENGE, USER, PASSWORD) == NT_RESPONSE


def test_rfc2759_authenticator_response() -> None:
    """GenerateAuthenticatorResponse is the RFC's "S=407A...DA56"."""
    response = generate_authenticator_response(PASSWORD, NT_RESPONSE, PEER_CHALLENGE, AUTH_CHALLENGE, USER)
    assert response == AUTHENTICATOR_RESPONSE


def test_rfc2759_authenticator_response_from_stored_nt_hash() -> None:
    """The same response comes from a stored NT hash instead of the cleartext."""
    response = generate_authenticator_response(
        PASSWORD_HASH, NT_RESPONSE, PEER_CHALLENGE, AUTH_CHALLENGE, USER
    )
    assert response == AUTHENTICATOR_RESPONSE


# --- RFC 3079 section 3.5 ------------------------------------------------------------------------


def test_rfc3079_master_key() -> None:
    """GetMasterKey(PasswordHashHash, NT-Response) is the RFC's MasterKey."""
    assert get_master_key(PASSWORD_HASH_HASH, NT_RESPONSE) == MASTER_KEY


def test_rfc3079_send_start_key_128() -> None:
    """GetAsymmetricStartKey(MasterKey, 16, IsSend, IsServer) is SendStartKey128."""
    assert get_asymmetric_start_key(MASTER_KEY, 16, is_send=True, is_server=True) == SEND_START_KEY_128


def test_rfc3079_send_session_key_128() -> None:
    """GetNewKeyFromSHA(SendStartKey128, SendStartKey128, 16) is SendSessionKey128."""
    assert get_new_key_from_sha(SEND_START_KEY_128, SEND_START_KEY_128, 16) == SEND_SESSION_KEY_128


def test_rfc3079_send_start_key_64() -> None:
    """The 8-octet start key for 40/56-bit MPPE is the first half of the 128-bit one."""
    assert get_asymmetric_start_key(MASTER_KEY, 8, is_send=True, is_server=True) == SEND_START_KEY_64


def test_rfc3079_session_key_40() -> None:
    """SendSessionKey40: GetNewKeyFromSHA then the 0xD1269E prefix."""
    key = get_new_key_from_sha(SEND_START_KEY_64, SEND_START_KEY_64, 8)
    assert reduce_session_key(key, 40) == SEND_SESSION_KEY_40


def test_rfc3079_session_key_56() -> None:
    """SendSessionKey56: GetNewKeyFromSHA then the 0xD1 prefix."""
    key = get_new_key_from_sha(SEND_START_KEY_64, SEND_START_KEY_64, 8)
    assert reduce_session_key(key, 56) == SEND_SESSION_KEY_56


def test_rfc3079_server_send_is_client_receive() -> None:
    """The server's send key and the client's receive key are the same derivation."""
    server_send = get_asymmetric_start_key(MASTER_KEY, 16, is_send=True, is_server=True)
    client_recv = get_asymmetric_start_key(MASTER_KEY, 16, is_send=False, is_server=False)
    assert server_send == client_recv


def test_mschap2_mppe_keys_server_direction() -> None:
    """MS-MPPE-Send-Key is the RFC's SendStartKey128 (Magic3), Recv-Key the Magic2 key."""
    assert mschap2_mppe_keys(PASSWORD, NT_RESPONSE) == (SEND_START_KEY_128, RECV_START_KEY_128)


# --- MS-CHAPv2 attribute handling ----------------------------------------------------------------


def test_mschap2_authenticate_accepts_rfc_exchange() -> None:
    """The RFC 2759 exchange as RADIUS attributes verifies and yields Success + MPPE keys."""
    accept = mschap2_authenticate(mschap2_response_attribute(ident=7), AUTH_CHALLENGE, USER, PASSWORD)
    assert accept is not None
    assert accept.ident == 7
    assert accept.success == b"\x07" + AUTHENTICATOR_RESPONSE
    assert (accept.send_key, accept.recv_key) == (SEND_START_KEY_128, RECV_START_KEY_128)


def test_mschap2_authenticate_with_stored_nt_hash() -> None:
    """A provider storing only the NT hash authenticates the same exchange."""
    accept = mschap2_authenticate(mschap2_response_attribute(), AUTH_CHALLENGE, USER, PASSWORD_HASH)
    assert accept is not None and accept.success[1:] == AUTHENTICATOR_RESPONSE


def test_mschap2_authenticate_with_precomputed_nt_keys() -> None:
    """The key material the server caches per subscriber gives the RFC answers, login after login."""
    keys = nt_keys(PASSWORD)
    assert keys.nt_hash == PASSWORD_HASH and keys.hash_hash == hash_nt_password_hash(PASSWORD_HASH)
    for ident in (7, 8):  # the DES ciphers are reused: ECB keeps no state between logins
        accept = mschap2_authenticate(mschap2_response_attribute(ident=ident), AUTH_CHALLENGE, USER, keys)
        assert accept is not None and accept.success == bytes((ident,)) + AUTHENTICATOR_RESPONSE
        assert (accept.send_key, accept.recv_key) == (SEND_START_KEY_128, RECV_START_KEY_128)
    assert mschap2_authenticate(mschap2_response_attribute(), AUTH_CHALLENGE, USER, nt_keys("clientpass")) is None


def test_libcrypto_md4_and_des_agree_with_pycryptodome() -> None:
    """The ctypes path (Debian's libcrypto) gives pycryptodome's answers, on many inputs."""
    from aaa.radius import legacy_crypto

    found = legacy_crypto._libcrypto()
    if found is None:
        pytest.skip("no libcrypto with MD4 and DES here; pycryptodome is in use")
    assert legacy_crypto.BACKEND == "libcrypto"
    md4, des_ecb, des_prepare, des_ecb_prepared = found
    rng = random.Random(2759)
    for size in (0, 1, 15, 16, 55, 56, 64, 200):
        data = rng.randbytes(size)
        assert md4(data) == legacy_crypto._pycryptodome_md4(data)
    for count in (1, 2, 3) * 70:
        keys, block = [rng.randbytes(8) for _ in range(count)], rng.randbytes(8)
        expected = legacy_crypto._pycryptodome_des_ecb(keys, block)
        assert des_ecb(keys, block) == expected
        prepared = des_prepare(keys)
        assert des_ecb_prepared(prepared, block) == expected
        assert des_ecb_prepared(prepared, block) == expected  # the prepared keys are not consumed
        assert legacy_crypto._pycryptodome_des_ecb_prepared(legacy_crypto._pycryptodome_des_prepare(keys), block) == expected


def test_the_rfc_answers_hold_with_the_pycryptodome_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where libcrypto lacks MD4 or DES (a FIPS build, another platform): the same RFC 2759 answers."""
    from aaa.radius import legacy_crypto

    monkeypatch.setattr(legacy_crypto, "md4", legacy_crypto._pycryptodome_md4)
    monkeypatch.setattr(legacy_crypto, "des_ecb", legacy_crypto._pycryptodome_des_ecb)
    monkeypatch.setattr(legacy_crypto, "des_prepare", legacy_crypto._pycryptodome_des_prepare)
    monkeypatch.setattr(legacy_crypto, "des_ecb_prepared", legacy_crypto._pycryptodome_des_ecb_prepared)
    assert nt_password_hash(PASSWORD) == PASSWORD_HASH
    accept = mschap2_authenticate(mschap2_response_attribute(), AUTH_CHALLENGE, USER, nt_keys(PASSWORD))
    assert accept is not None and accept.success[1:] == AUTHENTICATOR_RESPONSE


def test_mschap2_authenticate_rejects_wrong_password() -> None:
    """A wrong password gives None, not an exception."""
    assert mschap2_authenticate(mschap2_response_attribute(), AUTH_CHALLENGE, USER, "clientpass") is None


def test_mschap2_authenticate_rejects_other_user_name() -> None:
    """The user name enters the challenge hash: another name fails."""
    assert mschap2_authenticate(mschap2_response_attribute(), AUTH_CHALLENGE, b"Usr", PASSWORD) is None


def test_mschap2_authenticate_rejects_bad_response_length() -> None:
    """MS-CHAP2-Response is exactly 50 octets."""
    with pytest.raises(RadiusCryptoError):
        mschap2_authenticate(mschap2_response_attribute()[:49], AUTH_CHALLENGE, USER, PASSWORD)


def test_mschap2_authenticate_rejects_v1_sized_challenge() -> None:
    """MS-CHAPv2 needs the 16-octet MS-CHAP-Challenge."""
    with pytest.raises(RadiusCryptoError):
        mschap2_authenticate(mschap2_response_attribute(), AUTH_CHALLENGE[:8], USER, PASSWORD)


def test_nt_hash_of_rejects_wrong_stored_hash_length() -> None:
    """Stored NT hash material must be 16 octets."""
    with pytest.raises(RadiusCryptoError):
        nt_hash_of(PASSWORD_HASH[:15])


def test_mschap2_error_format() -> None:
    """MS-CHAP-Error for v2: ident, then E=691 R=0 C=<32 hex> V=3 M=<message>."""
    value = mschap2_error(7, MsChapError.AUTHENTICATION_FAILURE, challenge=bytes(range(16)), message="Senha")
    assert value == b"\x07E=691 R=0 C=000102030405060708090A0B0C0D0E0F V=3 M=Senha"


def test_mschap2_error_draws_a_fresh_challenge() -> None:
    """Without a challenge the injected random source supplies the 16 octets."""
    value = mschap2_error(1, MsChapError.ACCOUNT_DISABLED, random=lambda n: b"\xab" * n)
    assert value == b"\x01E=647 R=0 C=" + b"AB" * 16 + b" V=3 M=Account disabled"


def test_mschap_error_codes() -> None:
    """The RFC 2759 section 6 failure codes."""
    assert [int(code) for code in MsChapError] == [646, 647, 648, 649, 691, 709]


# --- MS-MPPE-Send-Key / Recv-Key encryption ------------------------------------------------------


def test_mppe_key_round_trip() -> None:
    """An encrypted MPPE key decrypts to itself and is salt + 32 octets."""
    value = encrypt_mppe_key(SEND_START_KEY_128, SECRET, REQUEST_AUTHENTICATOR, b"\x80\x01")
    assert len(value) == 34
    assert decrypt_mppe_key(value, SECRET, REQUEST_AUTHENTICATOR) == SEND_START_KEY_128


def test_mppe_key_attributes_use_distinct_salts() -> None:
    """Send and Recv keys in one reply get different salts even if the random source repeats."""
    values = itertools.cycle([b"\x05\x06", b"\x05\x06", b"\x05\x07"])
    send, recv = mppe_key_attributes(
        SEND_START_KEY_128, RECV_START_KEY_128, SECRET, REQUEST_AUTHENTICATOR, lambda n: next(values)
    )
    assert (send[:2], recv[:2]) == (b"\x85\x06", b"\x85\x07")
    assert decrypt_mppe_key(send, SECRET, REQUEST_AUTHENTICATOR) == SEND_START_KEY_128
    assert decrypt_mppe_key(recv, SECRET, REQUEST_AUTHENTICATOR) == RECV_START_KEY_128


def test_mppe_key_attributes_default_salts_differ_and_decrypt() -> None:
    """Without a random source the salts come from the counter: high bit set, different, decryptable."""
    for _ in range(3):
        send, recv = mppe_key_attributes(SEND_START_KEY_128, RECV_START_KEY_128, SECRET, REQUEST_AUTHENTICATOR)
        assert send[0] & 0x80 and recv[0] & 0x80 and send[:2] != recv[:2]
        assert decrypt_mppe_key(send, SECRET, REQUEST_AUTHENTICATOR) == SEND_START_KEY_128
        assert decrypt_mppe_key(recv, SECRET, REQUEST_AUTHENTICATOR) == RECV_START_KEY_128


# --- MS-CHAPv1 (RFC 2433) ------------------------------------------------------------------------


def test_rfc2433_nt_password_hash() -> None:
    """NtPasswordHash("MyPw") from RFC 2433 appendix B.2."""
    assert nt_password_hash(V1_PASSWORD) == V1_PASSWORD_HASH


def test_rfc2433_nt_challenge_response() -> None:
    """NtChallengeResponse from RFC 2433 appendix B.2."""
    assert challenge_response(V1_CHALLENGE, V1_PASSWORD_HASH) == V1_NT_RESPONSE


def test_lm_password_hash_my_pw() -> None:
    """LmPasswordHash("MyPw"): upper-cased, two DES halves of KGS!@#$%."""
    assert lm_password_hash(V1_PASSWORD) == V1_LM_HASH


def test_rfc3079_lm_password_hash() -> None:
    """LmPasswordHash("clientPass") from RFC 3079 section 2.5."""
    assert lm_password_hash(PASSWORD) == bytes.fromhex("76A152936096D7830E2390227404AFD2")


def test_lm_password_hash_absent_for_long_password() -> None:
    """LAN Manager cannot hash more than 14 characters."""
    assert lm_password_hash("a" * 15) is None


def test_mschap1_authenticate_accepts_rfc_example() -> None:
    """The RFC 2433 example as an MS-CHAP-Response attribute verifies."""
    accept = mschap1_authenticate(mschap1_response_attribute(ident=3), V1_CHALLENGE, V1_PASSWORD)
    assert accept is not None and accept.ident == 3


def test_mschap1_authenticate_with_stored_nt_hash() -> None:
    """The stored NT hash verifies the same response."""
    assert mschap1_authenticate(mschap1_response_attribute(), V1_CHALLENGE, V1_PASSWORD_HASH) is not None


def test_mschap1_authenticate_rejects_wrong_password() -> None:
    """A wrong password gives None."""
    assert mschap1_authenticate(mschap1_response_attribute(), V1_CHALLENGE, "mypw") is None


def test_mschap1_authenticate_refuses_lm_only_response() -> None:
    """Flags 0 (LAN Manager response only) is refused even with a valid NT-Response."""
    assert mschap1_authenticate(mschap1_response_attribute(flags=0), V1_CHALLENGE, V1_PASSWORD) is None


def test_mschap1_authenticate_rejects_v2_sized_challenge() -> None:
    """MS-CHAPv1 needs the 8-octet MS-CHAP-Challenge."""
    with pytest.raises(RadiusCryptoError):
        mschap1_authenticate(mschap1_response_attribute(), AUTH_CHALLENGE, V1_PASSWORD)


def test_mschap1_mppe_keys_from_cleartext() -> None:
    """MS-CHAP-MPPE-Keys: first 8 octets of the LM hash, then the NT hash's hash."""
    assert mschap1_mppe_keys(V1_PASSWORD) == V1_LM_HASH[:8] + hash_nt_password_hash(V1_PASSWORD_HASH)


def test_mschap1_mppe_keys_from_nt_hash_has_zero_lm_key() -> None:
    """Without the cleartext there is no LM hash: the LM-Key is zeros."""
    assert mschap1_mppe_keys(V1_PASSWORD_HASH) == b"\x00" * 8 + hash_nt_password_hash(V1_PASSWORD_HASH)


def test_ms_chap_mppe_keys_hidden_like_user_password() -> None:
    """MS-CHAP-MPPE-Keys is the 24 octets zero-padded to 32 and hidden as in RFC 2865 5.2."""
    keys = mschap1_mppe_keys(V1_PASSWORD)
    value = encrypt_ms_chap_mppe_keys(keys, SECRET, REQUEST_AUTHENTICATOR)
    assert value == pap_hide(keys + b"\x00" * 8, SECRET, REQUEST_AUTHENTICATOR)
    assert decrypt_ms_chap_mppe_keys(value, SECRET, REQUEST_AUTHENTICATOR) == keys


def test_mschap1_error_format() -> None:
    """MS-CHAP-Error for v1: ident, then E=<code> R=<retry>."""
    assert mschap1_error(3, MsChapError.PASSWORD_EXPIRED) == b"\x03E=648 R=0"

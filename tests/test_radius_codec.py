"""The RADIUS wire codec: RFC 2865 examples, signatures, round trips per type, VSAs."""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

import pytest

from aaa.radius.codec import (
    Code,
    EncodeError,
    MalformedPacket,
    Packet,
    decode,
    decode_reply,
    default_dictionary,
    encode_reply,
    encode_request,
    verify_request,
)

SECRET = "xyzzy5461"

# RFC 2865 §7.1, "User Telnet to Specified Host"
RFC2865_7_1_REQUEST = bytes.fromhex(
    "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb 98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d"
    "93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8 01 10 05 06 00 00 00 03"
)
RFC2865_7_1_ACCEPT = bytes.fromhex(
    "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf 9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00"
    "0e 06 c0 a8 01 03"
)
# RFC 2865 §7.2, "Framed User Authenticating with CHAP" (the Accept's hex dump has Framed-Routing
# where the text says Service-Type, errata 1469; the bytes are what the authenticator covers)
RFC2865_7_2_REQUEST = bytes.fromhex(
    "01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e 0d 33 67 a2 01 08 66 6c 6f 70 73 79 03 13 16 e9"
    "75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75 04 06 c0 a8 01 10 05 06 00 00 00 14 06 06 00 00 00"
    "02 07 06 00 00 00 01"
)
RFC2865_7_2_ACCEPT = bytes.fromhex(
    "02 01 00 38 15 ef bc 7d ab 26 cf a3 dc 34 d9 c0 3c 86 01 a4 06 06 00 00 00 02 07 06 00 00 00 01"
    "08 06 ff ff ff fe 0a 06 00 00 00 02 0d 06 00 00 00 01 0c 06 00 00 05 dc"
)


def pap_request(*, message_authenticator: bool = True, secret: str = SECRET) -> bytes:
    """A MikroTik-shaped PPPoE PAP Access-Request (the password value is opaque here)."""
    return encode_request(
        Code.ACCESS_REQUEST,
        7,
        [
            ("Service-Type", "Framed-User"),
            ("Framed-Protocol", "PPP"),
            ("NAS-Port", 15728646),
            ("NAS-Port-Type", "Ethernet"),
            ("User-Name", "joao.silva"),
            ("Calling-Station-Id", "AA:BB:CC:DD:EE:FF"),
            ("Called-Station-Id", "pppoe-isp"),
            ("NAS-Port-Id", "ether2"),
            ("User-Password", os.urandom(16)),
            ("Acct-Session-Id", "81a0000c"),
            ("NAS-Identifier", "bras-01"),
            ("NAS-IP-Address", "10.0.0.1"),
        ],
        secret,
        message_authenticator=message_authenticator,
    )


# -- RFC 2865 §7 examples --------------------------------------------------------------------------


def test_rfc2865_7_1_request_decodes() -> None:
    packet = decode(RFC2865_7_1_REQUEST)
    assert (packet.code, packet.identifier) == (Code.ACCESS_REQUEST, 0)
    assert packet.authenticator == bytes.fromhex("0f403f9473978057bd83d5cb98f4227a")
    assert packet.get("User-Name") == "nemo"
    assert packet.raw("User-Password") == bytes.fromhex("0dbe708d93d413ce3196e43f782a0aee")
    assert packet.get("NAS-IP-Address") == "192.168.1.16"
    assert packet.get("NAS-Port") == 3


def test_rfc2865_7_1_request_has_no_message_authenticator() -> None:
    assert verify_request(decode(RFC2865_7_1_REQUEST), SECRET) is False


def test_rfc2865_7_1_accept_is_reproduced_byte_for_byte() -> None:
    request = decode(RFC2865_7_1_REQUEST)
    reply = encode_reply(
        request,
        Code.ACCESS_ACCEPT,
        [("Service-Type", "Login-User"), ("Login-Service", "Telnet"), ("Login-IP-Host", "192.168.1.3")],
        SECRET,
        message_authenticator=False,
    )
    assert reply == RFC2865_7_1_ACCEPT


def test_rfc2865_7_1_accept_response_authenticator_verifies() -> None:
    reply = decode_reply(RFC2865_7_1_ACCEPT, decode(RFC2865_7_1_REQUEST).authenticator, SECRET)
    assert reply.code is Code.ACCESS_ACCEPT
    assert reply.items() == [("Service-Type", 1), ("Login-Service", 0), ("Login-IP-Host", "192.168.1.3")]


def test_rfc2865_7_2_chap_request_decodes() -> None:
    packet = decode(RFC2865_7_2_REQUEST)
    assert packet.get("User-Name") == "flopsy"
    chap = packet.raw("CHAP-Password")
    assert chap is not None and len(chap) == 17 and chap[0] == 0x16
    assert packet.get("NAS-Port") == 20
    assert packet.value_name("Service-Type") == "Framed-User"
    assert packet.value_name("Framed-Protocol") == "PPP"


def test_rfc2865_7_2_accept_response_authenticator_verifies() -> None:
    reply = decode_reply(RFC2865_7_2_ACCEPT, decode(RFC2865_7_2_REQUEST).authenticator, SECRET)
    assert reply.get("Framed-IP-Address") == "255.255.255.254"
    assert reply.get("Framed-MTU") == 1500


def test_rfc2865_7_1_accept_with_wrong_secret_is_rejected() -> None:
    with pytest.raises(MalformedPacket) as info:
        decode_reply(RFC2865_7_1_ACCEPT, decode(RFC2865_7_1_REQUEST).authenticator, "wrong")
    assert info.value.reason == "bad-authenticator"


# -- framing ---------------------------------------------------------------------------------------


def test_trailing_octets_beyond_length_are_ignored() -> None:
    packet = decode(RFC2865_7_1_REQUEST + b"\x00garbage")
    assert packet.data == RFC2865_7_1_REQUEST
    assert packet.get("NAS-Port") == 3


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "short"),
        (RFC2865_7_1_REQUEST[:19], "short"),
        (RFC2865_7_1_REQUEST[:-1], "bad-length"),
        (b"\x01\x00\x00\x13" + bytes(16), "bad-length"),
        (b"\x01\x00\x10\x01" + bytes(4097 - 4), "bad-length"),
        (b"\x07" + RFC2865_7_1_REQUEST[1:], "unknown-code"),
        (b"\x01\x00\x00\x16" + bytes(16) + b"\x01\x01", "bad-attribute-length"),
        (b"\x01\x00\x00\x16" + bytes(16) + b"\x01\x05", "attribute-overflow"),
        (b"\x01\x00\x00\x15" + bytes(16) + b"\x01", "attribute-overflow"),
        (
            b"\x01\x00\x00\x3a" + bytes(16) + (b"\x50\x12" + bytes(16)) * 2 + b"\x01\x02",
            "duplicate-message-authenticator",
        ),
    ],
)
def test_malformed_datagrams_are_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedPacket) as info:
        decode(data)
    assert info.value.reason == reason


def test_bad_integer_length_is_malformed_when_read() -> None:
    data = b"\x01\x00\x00\x17" + bytes(16) + b"\x05\x03\x01"
    packet = decode(data)
    with pytest.raises(MalformedPacket) as info:
        packet.get("NAS-Port")
    assert info.value.reason == "bad-attribute"


def test_unknown_attributes_are_kept_and_named() -> None:
    data = encode_request(Code.ACCESS_REQUEST, 1, [("User-Name", "a")], SECRET)
    data = data[:2] + struct.pack("!H", len(data) + 4) + data[4:] + b"\xfe\x04\x01\x02"
    packet = decode(data)
    assert packet.attributes[-1] == ((0, 254), b"\x01\x02")
    assert ("Attr-254", b"\x01\x02") in packet.items()


# -- Message-Authenticator and request authenticators ----------------------------------------------


def test_access_request_with_good_message_authenticator_verifies() -> None:
    assert verify_request(decode(pap_request()), SECRET) is True


def test_access_request_without_message_authenticator_reports_it_absent() -> None:
    packet = decode(pap_request(message_authenticator=False))
    assert not packet.has_message_authenticator
    assert verify_request(packet, SECRET) is False


def test_access_request_with_wrong_secret_fails_message_authenticator() -> None:
    with pytest.raises(MalformedPacket) as info:
        verify_request(decode(pap_request(secret="other")), SECRET)
    assert info.value.reason == "bad-message-authenticator"


def test_access_request_with_a_flipped_attribute_bit_fails_message_authenticator() -> None:
    data = bytearray(pap_request())
    data[-1] ^= 1
    with pytest.raises(MalformedPacket, match="bad-message-authenticator"):
        verify_request(decode(bytes(data)), SECRET)


def test_message_authenticator_matches_an_independent_hmac() -> None:
    data = pap_request()
    packet = decode(data)
    offset = packet.data.index(b"\x50\x12", 20)
    assert offset == 20, "Message-Authenticator is the first attribute"
    zeroed = data[:22] + bytes(16) + data[38:]
    assert data[22:38] == hmac.new(SECRET.encode(), zeroed, hashlib.md5).digest()


def test_status_server_without_message_authenticator_is_rejected() -> None:
    data = encode_request(Code.STATUS_SERVER, 1, [("NAS-Identifier", "x")], SECRET)
    # strip the (mandatory) Message-Authenticator
    stripped = data[:2] + struct.pack("!H", len(data) - 18) + data[4:20] + data[38:]
    with pytest.raises(MalformedPacket, match="missing-message-authenticator"):
        verify_request(decode(stripped), SECRET)
    assert verify_request(decode(data), SECRET) is True


@pytest.mark.parametrize("code", [Code.ACCOUNTING_REQUEST, Code.COA_REQUEST, Code.DISCONNECT_REQUEST])
@pytest.mark.parametrize("with_ma", [True, False])
def test_computed_request_authenticator_verifies(code: Code, with_ma: bool) -> None:
    data = encode_request(
        code,
        9,
        [("Acct-Session-Id", "81a0000c"), ("User-Name", "joao")],
        SECRET,
        message_authenticator=with_ma,
    )
    assert data[4:20] == hashlib.md5(data[:4] + bytes(16) + data[20:] + SECRET.encode()).digest()
    assert verify_request(decode(data), SECRET) is with_ma


@pytest.mark.parametrize("code", [Code.ACCOUNTING_REQUEST, Code.COA_REQUEST, Code.DISCONNECT_REQUEST])
def test_request_authenticator_with_wrong_secret_fails(code: Code) -> None:
    data = encode_request(code, 9, [("User-Name", "joao")], "another")
    with pytest.raises(MalformedPacket) as info:
        verify_request(decode(data), SECRET)
    assert info.value.reason == "bad-authenticator"


def test_accounting_request_with_tampered_attribute_fails() -> None:
    data = bytearray(encode_request(Code.ACCOUNTING_REQUEST, 1, [("Acct-Session-Time", 60)], SECRET))
    data[-1] ^= 0x10
    with pytest.raises(MalformedPacket, match="bad-authenticator"):
        verify_request(decode(bytes(data)), SECRET)


def test_replies_are_not_requests() -> None:
    with pytest.raises(MalformedPacket, match="not-a-request"):
        verify_request(decode(RFC2865_7_1_ACCEPT), SECRET)


# -- replies -----------------------------------------------------------------------------------------


def test_reply_carries_message_authenticator_first_and_verifies() -> None:
    request = decode(pap_request())
    reply = encode_reply(request, Code.ACCESS_ACCEPT, [("Mikrotik-Rate-Limit", "10M/50M")], SECRET)
    assert reply[20:22] == b"\x50\x12"
    packet = decode_reply(reply, request.authenticator, SECRET)
    assert packet.has_message_authenticator
    assert packet.get("Mikrotik-Rate-Limit") == "10M/50M"


def test_reply_with_corrupted_message_authenticator_is_rejected() -> None:
    request = decode(pap_request())
    reply = bytearray(encode_reply(request, Code.ACCESS_REJECT, [("Reply-Message", "no")], SECRET))
    reply[25] ^= 1
    # recompute the response authenticator so that only the Message-Authenticator is wrong
    reply[4:20] = hashlib.md5(
        bytes(reply[:4]) + request.authenticator + bytes(reply[20:]) + SECRET.encode()
    ).digest()
    with pytest.raises(MalformedPacket, match="bad-message-authenticator"):
        decode_reply(bytes(reply), request.authenticator, SECRET)


def test_reply_copies_proxy_state_in_order() -> None:
    data = encode_request(
        Code.ACCESS_REQUEST, 3, [("Proxy-State", b"one"), ("User-Name", "u"), ("Proxy-State", b"two")], SECRET
    )
    request = decode(data)
    reply = decode_reply(encode_reply(request, Code.ACCESS_REJECT, [], SECRET), request.authenticator, SECRET)
    assert reply.raw_all("Proxy-State") == [b"one", b"two"]


def test_caller_message_authenticator_is_replaced_by_the_computed_one() -> None:
    request = decode(pap_request())
    reply = encode_reply(request, Code.ACCESS_ACCEPT, [("Message-Authenticator", b"\x00" * 16)], SECRET)
    assert decode_reply(reply, request.authenticator, SECRET).raw_all("Message-Authenticator") != [bytes(16)]


def test_coa_ack_reply_verifies_against_the_coa_request() -> None:
    request_data = encode_request(
        Code.COA_REQUEST, 4, [("User-Name", "joao"), ("Mikrotik-Rate-Limit", "5M/5M")], SECRET
    )
    request = decode(request_data)
    ack = encode_reply(request, Code.COA_ACK, [], SECRET)
    assert decode_reply(ack, request_data[4:20], SECRET).code is Code.COA_ACK
    nak = encode_reply(request, Code.COA_NAK, [("Error-Cause", "Session-Context-Not-Found")], SECRET)
    packet = decode_reply(nak, request_data[4:20], SECRET)
    assert (packet.get("Error-Cause"), packet.value_name("Error-Cause")) == (503, "Session-Context-Not-Found")


def test_given_access_request_authenticator_is_used() -> None:
    authenticator = bytes(range(16))
    data = encode_request(Code.ACCESS_REQUEST, 1, [("User-Name", "u")], SECRET, authenticator=authenticator)
    assert data[4:20] == authenticator


def test_accounting_authenticator_cannot_be_given() -> None:
    with pytest.raises(EncodeError):
        encode_request(Code.ACCOUNTING_REQUEST, 1, [], SECRET, authenticator=bytes(16))


# -- values -------------------------------------------------------------------------------------------

ROUND_TRIPS = [
    ("User-Name", "joão@provedor.com.br", "joão@provedor.com.br"),
    ("NAS-Port", 4294967295, 4294967295),
    ("Service-Type", "Framed-User", 2),
    ("Framed-IP-Address", "100.64.1.2", "100.64.1.2"),
    ("NAS-IPv6-Address", "2001:db8::1", "2001:db8::1"),
    ("Framed-IPv6-Prefix", "2001:db8:1:2::/64", "2001:db8:1:2::/64"),
    ("Delegated-IPv6-Prefix", "2804:abcd:1200::/56", "2804:abcd:1200::/56"),
    ("Framed-Interface-Id", "0200:5eff:fe00:5301", "0200:5eff:fe00:5301"),
    ("Event-Timestamp", 1718000000, 1718000000),
    ("Class", b"\x00\x01plan=gold", b"\x00\x01plan=gold"),
    ("Class", "plan=gold", b"plan=gold"),
    ("State", b"0x41", b"0x41"),
    ("Mikrotik-Rate-Limit", "10M/50M 0/0 0/0 0/0 8 5M/25M", "10M/50M 0/0 0/0 0/0 8 5M/25M"),
    ("Mikrotik-Host-IP", "192.168.88.254", "192.168.88.254"),
    ("Mikrotik-Total-Limit-Gigawords", 3, 3),
    ("MS-MPPE-Encryption-Policy", "Encryption-Allowed", 1),
    (
        "MS-CHAP2-Success",
        b"\x01S=0123456789ABCDEF0123456789ABCDEF01234567",
        b"\x01S=0123456789ABCDEF0123456789ABCDEF01234567",
    ),
    ("Tunnel-Type", (1, "L2TP"), 3),
    ("Tunnel-Private-Group-Id", "100", "100"),
    ("Tunnel-Private-Group-Id", (2, "100"), "100"),
]


@pytest.mark.parametrize(("name", "value", "decoded"), ROUND_TRIPS)
def test_value_round_trip(name: str, value: object, decoded: object) -> None:
    data = encode_request(Code.ACCOUNTING_REQUEST, 1, [(name, value)], SECRET)
    packet = decode(data)
    assert packet.get(name) == decoded
    assert packet.get_all(name) == [decoded]
    assert name in packet


def test_vendor_attributes_are_wrapped_in_vendor_specific() -> None:
    wire = default_dictionary()["Mikrotik-Rate-Limit"].encode("1M/2M")
    assert wire == b"\x1a\x0d" + struct.pack("!I", 14988) + b"\x08\x07" + b"1M/2M"


def test_several_vendor_attributes_in_one_vendor_specific_are_split() -> None:
    vsa_body = struct.pack("!I", 14988) + b"\x08\x07" + b"1M/2M" + b"\x03\x06gold"
    data = (
        b"\x02\x00"
        + struct.pack("!H", 20 + 2 + len(vsa_body))
        + bytes(16)
        + b"\x1a"
        + bytes([2 + len(vsa_body)])
        + vsa_body
    )
    packet = decode(data)
    assert packet.get("Mikrotik-Rate-Limit") == "1M/2M"
    assert packet.get("Mikrotik-Group") == "gold"


def test_malformed_vendor_specific_is_kept_whole() -> None:
    vsa = b"\x1a\x0a" + struct.pack("!I", 14988) + b"\x08\x09\x41\x42"
    data = b"\x02\x00" + struct.pack("!H", 20 + len(vsa)) + bytes(16) + vsa
    packet = decode(data)
    assert packet.attributes == [((0, 26), vsa[2:])]
    assert packet.get("Mikrotik-Rate-Limit") is None


def test_repeated_attributes_keep_their_order() -> None:
    data = encode_request(
        Code.ACCOUNTING_REQUEST, 1, [("Framed-Route", "a"), ("User-Name", "u"), ("Framed-Route", "b")], SECRET
    )
    packet = decode(data)
    assert packet.get("Framed-Route") == "a"
    assert packet.get_all("Framed-Route") == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NAS-Port", -1),
        ("NAS-Port", 2**32),
        ("NAS-Port", "not-a-value-name"),
        ("NAS-Port", True),
        ("Framed-IP-Address", "2001:db8::1"),
        ("Framed-IPv6-Prefix", "garbage"),
        ("Reply-Message", "x" * 254),
        ("Mikrotik-Rate-Limit", "x" * 248),
        ("Tunnel-Type", (40, "L2TP")),
    ],
)
def test_unencodable_values_raise_encode_error(name: str, value: object) -> None:
    with pytest.raises(EncodeError):
        encode_request(Code.ACCOUNTING_REQUEST, 1, [(name, value)], SECRET)


def test_longest_values_fit() -> None:
    packet = decode(
        encode_request(
            Code.ACCOUNTING_REQUEST, 1, [("Reply-Message", "x" * 253), ("Mikrotik-Group", "g" * 247)], SECRET
        )
    )
    assert len(packet.get("Reply-Message")) == 253 and len(packet.get("Mikrotik-Group")) == 247


def test_hidden_attributes_only_take_bytes() -> None:
    with pytest.raises(EncodeError, match="hidden"):
        encode_request(Code.ACCESS_REQUEST, 1, [("User-Password", "cleartext")], SECRET)
    with pytest.raises(EncodeError, match="hidden"):
        encode_request(Code.ACCESS_REQUEST, 1, [("MS-MPPE-Send-Key", "x")], SECRET)


def test_hidden_attribute_decodes_to_its_octets_and_is_redacted() -> None:
    packet = decode(RFC2865_7_1_REQUEST)
    assert packet.get("User-Password") == bytes.fromhex("0dbe708d93d413ce3196e43f782a0aee")
    assert ("User-Password", "<hidden>") in packet.items()


def test_eap_message_is_split_over_several_attributes() -> None:
    eap = os.urandom(600)
    packet = decode(encode_request(Code.ACCESS_REQUEST, 1, [("EAP-Message", eap)], SECRET))
    parts = packet.raw_all("EAP-Message")
    assert [len(p) for p in parts] == [253, 253, 94] and b"".join(parts) == eap


def test_packet_over_4096_octets_is_refused() -> None:
    with pytest.raises(EncodeError):
        encode_request(Code.ACCOUNTING_REQUEST, 1, [("Reply-Message", "x" * 250)] * 17, SECRET)


def test_packet_repr_shows_no_values() -> None:
    packet: Packet = decode(RFC2865_7_1_REQUEST)
    assert "nemo" not in repr(packet) and "ACCESS_REQUEST" in repr(packet)

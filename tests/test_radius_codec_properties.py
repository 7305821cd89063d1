"""Property tests of the RADIUS codec: hostile input only ever raises MalformedPacket; octets survive."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import HealthCheck, example, given, settings

from aaa.radius.codec import (
    Code,
    MalformedPacket,
    decode,
    decode_reply,
    encode_reply,
    encode_request,
    verify_request,
)

SECRET = b"s3cret"
VALID = encode_request(
    Code.ACCESS_REQUEST,
    42,
    [
        ("User-Name", "maria"),
        ("User-Password", bytes(16)),
        ("NAS-IP-Address", "10.1.1.1"),
        ("Mikrotik-Realm", "isp"),
        ("MS-CHAP-Challenge", bytes(16)),
        ("Framed-IPv6-Prefix", "2001:db8::/64"),
    ],
    SECRET,
)
ACCOUNTING = encode_request(
    Code.ACCOUNTING_REQUEST, 43, [("Acct-Status-Type", "Start"), ("Acct-Session-Id", "x")], SECRET
)

OCTETS_ATTRIBUTES = [
    "Class",
    "State",
    "CHAP-Password",
    "MS-CHAP2-Success",
    "MS-CHAP-Challenge",
    "MS-CHAP2-Response",
]


def exercise(data: bytes) -> None:
    """Everything the server does with a datagram; only MalformedPacket may escape."""
    try:
        packet = decode(data)
        for _, value in packet.items(redact=False):
            assert value is not None
        for name in (
            "User-Name",
            "NAS-Port",
            "Framed-IP-Address",
            "Mikrotik-Rate-Limit",
            "Framed-IPv6-Prefix",
        ):
            try:
                packet.get(name)
            except MalformedPacket:
                pass
        try:
            verify_request(packet, SECRET)
        except MalformedPacket:
            pass
        encode_reply(packet, Code.ACCESS_REJECT, [("Reply-Message", "no")], SECRET)
    except MalformedPacket:
        pass


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
@example(b"")
@example(b"\x01\x00\x00\x14" + bytes(16))
def test_random_bytes_only_raise_malformed_packet(data: bytes) -> None:
    exercise(data)


@settings(max_examples=1500)
@given(st.sampled_from([VALID, ACCOUNTING]), st.data())
def test_mutated_valid_packets_only_raise_malformed_packet(base: bytes, data: st.DataObject) -> None:
    mutated = bytearray(base)
    for _ in range(data.draw(st.integers(1, 6))):
        kind = data.draw(st.sampled_from(["flip", "set", "truncate", "extend", "length"]))
        if kind == "flip" and mutated:
            i = data.draw(st.integers(0, len(mutated) - 1))
            mutated[i] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "set" and mutated:
            mutated[data.draw(st.integers(0, len(mutated) - 1))] = data.draw(st.integers(0, 255))
        elif kind == "truncate":
            del mutated[data.draw(st.integers(0, len(mutated))) :]
        elif kind == "extend":
            mutated += data.draw(st.binary(max_size=40))
        elif kind == "length" and len(mutated) >= 4:
            mutated[2:4] = data.draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
    exercise(bytes(mutated))


def test_the_packets_fuzzed_above_are_valid_and_signed() -> None:
    assert verify_request(decode(VALID), SECRET) is True
    assert verify_request(decode(ACCOUNTING), SECRET) is True


@settings(max_examples=300)
@given(st.sampled_from(OCTETS_ATTRIBUTES), st.binary(min_size=0, max_size=200))
def test_octets_starting_with_0x_survive_unchanged(name: str, tail: bytes) -> None:
    """pyrad issues 49/152: octets beginning with b"0x" were read as hex; never here."""
    value = b"0x" + tail
    request = decode(encode_request(Code.ACCESS_REQUEST, 1, [(name, value)], SECRET))
    assert request.raw(name) == value
    reply = encode_reply(request, Code.ACCESS_ACCEPT, [(name, value)], SECRET)
    assert decode_reply(reply, request.authenticator, SECRET).raw(name) == value


@settings(max_examples=300)
@given(st.binary(min_size=16, max_size=16).map(lambda tail: b"0x" + tail[2:]))
def test_message_authenticator_starting_with_0x_verifies(authenticator: bytes) -> None:
    """Whatever the HMAC bytes look like (even b"0x..."), they go on the wire untouched."""
    data = encode_request(Code.ACCESS_REQUEST, 1, [("User-Name", "u"), ("State", authenticator)], SECRET,
                          authenticator=authenticator)  # fmt: skip
    assert verify_request(decode(data), SECRET) is True

"""Property-based fuzzing of the server's packet path (not just the codec).

Random datagrams and mutations of valid ones are delivered straight to ``auth_datagram`` and
``acct_datagram`` (not through RadiusPort, which would hide an exception): nothing raises, each bad
datagram is counted as exactly one drop and gets no answer, and valid requests interleaved with the
garbage keep getting correct, signed replies.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from radius_harness import PPPOE, SECRET, Harness, accounting, pap

from aaa.cache import Cache
from aaa.context import build_context
from aaa.demo import load_demo
from aaa.radius import codec
from aaa.radius.codec import Code

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def cache(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cache]:
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copy(sqlite_template, root / "aaa.sqlite3")
    ctx = build_context(make_settings(root, f"sqlite:///{root / 'aaa.sqlite3'}"))
    load_demo(ctx)
    loaded = Cache(ctx.engine, ctx.vault)
    loaded.load()
    yield loaded
    ctx.close()


@pytest.fixture(scope="module")
def harness(cache: Cache) -> Harness:
    from aaa.plugins import make_plugin_manager

    return Harness(cache, make_plugin_manager())


def joao(password: str = "joao2024") -> bytes:
    return pap([("User-Name", "joao"), *PPPOE, ("Calling-Station-Id", "4C:5E:0C:11:22:33")], password)


def deliver(h: Harness, port: str, data: bytes) -> list[bytes]:
    return h.send_auth(data) if port == "auth" else h.send_acct(data)


def assert_dropped_once(h: Harness, port: str, data: bytes) -> None:
    before = h.drops()
    assert deliver(h, port, data) == []
    assert h.drops() == before + 1
    assert h.counters.dropped.get("internal-error", 0) == 0


def assert_answer_or_drop(h: Harness, port: str, data: bytes) -> None:
    """A mutated packet is either dropped (and counted) or, if still valid, answered correctly."""
    before = h.drops()
    replies = deliver(h, port, data)
    assert h.counters.dropped.get("internal-error", 0) == 0
    if not replies:
        assert h.drops() == before + 1
        return
    (reply,) = replies
    packet = codec.decode_reply(reply, data[4:20], SECRET)
    assert packet.code in (Code.ACCESS_ACCEPT, Code.ACCESS_REJECT, Code.ACCOUNTING_RESPONSE)


PORTS = st.sampled_from(["auth", "acct"])
# A RADIUS-looking header makes the fuzzer reach past the length check more often.
HEADERS = st.builds(
    lambda code, ident, length, rest: bytes((code, ident)) + length.to_bytes(2, "big") + rest,
    st.sampled_from([1, 2, 3, 4, 5, 11, 12, 40, 43, 255]),
    st.integers(0, 255),
    st.integers(0, 4200),
    st.binary(min_size=0, max_size=600),
)


@FUZZ
@given(port=PORTS, data=st.one_of(st.binary(max_size=4200), HEADERS))
def test_random_datagrams_never_raise_and_are_counted_as_drops(
    harness: Harness, port: str, data: bytes
) -> None:
    assert_dropped_once(harness, port, data)


def _valid(kind: str) -> bytes:
    if kind == "access":
        return joao()
    return accounting(
        "Interim-Update", "81a0f0f0", "joao", Acct_Input_Octets=10, Acct_Session_Time=next(_CLOCK)
    )


_CLOCK = itertools.count(1)


MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete", "truncate", "length"]),
        st.integers(0, 4095),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=4,
)


def mutate(data: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for kind, where, value in mutations:
        pos = where % max(1, len(buf))
        if kind == "flip" and buf:
            buf[pos] ^= value or 1
        elif kind == "insert":
            buf[pos:pos] = bytes((value,))
        elif kind == "delete" and buf:
            del buf[pos]
        elif kind == "truncate":
            del buf[pos:]
        elif kind == "length" and len(buf) >= 4:
            buf[2:4] = (len(buf) + value - 128).to_bytes(2, "big", signed=True)
    return bytes(buf)


@FUZZ
@given(kind=st.sampled_from(["access", "acct"]), mutations=MUTATIONS)
def test_mutated_valid_packets_never_raise(
    harness: Harness, kind: str, mutations: list[tuple[str, int, int]]
) -> None:
    data = mutate(_valid(kind), mutations)
    assert_answer_or_drop(harness, "auth" if kind == "access" else "acct", data)


def _attribute(kind: int, value: bytes) -> bytes:
    return bytes((kind, len(value) + 2)) + value


def _vsa(vendor: int, kind: int, value: bytes) -> bytes:
    return _attribute(26, vendor.to_bytes(4, "big") + _attribute(kind, value))


# Attributes the pipeline reads (names, passwords, CHAP, MS-CHAP, MikroTik, accounting) with random
# values, so that the fuzzer gets past the signature checks into the stages and the journal record.
ATTRIBUTES = st.lists(
    st.one_of(
        st.builds(_attribute, st.sampled_from([1, 2, 3, 4, 8, 25, 31, 40, 42, 43, 44, 46, 47, 48, 52, 53, 60, 87, 123]),
                  st.binary(max_size=40)),
        st.builds(_attribute, st.integers(1, 255), st.binary(max_size=20)),
        st.builds(_vsa, st.sampled_from([311, 14988]), st.sampled_from([1, 2, 8, 10, 11, 16, 17, 25, 26]),
                  st.binary(max_size=60)),
        st.just(_attribute(1, b"joao")),
        st.just(_attribute(40, (1).to_bytes(4, "big"))),
        st.just(_attribute(44, b"81a0f0f0")),
    ),
    max_size=12,
)  # fmt: skip


def signed_request(code: int, identifier: int, attrs: bytes) -> bytes:
    """A request with arbitrary attributes, signed as a NAS holding the secret would sign it."""
    if code == Code.ACCOUNTING_REQUEST:
        header = bytes((code, identifier)) + (20 + len(attrs)).to_bytes(2, "big")
        return header + hashlib.md5(header + bytes(16) + attrs + SECRET).digest() + attrs
    header = bytes((code, identifier)) + (20 + 18 + len(attrs)).to_bytes(2, "big")
    authenticator = os.urandom(16)
    ma = hmac.new(SECRET, header + authenticator + b"\x50\x12" + bytes(16) + attrs, "md5").digest()
    return header + authenticator + b"\x50\x12" + ma + attrs


@FUZZ
@given(kind=st.sampled_from(["access", "acct"]), identifier=st.integers(0, 255), attributes=ATTRIBUTES)
def test_fuzzed_attributes_behind_a_valid_signature_never_raise(
    harness: Harness, kind: str, identifier: int, attributes: list[bytes]
) -> None:
    """Garbage attributes correctly signed (a NAS with the secret could send them): answered or dropped."""
    code = Code.ACCESS_REQUEST if kind == "access" else Code.ACCOUNTING_REQUEST
    data = signed_request(code, identifier, b"".join(attributes))
    assert_answer_or_drop(harness, "auth" if kind == "access" else "acct", data)


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("garbage"), PORTS, st.binary(max_size=300)),
        st.tuples(st.just("accept"), st.just("auth"), st.just(b"")),
        st.tuples(st.just("reject"), st.just("auth"), st.just(b"")),
        st.tuples(st.just("acct"), st.just("acct"), st.just(b"")),
    ),
    min_size=1,
    max_size=20,
)


@FUZZ
@given(steps=STEPS)
def test_valid_requests_interleaved_with_garbage_keep_correct_replies(
    harness: Harness, steps: list[tuple[str, str, bytes]]
) -> None:
    harness.online.seed([])  # fuzzed accounting Starts for joao (other tests) would make him "already online"
    for kind, port, data in steps:
        if kind == "garbage":
            assert_dropped_once(harness, port, data)
            continue
        request = joao() if kind == "accept" else joao("errada") if kind == "reject" else _valid("acct")
        (reply,) = deliver(harness, port, request)
        packet = codec.decode_reply(reply, request[4:20], SECRET)
        if kind == "accept":
            assert packet.code == Code.ACCESS_ACCEPT and packet.get("Mikrotik-Rate-Limit") == "50M/100M"
        elif kind == "reject":
            assert packet.code == Code.ACCESS_REJECT and packet.get("Reply-Message") == "wrong password"
        else:
            assert packet.code == Code.ACCOUNTING_RESPONSE

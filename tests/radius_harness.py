"""Test helpers for the RADIUS server: the real RadiusServer, cache, stages and journal, in process.

The reactor is a ``MemoryReactorClock`` whose ``callFromThread`` runs at once, and the thread pool
runs work inline, so a test drives time with ``advance`` and never sleeps. The client side builds
RouterOS-shaped requests with the codec and the crypto helpers (PAP hiding, CHAP, MS-CHAPv1/v2).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from aaa.cache import Cache
from aaa.radius import codec, crypto, mschap
from aaa.radius.codec import Code, Packet
from aaa.radius.server import OnlineIndex, RadiusServer
from aaa.stages import StageRunner

SECRET = b"testing123"
NAS_ADDR = ("127.0.0.1", 40000)


class InlineReactor(MemoryReactorClock):
    """A MemoryReactorClock on which work handed back from a thread runs at once."""

    def callFromThread(self, f: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N802 (Twisted's name)
        f(*args, **kwargs)

    def getThreadPool(self) -> InlinePool:  # noqa: N802
        return InlinePool()


class InlinePool:
    """A thread pool that runs each call inline (what ``deferToThreadPool`` needs)."""

    def callInThreadWithCallback(self, on_result: Any, f: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N802
        try:
            result = f(*args, **kwargs)
        except BaseException:
            on_result(False, Failure())
        else:
            on_result(True, result)

    def adjustPoolsize(self, *_: Any) -> None:  # noqa: N802
        pass


@dataclass
class Transport:
    """Collects what the server writes."""

    sent: list[tuple[bytes, Any]] = field(default_factory=list)

    def write(self, data: bytes, addr: Any) -> None:
        self.sent.append((data, addr))


@dataclass
class ListJournal:
    """A journal that is durable at once (for the authentication tests)."""

    records: list[dict[str, Any]] = field(default_factory=list)

    def append(self, record: dict[str, Any]) -> Deferred[None]:
        self.records.append(record)
        return succeed(None)


class Harness:
    """One RadiusServer with its collaborators, and a NAS-side client to talk to it."""

    def __init__(self, cache: Cache, pm: Any, *, journal: Any = None, reactor: Any = None) -> None:
        self.reactor = reactor or InlineReactor()
        self.cache = cache
        self.journal = journal if journal is not None else ListJournal()
        self.online = OnlineIndex()
        self.auth_log: list[tuple[Any, ...]] = []
        self.server = RadiusServer(
            reactor=self.reactor, cache=cache, runner=StageRunner(pm), dictionary=codec.default_dictionary(),
            journal=self.journal, online=self.online, auth_log=self.auth_log.append,
        )  # fmt: skip
        self.transport = Transport()

    @property
    def counters(self) -> Any:
        return self.server.counters

    def drops(self) -> int:
        return sum(self.counters.dropped.values())

    def send_auth(self, data: bytes, source: Any = NAS_ADDR) -> list[bytes]:
        """Deliver to the authentication port; the datagrams written back."""
        before = len(self.transport.sent)
        self.server.auth_datagram(data, source, self.transport)
        return [d for d, _ in self.transport.sent[before:]]

    def send_acct(self, data: bytes, source: Any = NAS_ADDR) -> list[bytes]:
        before = len(self.transport.sent)
        self.server.acct_datagram(data, source, self.transport)
        return [d for d, _ in self.transport.sent[before:]]

    def auth(self, data: bytes, *, secret: bytes = SECRET, source: Any = NAS_ADDR) -> Packet | None:
        """The verified reply to an Access-Request, or None when it was dropped."""
        replies = self.send_auth(data, source)
        if not replies:
            return None
        assert len(replies) == 1
        return codec.decode_reply(replies[0], data[4:20], secret)

    def acct(self, data: bytes, *, secret: bytes = SECRET, source: Any = NAS_ADDR) -> Packet | None:
        replies = self.send_acct(data, source)
        if not replies:
            return None
        assert len(replies) == 1
        return codec.decode_reply(replies[0], data[4:20], secret)


# --- the NAS side --------------------------------------------------------------------------------

PPPOE = (
    ("Service-Type", "Framed-User"),
    ("Framed-Protocol", "PPP"),
    ("NAS-Identifier", "borda-01"),
    ("NAS-IP-Address", "127.0.0.1"),
    ("NAS-Port", 15728641),
    ("NAS-Port-Type", "Ethernet"),
    ("NAS-Port-Id", "ether2-clientes"),
    ("Called-Station-Id", "pppoe-fibra"),
    ("Acct-Session-Id", "81a00001"),
)
HOTSPOT = (
    ("Service-Type", "Login-User"),
    ("NAS-Identifier", "hotspot-praca"),
    ("NAS-IP-Address", "127.0.0.1"),
    ("NAS-Port", 2149580801),
    ("NAS-Port-Type", "Wireless-802.11"),
    ("NAS-Port-Id", "wlan1"),
    ("Called-Station-Id", "hotspot1"),
    ("Framed-IP-Address", "10.5.50.23"),
    ("Mikrotik-Host-IP", "10.5.50.23"),
    ("Acct-Session-Id", "82a00001"),
)


def pap(
    attributes: Any, password: str, *, secret: bytes = SECRET, ma: bool = True, identifier: int = 1
) -> bytes:
    authenticator = os.urandom(16)
    hidden = crypto.pap_hide(password.encode(), secret, authenticator)
    return codec.encode_request(
        Code.ACCESS_REQUEST, identifier, [*attributes, ("User-Password", hidden)], secret,
        authenticator=authenticator, message_authenticator=ma,
    )  # fmt: skip


def chap(attributes: Any, password: str, *, secret: bytes = SECRET, ident: int = 7) -> bytes:
    challenge = os.urandom(16)
    response = bytes((ident,)) + crypto.chap_response(ident, password.encode(), challenge)
    attrs = [*attributes, ("CHAP-Password", response), ("CHAP-Challenge", challenge)]
    return codec.encode_request(Code.ACCESS_REQUEST, 2, attrs, secret)


def mschap1(attributes: Any, password: str, *, secret: bytes = SECRET, ident: int = 9) -> tuple[bytes, bytes]:
    """(request, the NT hash-hash the MPPE keys are derived from)."""
    challenge = os.urandom(8)
    nt_hash = mschap.nt_password_hash(password)
    response = bytes((ident, 1)) + bytes(24) + mschap.challenge_response(challenge, nt_hash)
    attrs = [*attributes, ("MS-CHAP-Challenge", challenge), ("MS-CHAP-Response", response)]
    return codec.encode_request(Code.ACCESS_REQUEST, 3, attrs, secret), mschap.hash_nt_password_hash(nt_hash)


@dataclass
class MsChap2Login:
    request: bytes
    peer_challenge: bytes
    challenge: bytes
    nt_response: bytes


def mschap2(
    attributes: Any, login: str, password: str, *, secret: bytes = SECRET, ident: int = 11
) -> MsChap2Login:
    challenge, peer = os.urandom(16), os.urandom(16)
    nt_response = mschap.generate_nt_response(challenge, peer, login.encode(), password)
    response = bytes((ident, 0)) + peer + bytes(8) + nt_response
    attrs = [
        ("User-Name", login),
        *attributes,
        ("MS-CHAP-Challenge", challenge),
        ("MS-CHAP2-Response", response),
    ]
    return MsChap2Login(
        codec.encode_request(Code.ACCESS_REQUEST, 4, attrs, secret), peer, challenge, nt_response
    )


def accounting(
    status: str, session_id: str, login: str, *, secret: bytes = SECRET, identifier: int = 5, **counters: int
) -> bytes:
    """A RouterOS-shaped Accounting-Request; ``counters`` by attribute name with ``_`` for ``-``."""
    attrs: list[tuple[str, Any]] = [
        ("Acct-Status-Type", status), ("User-Name", login), ("Acct-Session-Id", session_id),
        ("NAS-Identifier", "borda-01"), ("NAS-IP-Address", "127.0.0.1"), ("NAS-Port-Type", "Ethernet"),
        ("Service-Type", "Framed-User"), ("Framed-Protocol", "PPP"), ("Calling-Station-Id", "4C:5E:0C:11:22:33"),
        ("Called-Station-Id", "pppoe-fibra"), ("Acct-Authentic", "RADIUS"),
    ]  # fmt: skip
    attrs += [(name.replace("_", "-"), value) for name, value in counters.items()]
    return codec.encode_request(
        Code.ACCOUNTING_REQUEST, identifier, attrs, secret, message_authenticator=False
    )


def status_server(*, secret: bytes = SECRET) -> bytes:
    return codec.encode_request(Code.STATUS_SERVER, 200, [], secret)

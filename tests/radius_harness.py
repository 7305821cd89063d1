"""Test helpers for the RADIUS server: the real RadiusServer, cache, stages and journal, in process.

The reactor is a ``MemoryReactorClock`` whose ``callFromThread`` runs at once, and the thread pool
runs work inline, so a test drives time with ``advance`` and never sleeps. The client side builds
RouterOS-shaped requests with the codec and the crypto helpers (PAP hiding, CHAP, MS-CHAPv1/v2).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
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

    def append(self, record: dict[str, Any], then: Any = None, args: tuple[Any, ...] = (), *_: Any) -> Deferred[None] | None:
        """Like :meth:`aaa.journal.Journal.append`: ``then(*args)`` at once, else a fired Deferred."""
        self.records.append(record)
        if then is not None:
            then(*args)
            return None
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


# --- a real `aaa serve` process ------------------------------------------------------------------

AAA = str(Path(sys.executable).with_name("aaa"))


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORTS = random.Random()


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A loopback port free now, for a server started later (an ``aaa serve`` subprocess binds it a
    second or two after this returns).

    Chosen below the kernel's ephemeral range: a port the kernel handed out (``bind`` to port 0)
    could be handed to any client socket in that second and the server would find it taken (CI
    saw it once); below the range only an explicit bind can take it.
    """
    floor = _ephemeral_floor()
    for _ in range(200):
        port = _PORTS.randrange(max(1024, floor - 20000), floor)
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port below the ephemeral range")


class ServerProcess:
    """``aaa serve`` in a subprocess on free loopback ports, with its own config, journal and log."""

    def __init__(self, root: Path, database_url: str) -> None:
        self.root = root
        self.database_url = database_url
        self.auth_port = free_port()
        self.acct_port = free_port()
        self.metrics_port = free_port(socket.SOCK_STREAM)
        (root / "etc").mkdir(parents=True, exist_ok=True)
        (root / "var").mkdir(exist_ok=True)
        self.config = root / "etc" / "aaa.toml"
        self.config.write_text(
            f'[database]\nurl = "{database_url}"\n\n'
            f'[radius]\nbind = "127.0.0.1"\nauth_port = {self.auth_port}\nacct_port = {self.acct_port}\n\n'
            f'[accounting]\njournal_dir = "var/journal"\n\n'
            f"[metrics]\nport = {self.metrics_port}\n\n"
            f'[security]\nkey_file = "var/aaa.key"\n'
        )
        self.log = root / "var" / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    def aaa(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run an ``aaa`` command with this config; fails the test with its output if it fails."""
        done = subprocess.run(
            [AAA, "--config", str(self.config), *args], capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"aaa {' '.join(args)}: {done.stdout}{done.stderr}"
        return done

    def start(self, *args: str, timeout: float = 30) -> None:
        """``aaa serve`` with ``args`` (``--workers 2``, say); returns once it answers Status-Server."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [AAA, "--config", str(self.config), "serve", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,  # its own process group: kill() takes forked --workers with it
            )
        deadline = time.monotonic() + timeout
        while not self.answers_status_server():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"aaa serve did not come up:\n{self.log.read_text()[-3000:]}")

    def answers_status_server(self, port: int | None = None) -> bool:
        request = status_server()
        reply = udp_exchange(request, port or self.auth_port, timeout=0.2)
        return reply is not None and codec.decode_reply(reply, request[4:20], SECRET) is not None

    def stop(self, *, timeout: float = 10) -> int:
        """SIGTERM; the exit code (the test fails if it takes longer than ``timeout``)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"aaa serve did not stop within {timeout}s of SIGTERM") from None

    def kill(self) -> None:
        """SIGKILL to the server's whole process group, as a crash of the service would end it:
        with ``--workers`` the forked workers go too, never left running after a failed test."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=10)


def udp_exchange(data: bytes, port: int, *, timeout: float = 1.0) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(data, ("127.0.0.1", port))
        try:
            return sock.recv(4096)
        except TimeoutError:
            return None


def wait_for(predicate: Any, *, timeout: float = 15, what: str = "condition") -> Any:
    """Poll a subprocess-observable condition (a real process: no clock to advance), bounded."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)

"""A fake MikroTik CoA/Disconnect listener (RFC 5176) for tests: the router we cannot run here.

It speaks the real protocol: a request counts only if its Request Authenticator and its
Message-Authenticator verify with the NAS secret (a Message-Authenticator is required, as on
RouterOS 7.15+); a bad one is dropped and recorded in ``rejected``. A valid request is recorded in
``received`` (code, identifier, authenticator, attributes as ``(name, value)``) and answered as the
test asks:

- ``mode``: ``"ack"``, ``"nak"`` (with ``error_cause``, default 503 Session-Context-Not-Found),
  ``"silent"``, or ``"nak-then-ack"`` (the first request is NAKed, the rest ACKed);
- ``silent_first=N``: the first N valid datagrams (retransmissions included) get no answer;
- ``nak_first=N``: the first N distinct requests are NAKed, whatever the mode;
- ``decide``: a function of the :class:`Received` request returning ``"ack"``, ``"nak"``,
  ``"silent"`` or ``("nak", cause)``, for anything else.

A retransmission (same source, identifier and authenticator) gets the reply already sent, as a NAS's
duplicate detection does; it is recorded with ``duplicate=True``.

Three ways to run it:

- in the test's reactor: ``port = listen(reactor, nas)`` (a Twisted ``DatagramProtocol``);
- on a thread with a blocking socket, for tests that run ``aaa serve`` as a subprocess:
  ``with FakeNasThread(nas) as server: ... server.port ... nas.wait_for(1, timeout=5)``;
- as a process: ``python tests/fakenas.py --port N --secret S --mode ack --record FILE.jsonl``
  (one JSON line per valid request received; prints ``fakenas listening on HOST:PORT`` when ready).
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from twisted.internet.protocol import DatagramProtocol

from aaa.radius.codec import Code, MalformedPacket, decode, default_dictionary, encode_reply, verify_request

_ANSWERS = {
    Code.COA_REQUEST: (Code.COA_ACK, Code.COA_NAK),
    Code.DISCONNECT_REQUEST: (Code.DISCONNECT_ACK, Code.DISCONNECT_NAK),
}
MODES = ("ack", "nak", "silent", "nak-then-ack")
Decision = str | tuple[str, int]


@dataclass
class Received:
    """One valid request as the NAS saw it."""

    code: str
    """``"CoA-Request"`` or ``"Disconnect-Request"``."""
    identifier: int
    authenticator: str
    """Hex of the Request Authenticator."""
    attributes: list[tuple[str, Any]]
    source: tuple[str, int]
    duplicate: bool = False
    answer: str = ""
    """``"ack"``, ``"nak"`` or ``"silent"``."""
    error_cause: int | None = None

    def get(self, name: str, default: Any = None) -> Any:
        """The first value of attribute ``name``."""
        for key, value in self.attributes:
            if key == name:
                return value
        return default

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code, "identifier": self.identifier, "authenticator": self.authenticator,
            "attributes": [[k, "0x" + v.hex() if isinstance(v, bytes) else v] for k, v in self.attributes],
            "source": list(self.source), "duplicate": self.duplicate, "answer": self.answer,
            "error_cause": self.error_cause,
        }  # fmt: skip


_CODE_NAMES = {Code.COA_REQUEST: "CoA-Request", Code.DISCONNECT_REQUEST: "Disconnect-Request"}


@dataclass
class FakeNas:
    """The router's side of RFC 5176, without a transport: ``handle(datagram, source) -> reply``."""

    secret: bytes
    mode: str = "ack"
    error_cause: int = 503
    silent_first: int = 0
    nak_first: int = 0
    decide: Callable[[Received], Decision] | None = None
    on_record: Callable[[Received], None] | None = None
    received: list[Received] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    """(source host, reason) of every dropped datagram."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        if self.mode == "nak-then-ack" and not self.nak_first:
            self.nak_first = 1
        self._lock = threading.Condition()
        self._replies: dict[tuple[Any, ...], bytes | None] = {}
        self._silenced = 0
        self._distinct = 0

    # --- protocol ------------------------------------------------------------------------------------

    def handle(self, data: bytes, source: tuple[str, int]) -> bytes | None:
        """The reply to send back to ``source``, or None to stay silent."""
        try:
            packet = decode(data)
            if packet.code not in _ANSWERS:
                raise MalformedPacket("not-a-coa-request", packet.code.name)
            if not verify_request(packet, self.secret):
                raise MalformedPacket("missing-message-authenticator")
        except MalformedPacket as exc:
            with self._lock:
                self.rejected.append((source[0], exc.reason))
                self._lock.notify_all()
            return None
        key = (source[0], source[1], packet.identifier, packet.authenticator)
        request = Received(_CODE_NAMES[packet.code], packet.identifier, packet.authenticator.hex(),
                           packet.items(redact=False), (source[0], source[1]))  # fmt: skip
        with self._lock:
            request.duplicate = key in self._replies
            if self._silenced < self.silent_first:
                self._silenced += 1
                request.answer = "silent"
                reply = None
            elif request.duplicate:
                reply = self._replies[key]
                request.answer = "duplicate"
            else:
                answer, cause = self._decision(request)
                request.answer, request.error_cause = answer, cause
                reply = self._reply(packet, answer, cause)
                self._replies[key] = reply
                if len(self._replies) > 100_000:
                    self._replies.clear()
            self.received.append(request)
            self._lock.notify_all()
        if self.on_record is not None:
            self.on_record(request)
        return reply

    def _decision(self, request: Received) -> tuple[str, int | None]:
        self._distinct += 1
        if self._distinct <= self.nak_first:
            return "nak", self.error_cause
        decision: Decision = self.decide(request) if self.decide is not None else self.mode
        if isinstance(decision, tuple):
            return decision[0], decision[1]
        if decision == "nak-then-ack":
            decision = "ack"
        return decision, (self.error_cause if decision == "nak" else None)

    def _reply(self, packet: Any, answer: str, cause: int | None) -> bytes | None:
        if answer == "silent":
            return None
        ack, nak = _ANSWERS[packet.code]
        if answer == "ack":
            return encode_reply(packet, ack, [], self.secret)
        attributes = [("Error-Cause", cause)] if cause is not None else []
        return encode_reply(packet, nak, attributes, self.secret)

    # --- what tests read ---------------------------------------------------------------------------

    def requests(self, *, include_duplicates: bool = False) -> list[Received]:
        """Valid requests received, retransmissions left out unless asked."""
        with self._lock:
            return [r for r in self.received if include_duplicates or not r.duplicate]

    def wait_for(self, count: int, *, timeout: float = 10.0, include_duplicates: bool = False) -> bool:
        """Block until ``count`` requests have arrived (or ``timeout``); True if they did."""
        with self._lock:  # a reentrant lock: requests() takes it again
            return self._lock.wait_for(lambda: len(self.requests(include_duplicates=include_duplicates)) >= count,
                                       timeout)  # fmt: skip


# --- transports ------------------------------------------------------------------------------------


class FakeNasProtocol(DatagramProtocol):
    """The fake NAS in a Twisted reactor."""

    def __init__(self, nas: FakeNas) -> None:
        self.nas = nas

    def datagramReceived(self, data: bytes, addr: Any) -> None:  # noqa: N802 (Twisted's name)
        reply = self.nas.handle(data, (addr[0], addr[1]))
        transport: Any = self.transport
        if reply is not None and transport is not None:
            transport.write(reply, addr)


def listen(reactor: Any, nas: FakeNas, *, port: int = 0, interface: str = "127.0.0.1") -> Any:
    """Listen on ``interface:port`` (0: any free port; read ``.getHost().port``)."""
    return reactor.listenUDP(port, FakeNasProtocol(nas), interface=interface)


class FakeNasThread:
    """The fake NAS on its own thread with a blocking socket; a context manager."""

    def __init__(self, nas: FakeNas, *, port: int = 0, host: str = "127.0.0.1") -> None:
        self.nas = nas
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, port))
        self.sock.settimeout(0.1)
        self.host = host
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.serve, name=f"fakenas:{self.port}", daemon=True)

    def start(self) -> FakeNasThread:
        self._thread.start()
        return self

    def serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = self.nas.handle(data, (addr[0], addr[1]))
            if reply is not None:
                try:
                    self.sock.sendto(reply, addr)
                except OSError:
                    pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.sock.close()

    def __enter__(self) -> FakeNasThread:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


# --- as a process ----------------------------------------------------------------------------------


def _error_cause(text: str) -> int:
    if text.isdigit():
        return int(text)
    return default_dictionary().value("Error-Cause", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fake MikroTik CoA/Disconnect listener (RFC 5176)")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3799)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--mode", choices=MODES, default="ack")
    parser.add_argument("--error-cause", type=_error_cause, default=503, help="number or name, for NAKs")
    parser.add_argument("--silent-first", type=int, default=0)
    parser.add_argument("--nak-first", type=int, default=0)
    parser.add_argument("--record", type=Path, help="append one JSON line per valid request")
    args = parser.parse_args(argv)
    record = args.record.open("a", encoding="utf-8") if args.record else None

    def write(request: Received) -> None:
        if record is not None:
            record.write(json.dumps(request.as_json()) + "\n")
            record.flush()

    nas = FakeNas(args.secret.encode(), mode=args.mode, error_cause=args.error_cause,
                  silent_first=args.silent_first, nak_first=args.nak_first, on_record=write)  # fmt: skip
    server = FakeNasThread(nas, port=args.port, host=args.bind)
    signal.signal(signal.SIGTERM, lambda *_: server._stop.set())
    print(f"fakenas listening on {args.bind}:{server.port}", flush=True)
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        server.sock.close()
        if record is not None:
            record.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

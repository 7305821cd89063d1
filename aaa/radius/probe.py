"""A one-shot Status-Server probe (RFC 5997) of a NAS's CoA port, for the admin's NAS check.

RFC 5997 defines Status-Server for RADIUS servers; a NAS's Dynamic Authorization port (RFC 5176) is a
server too, and some NAS (and every RADIUS proxy) answer it. MikroTik RouterOS does not: its
``/radius incoming`` listener drops what is not a CoA or Disconnect request. So "no answer" is the
expected result for a MikroTik router and says nothing bad about it; an answer proves the router is
up, the CoA port open and the shared secret right, and a reply that fails verification means the
secret differs. The admin's check (:func:`aaa.services.nas.check_nas`) shows this beside the traffic
the NAS last sent us.

Blocking on purpose: it runs in a CLI command or a TUI worker thread, never in the reactor.
"""

from __future__ import annotations

import os
import select
import socket
import time
from dataclasses import asdict, dataclass
from typing import Any

from aaa.radius.codec import Code, MalformedPacket, decode_reply, encode_request


@dataclass(frozen=True)
class ProbeResult:
    """What came back: ``"answered"`` (a verified reply, ``code`` names it), ``"bad-secret"`` (a reply
    that did not verify with our secret), ``"no-answer"`` within the timeout, ``"unreachable"`` (the
    host refused the port: nothing listens there, e.g. RouterOS with ``/radius incoming accept=no``)
    or ``"error"`` (the datagram could not be sent; ``detail`` says why)."""

    outcome: str
    code: str | None = None
    rtt_ms: float | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def status_server(host: str, port: int, secret: bytes, *, timeout: float = 1.0) -> ProbeResult:
    """Send one Status-Server (with the Message-Authenticator RFC 5997 §3 requires) to ``host``:``port``
    and wait up to ``timeout`` seconds for a reply to it."""
    identifier = os.urandom(1)[0]
    datagram = encode_request(Code.STATUS_SERVER, identifier, [], secret)
    authenticator = datagram[4:20]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((host, port))
            sock.send(datagram)
        except OSError as exc:
            return ProbeResult("error", detail=exc.strerror or type(exc).__name__)
        started = time.monotonic()
        deadline = started + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                break
            try:
                data = sock.recv(4096)
            except OSError as exc:  # ICMP port unreachable surfaces here on a connected socket
                return ProbeResult("unreachable", detail=exc.strerror or type(exc).__name__)
            if len(data) < 20 or data[1] != identifier:
                continue  # not a reply to this probe
            rtt = round((time.monotonic() - started) * 1000, 1)
            try:
                reply = decode_reply(data, authenticator, secret)
            except MalformedPacket:
                return ProbeResult(
                    "bad-secret", rtt_ms=rtt, detail="the reply does not verify with this NAS's secret"
                )
            return ProbeResult("answered", code=reply.code.name, rtt_ms=rtt)
    return ProbeResult("no-answer")

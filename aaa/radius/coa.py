"""CoA-Request and Disconnect-Request client (RFC 5176): send, retransmit, match and verify replies.

:class:`CoaClient` sends a request to a NAS's CoA port and gives back a Deferred that always fires
with a :class:`CoaResult`: ``"ack"`` (CoA-ACK / Disconnect-ACK), ``"nak"`` (CoA-NAK /
Disconnect-NAK, with its Error-Cause, RFC 5176 §3.6) or ``"timeout"`` (no verified reply after the
retransmissions). Only a caller's mistake (an attribute that cannot be encoded, a host that is not
an IP address, a code that is not a CoA or Disconnect request) fails the Deferred.

Wire rules (the codec computes them): the Request Authenticator is MD5 over the packet with a zero
authenticator and the secret (RFC 5176 §3.5, as RFC 2866 §3), a Message-Authenticator is always
included (computed with the authenticator zeroed), and a reply counts only if its Response
Authenticator and Message-Authenticator verify against the request
(:func:`aaa.radius.codec.decode_reply`); a reply that does not verify, or has the wrong code, is
counted and ignored, and the request keeps waiting for the genuine one.

Identifiers: the Identifier is one octet, so a UDP socket can have at most 256 requests in flight
to one destination (host, port). Each socket keeps a queue of free identifiers per destination
(released ones go to the back, so an identifier is reused as late as possible); when every socket
is full for a destination, the client opens another (up to ``max_sockets``), and beyond that
requests wait in a queue. Retransmissions (after ``timeout``, then ``timeout * backoff``, ...)
resend the same datagram: same identifier, same authenticator (RFC 5080 §2.2.1).

Time: a request to a silent NAS is given up after :meth:`CoaClient.worst_case_seconds`, the sum of
its ``retries + 1`` waits (``timeout * backoff ** k``): 2 + 4 + 8 = 14 s with the defaults. Callers
that bound their own time (the outbox handler) derive their budget from it.

Cancelling a request's Deferred withdraws it: no more retransmissions, its identifier is freed (or
it leaves the queue), and no reply can fire it later. The outbox cancels requests whose attempt
timed out or whose worker is stopping, so a row another worker re-claims is not also being sent
from here.
"""

from __future__ import annotations

import heapq
import ipaddress
import random
import socket
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, fail, maybeDeferred
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from aaa.radius.codec import (
    Code,
    Dictionary,
    MalformedPacket,
    decode_reply,
    default_dictionary,
    encode_request,
)

__all__ = ["CoaClient", "CoaResult"]

log = Logger()

_REPLIES: dict[Code, tuple[Code, Code]] = {
    Code.COA_REQUEST: (Code.COA_ACK, Code.COA_NAK),
    Code.DISCONNECT_REQUEST: (Code.DISCONNECT_ACK, Code.DISCONNECT_NAK),
}
_WARN_EVERY = 60.0
Destination = tuple[str, int]


@dataclass(frozen=True)
class CoaResult:
    """What became of one CoA-Request or Disconnect-Request."""

    outcome: str
    """``"ack"``, ``"nak"`` or ``"timeout"``."""
    error_cause: int | None = None
    """The Error-Cause of a NAK (RFC 5176 §3.6), if it carried one."""
    error_cause_name: str | None = None
    """Its dictionary name, e.g. ``"Session-Context-Not-Found"``."""
    attempts: int = 1
    """Datagrams sent: 1 + retransmissions."""
    rtt_seconds: float | None = None
    """From the first transmission to the reply; None for a timeout."""

    @property
    def ok(self) -> bool:
        return self.outcome == "ack"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (for the outbox row's ``result``)."""
        return asdict(self)


class _Pending:
    """A request in flight: the exact datagram, where it goes, and what waits for it."""

    __slots__ = ("socket", "dest", "identifier", "datagram", "secret", "code", "deferred", "attempts",
                 "started", "deadline")  # fmt: skip

    def __init__(self, sock: _CoaSocket, dest: Destination, identifier: int, datagram: bytes, secret: bytes,
                 code: Code, deferred: Deferred[CoaResult], started: float) -> None:  # fmt: skip
        self.socket = sock
        self.dest = dest
        self.identifier = identifier
        self.datagram = datagram
        self.secret = secret
        self.code = code
        self.deferred = deferred
        self.attempts = 0
        self.started = started
        self.deadline: float | None = None
        """When to retransmit or give up; None once finished."""

    @property
    def authenticator(self) -> bytes:
        return self.datagram[4:20]


@dataclass(eq=False)
class _Queued:
    dest: Destination
    family: int
    secret: bytes
    code: Code
    attributes: list[tuple[str, Any]]
    deferred: Deferred[CoaResult]
    pending: _Pending | None = None
    """Set once it is on the wire."""


class _CoaSocket(DatagramProtocol):
    """One UDP socket: its free identifiers per destination and its requests in flight."""

    def __init__(self, client: CoaClient, family: int) -> None:
        self.client = client
        self.family = family
        self.free: dict[Destination, deque[int]] = {}
        self.pending: dict[tuple[Destination, int], _Pending] = {}
        self.port: Any = None

    def take_identifier(self, dest: Destination) -> int | None:
        ids = self.free.get(dest)
        if ids is None:
            start = random.randrange(256)
            ids = self.free[dest] = deque((start + i) % 256 for i in range(256))
        return ids.popleft() if ids else None

    def release(self, dest: Destination, identifier: int) -> None:
        self.free[dest].append(identifier)

    def datagramReceived(self, data: bytes, addr: Any) -> None:  # noqa: N802 (Twisted's name)
        try:
            self.client._received(self, data, addr)
        except Exception:
            self.client.internal_errors += 1
            log.failure("CoA client: internal error handling a reply from {host}", host=addr[0])


class CoaClient:
    """Sends CoA-Requests and Disconnect-Requests; see the module docstring.

    ``timeout`` is the wait before the first retransmission, multiplied by ``backoff`` after each
    one; ``retries`` retransmissions are made before the outcome is ``"timeout"``. Counters
    (``sent``, ``retransmitted``, ``acks``, ``naks``, ``timeouts``, ``bad_replies``, ``unmatched``,
    ``send_errors``, ``internal_errors``) are plain integers for metrics.
    """

    def __init__(self, reactor: Any, *, timeout: float = 2.0, retries: int = 2, backoff: float = 2.0,
                 max_sockets: int = 256, dictionary: Dictionary | None = None) -> None:  # fmt: skip
        if timeout <= 0 or retries < 0 or backoff < 1 or max_sockets < 1:
            raise ValueError("CoaClient: timeout > 0, retries >= 0, backoff >= 1, max_sockets >= 1")
        self.reactor = reactor
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_sockets = max_sockets
        self.dictionary = dictionary or default_dictionary()
        self._sockets: dict[int, list[_CoaSocket]] = {socket.AF_INET: [], socket.AF_INET6: []}
        self._queues: dict[Destination, deque[_Queued]] = {}
        self._last_warning: dict[str, float] = {}
        self._closed = False
        self._deadlines: list[tuple[float, int, _Pending]] = []
        self._seq = 0
        self._tick_call: Any = None
        self._tick_at = 0.0
        self.sent = 0
        self.retransmitted = 0
        self.acks = 0
        self.naks = 0
        self.timeouts = 0
        self.bad_replies = 0
        self.unmatched = 0
        self.send_errors = 0
        self.internal_errors = 0
        self.cancelled = 0

    # --- public -------------------------------------------------------------------------------------

    def worst_case_seconds(self) -> float:
        """How long one request can take before its outcome is ``"timeout"``: the first wait plus one
        per retransmission, ``timeout * backoff ** k`` for k = 0..retries (14 s with the defaults)."""
        return sum(self.timeout * self.backoff**k for k in range(self.retries + 1))

    def send(self, host: str, port: int, secret: bytes, code: Code,
             attributes: Iterable[tuple[str, Any]]) -> Deferred[CoaResult]:  # fmt: skip
        """Send ``code`` (COA_REQUEST or DISCONNECT_REQUEST) to ``host:port``; fires with a CoaResult."""
        if self._closed:
            return fail(RuntimeError("CoA client is closed"))
        if code not in _REPLIES:
            return fail(ValueError(f"CoA client sends CoA-Request or Disconnect-Request, not {Code(code).name}"))
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return fail(ValueError(f"CoA destination must be an IP address, not {host!r}"))
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        dest = (address.compressed, int(port))
        holder: list[_Queued] = []
        item = _Queued(dest, family, secret, Code(code), list(attributes), Deferred(lambda _: self._cancel(holder[0])))
        holder.append(item)
        try:
            started = self._start(item)
        except Exception:
            return fail()
        if not started:
            self._queues.setdefault(dest, deque()).append(item)
        return item.deferred

    def counters(self) -> dict[str, int]:
        return {
            "sent": self.sent, "retransmitted": self.retransmitted, "acks": self.acks, "naks": self.naks,
            "timeouts": self.timeouts, "bad_replies": self.bad_replies, "unmatched": self.unmatched,
            "send_errors": self.send_errors, "internal_errors": self.internal_errors, "cancelled": self.cancelled,
            "in_flight": self.in_flight(), "queued": self.queued(), "sockets": self.socket_count(),
        }  # fmt: skip

    def in_flight(self) -> int:
        return sum(len(s.pending) for socks in self._sockets.values() for s in socks)

    def queued(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def socket_count(self) -> int:
        return sum(len(socks) for socks in self._sockets.values())

    def close(self) -> Deferred[Any]:
        """Stop: requests in flight or queued fire with ``"timeout"``; the sockets are closed."""
        self._closed = True
        queues, self._queues = self._queues, {}
        for queue in queues.values():
            for item in queue:
                item.deferred.callback(CoaResult("timeout", attempts=0))
        stops = []
        for socks in self._sockets.values():
            for sock in socks:
                for pending in list(sock.pending.values()):
                    self._finish(pending, CoaResult("timeout", attempts=pending.attempts))
                if sock.port is not None:
                    stops.append(maybeDeferred(sock.port.stopListening))
            socks.clear()
        self._deadlines.clear()
        if self._tick_call is not None and self._tick_call.active():
            self._tick_call.cancel()
        self._tick_call = None
        return DeferredList(stops)

    # --- sending ------------------------------------------------------------------------------------

    def _start(self, item: _Queued) -> bool:
        """Encode and send ``item`` if an identifier is free (opening a socket if needed)."""
        slot = self._allocate(item.dest, item.family)
        if slot is None:
            return False
        sock, identifier = slot
        try:
            datagram = encode_request(item.code, identifier, item.attributes, item.secret, dictionary=self.dictionary)
        except Exception:
            sock.release(item.dest, identifier)
            raise
        pending = _Pending(sock, item.dest, identifier, datagram, item.secret, item.code, item.deferred,
                           self.reactor.seconds())  # fmt: skip
        sock.pending[(item.dest, identifier)] = pending
        item.pending = pending
        self._transmit(pending)
        return True

    def _allocate(self, dest: Destination, family: int) -> tuple[_CoaSocket, int] | None:
        socks = self._sockets[family]
        for sock in socks:
            identifier = sock.take_identifier(dest)
            if identifier is not None:
                return sock, identifier
        if self.socket_count() >= self.max_sockets:
            return None
        sock = self._open(family)
        identifier = sock.take_identifier(dest)
        assert identifier is not None
        return sock, identifier

    def _open(self, family: int) -> _CoaSocket:
        sock = _CoaSocket(self, family)
        sock.port = self.reactor.listenUDP(0, sock, interface="::" if family == socket.AF_INET6 else "")
        raw = getattr(sock.port, "socket", None)
        if raw is not None:
            for size in (4 << 20, 1 << 20):
                try:
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
                    break
                except OSError:
                    continue
        self._sockets[family].append(sock)
        return sock

    def _transmit(self, pending: _Pending) -> None:
        pending.attempts += 1
        if pending.attempts == 1:
            self.sent += 1
        else:
            self.retransmitted += 1
        try:
            pending.socket.port.write(pending.datagram, pending.dest)
        except Exception as exc:  # a full send buffer, an unreachable network: the timer retries
            self.send_errors += 1
            self._warn("send-error", "CoA client: cannot send to {host}: {error}", host=pending.dest[0],
                       error=type(exc).__name__)  # fmt: skip
        wait = self.timeout * self.backoff ** (pending.attempts - 1)
        self._schedule(pending, self.reactor.seconds() + wait)

    # --- timers: one heap, one reactor call (not one delayed call per request) -----------------------

    def _schedule(self, pending: _Pending, deadline: float) -> None:
        pending.deadline = deadline
        self._seq += 1
        heapq.heappush(self._deadlines, (deadline, self._seq, pending))
        if self._tick_call is None or deadline < self._tick_at:
            self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        if self._tick_call is not None and self._tick_call.active():
            self._tick_call.cancel()
        self._tick_at = deadline
        self._tick_call = self.reactor.callLater(max(0.0, deadline - self.reactor.seconds()), self._tick)

    def _tick(self) -> None:
        self._tick_call = None
        now = self.reactor.seconds()
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            deadline, _, pending = heapq.heappop(heap)
            if pending.deadline == deadline:  # otherwise finished or rescheduled: a stale entry
                try:
                    self._expired(pending)
                except Exception:
                    self.internal_errors += 1
                    log.failure("CoA client: internal error on a retransmission timer")
        while heap and heap[0][2].deadline != heap[0][0]:
            heapq.heappop(heap)
        if heap and self._tick_call is None:
            self._arm(heap[0][0])

    def _expired(self, pending: _Pending) -> None:
        pending.deadline = None
        if pending.attempts <= self.retries:
            self._transmit(pending)
            return
        self.timeouts += 1
        self._finish(pending, CoaResult("timeout", attempts=pending.attempts))

    # --- receiving ----------------------------------------------------------------------------------

    def _received(self, sock: _CoaSocket, data: bytes, addr: Any) -> None:
        if len(data) < 20:
            self._bad("short", addr[0])
            return
        pending = sock.pending.get(((addr[0], addr[1]), data[1]))
        if pending is None:
            pending = sock.pending.get(((_normal(addr[0]), addr[1]), data[1]))
        if pending is None:
            self.unmatched += 1
            return
        try:
            reply = decode_reply(data, pending.authenticator, pending.secret, self.dictionary)
        except MalformedPacket as exc:
            self._bad(exc.reason, addr[0])
            return
        ack, nak = _REPLIES[pending.code]
        if reply.code is ack:
            self.acks += 1
            result = CoaResult("ack", attempts=pending.attempts, rtt_seconds=self._rtt(pending))
        elif reply.code is nak:
            self.naks += 1
            try:
                cause = reply.get("Error-Cause")
            except MalformedPacket:
                cause = None
            name = self.dictionary.value_name("Error-Cause", cause) if isinstance(cause, int) else None
            result = CoaResult("nak", cause, name, pending.attempts, self._rtt(pending))
        else:
            self._bad("wrong-code", addr[0])
            return
        self._finish(pending, result)

    def _rtt(self, pending: _Pending) -> float:
        return max(0.0, self.reactor.seconds() - pending.started)

    def _bad(self, reason: str, host: str) -> None:
        self.bad_replies += 1
        self._warn(reason, "CoA client: ignored a reply from {host}: {reason} (logged once a minute per reason)",
                   host=host, reason=reason)  # fmt: skip

    def _warn(self, key: str, message: str, **fields: Any) -> None:
        """Log ``message`` at most once a minute per ``key``."""
        now = self.reactor.seconds()
        if now - self._last_warning.get(key, -_WARN_EVERY) >= _WARN_EVERY:
            self._last_warning[key] = now
            log.warn(message, **fields)

    # --- completion ---------------------------------------------------------------------------------

    def _finish(self, pending: _Pending, result: CoaResult) -> None:
        self._forget(pending)
        pending.deferred.callback(result)

    def _forget(self, pending: _Pending) -> None:
        """Take ``pending`` off the wire: no timer, its identifier free, the next queued one started."""
        sock = pending.socket
        del sock.pending[(pending.dest, pending.identifier)]
        pending.deadline = None
        sock.release(pending.dest, pending.identifier)
        self._drain_queue(pending.dest)

    def _cancel(self, item: _Queued) -> None:
        """The canceller of ``item``'s Deferred (which then fails with CancelledError)."""
        pending = item.pending
        if pending is not None:
            if pending.socket.pending.get((pending.dest, pending.identifier)) is pending:
                self.cancelled += 1
                self._forget(pending)
            return
        queue = self._queues.get(item.dest)
        if queue is not None and item in queue:
            self.cancelled += 1
            queue.remove(item)
            if not queue:
                del self._queues[item.dest]

    def _drain_queue(self, dest: Destination) -> None:
        """Start requests that waited for an identifier to ``dest``."""
        queue = self._queues.get(dest)
        while queue and not self._closed:
            item = queue[0]
            try:
                if not self._start(item):
                    return
            except Exception:
                queue.popleft()
                item.deferred.errback()
                continue
            queue.popleft()
        if queue is not None and not queue:
            del self._queues[dest]


def _normal(host: str) -> str:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).compressed
    except ValueError:
        return host

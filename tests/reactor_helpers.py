"""Reactors for tests that never sleep: a private real reactor pumped by the test, and a clocked one.

- :class:`Loop`: a ``SelectReactor`` of the test's own (the global reactor is never installed or
  run), driven from the test thread: :meth:`Loop.run_until` turns it until a Deferred fires, waiting
  in ``select()`` for I/O or for a thread's ``callFromThread``, with a bounded real deadline.
- :class:`ClockedReactor`: time from a ``twisted.internet.task.Clock`` that the test advances
  (``callLater``, ``seconds``), sockets and ``callFromThread`` from a :class:`Loop`. Code under test
  takes it as its reactor, so retransmission timers and poll intervals move only when the test says.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.selectreactor import SelectReactor
from twisted.internet.task import Clock
from twisted.python.failure import Failure


class Loop:
    def __init__(self) -> None:
        self.reactor = SelectReactor()
        self._ports: list[Any] = []

    def listen_udp(self, port: int, protocol: Any, interface: str = "") -> Any:
        listening = self.reactor.listenUDP(port, protocol, interface=interface)
        raw = getattr(listening, "socket", None)
        if raw is not None:
            try:
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            except OSError:
                pass
        self._ports.append(listening)
        return listening

    def turn(self, wait: float = 0.01) -> None:
        """Run what is due and wait up to ``wait`` seconds for I/O."""
        self.reactor.iterate(wait)

    def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            self.turn()

    def run_until(self, d: Deferred[Any], timeout: float = 10.0) -> Any:
        """The result of ``d`` (its failure raised), turning the loop until it fires."""
        box: list[Any] = []
        d.addBoth(box.append)
        self.until(lambda: bool(box), timeout)
        if isinstance(box[0], Failure):
            box[0].raiseException()
        return box[0]

    def close(self) -> None:
        for port in self._ports:
            port.stopListening()
        for _ in range(3):
            self.turn(0)
        for selectable in self.reactor.removeAll():
            raw = getattr(selectable, "socket", None)
            if raw is not None:
                raw.close()
        waker = getattr(self.reactor, "waker", None)
        if waker is not None:
            self.reactor.removeReader(waker)
            waker.connectionLost(None)


class ClockedReactor(Clock):
    """A Clock for time, a :class:`Loop` for sockets and threads."""

    def __init__(self, loop: Loop, *, start: float = 0.0) -> None:
        super().__init__()
        self.loop = loop
        if start:
            self.advance(start)

    def listenUDP(self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192) -> Any:  # noqa: N802, N803
        return self.loop.listen_udp(port, protocol, interface)

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:  # noqa: N802
        self.loop.reactor.callFromThread(f, *args, **kwargs)

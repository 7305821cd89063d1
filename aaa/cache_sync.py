"""Keeping the caches of ``aaa serve --workers N`` in step before a router is told to log in again.

Each worker process answers logins from its own in-memory cache, refreshed every
``cache_refresh_seconds``. Worker 0 sends CoA/Disconnect; the router's next Access-Request may reach
any worker (SO_REUSEPORT spreads by source address and port). So before a Disconnect goes out, every
worker's cache must hold the change, or a login could still be answered from the old state (the
plan instead of the blocked profile, say) for up to a refresh interval.

:class:`CacheSync` is a few 64-bit integers in shared memory, created by the parent before it forks:
slot 0 is the change-counter value some worker *wants* everyone to have; slot ``1 + i`` is the value
worker ``i``'s cache has reached. Every worker looks at slot 0 every :data:`FOLLOW_SECONDS` (a memory
read, no database) and refreshes at once when it is behind; worker 0 waits until every slot has
caught up, bounded by :data:`WAIT_BOUND_SECONDS` (a worker stuck on the database must not hold up
enforcement for good: past the bound the Disconnect is sent anyway and a warning names the workers
still behind). In one process (no ``--workers``) there is nothing to wait for.
"""

from __future__ import annotations

import ctypes
from multiprocessing.sharedctypes import RawArray
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

__all__ = ["FOLLOW_SECONDS", "WAIT_BOUND_SECONDS", "CacheSync"]

log = Logger()

FOLLOW_SECONDS = 0.05
"""How often each worker checks whether another wants its cache refreshed."""
WAIT_BOUND_SECONDS = 3.0
"""The longest worker 0 waits for the others before sending anyway (a normal refresh takes ms)."""


class CacheSync:
    """Shared between the worker processes of one ``aaa serve``; create it before forking."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._slots: Any = RawArray(ctypes.c_int64, workers + 1)
        for i in range(workers + 1):
            self._slots[i] = -1

    def publish(self, index: int, seq: int) -> None:
        """Worker ``index``'s cache has reached change ``seq``."""
        self._slots[1 + index] = seq

    def want(self, seq: int) -> None:
        """Ask every worker to reach change ``seq`` (never lowers what is already wanted)."""
        if seq > self._slots[0]:
            self._slots[0] = seq

    def wanted(self) -> int:
        return int(self._slots[0])

    def behind(self, seq: int) -> list[int]:
        """The workers whose cache has not reached ``seq``."""
        return [i for i in range(self.workers) if self._slots[1 + i] < seq]

    def wait(self, reactor: Any, seq: int, *, bound: float = WAIT_BOUND_SECONDS) -> Deferred[list[int]]:
        """Fires when every worker has reached ``seq`` (with ``[]``), or after ``bound`` seconds with
        the workers still behind (logged)."""
        self.want(seq)
        d: Deferred[list[int]] = Deferred()
        deadline = reactor.seconds() + bound

        def check() -> None:
            if d.called:  # cancelled: the attempt is over
                return
            late = self.behind(seq)
            if not late:
                d.callback([])
            elif reactor.seconds() >= deadline:
                log.warn("cache of worker(s) {late} not refreshed within {bound}s; sending anyway", late=late, bound=bound)
                d.callback(late)
            else:
                reactor.callLater(FOLLOW_SECONDS / 2, check)

        check()
        return d

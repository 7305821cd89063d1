"""``aaa serve`` with timing probes: what holds the reactor (or its core) long enough to make a latency tail.

Runs the server in this process exactly as ``aaa serve`` would, after wrapping a few functions with
timers, and writes what it saw to a JSON file when the server stops (SIGTERM):

* ``gc``: every garbage collection over 0.5 ms: time, generation, wall ms, CPU ms of the thread
  that ran it, thread name (``gc.callbacks``);
* ``purge``: each ``RadiusServer.purge_duplicates`` (wall ms, CPU ms);
* ``auth_log``: each ``AuthLogWriter._write`` batch (wall ms, CPU ms of its thread, rows);
* ``auth_log_piece``: each frame of a batch pickled into the auth log spool (``pickle.dumps`` in
  :mod:`aaa.auth_log_spool`; wall ms, CPU ms of the thread, rows): one C call that keeps the GIL
  from the reactor until it is done;
* ``refresh``: each ``Cache.refresh``;
* ``heap``: every 2 s, the objects in the collector's oldest generation and the frozen ones.

Measurement only: nothing here is imported by the server. Pin it like the server it stands for:

    taskset -c 1 .venv/bin/python -m bench.stall_probe --out /tmp/probe.json -- --config etc/aaa.toml serve
    taskset -c 0 .venv/bin/aaa bench --window 32 --count 40000 --duration 40
    kill <pid>; python -m bench.stall_probe --summary /tmp/probe.json

CPU times are the thread's own (``time.thread_time``): on a shared machine wall times include the
time other processes held the core, CPU times do not.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

EVENTS: dict[str, list[Any]] = {"gc": [], "purge": [], "auth_log": [], "auth_log_piece": [], "refresh": [], "heap": []}
_STARTED: dict[int, tuple[float, float]] = {}


def _gc_callback(phase: str, info: dict[str, Any]) -> None:
    ident = threading.get_ident()
    if phase == "start":
        _STARTED[ident] = (time.perf_counter(), time.thread_time())
        return
    wall0, cpu0 = _STARTED.pop(ident, (time.perf_counter(), time.thread_time()))
    wall = time.perf_counter() - wall0
    if wall > 0.0005:
        cpu = time.thread_time() - cpu0
        EVENTS["gc"].append([round(time.time(), 3), info["generation"], round(wall * 1e3, 2), round(cpu * 1e3, 2),
                             threading.current_thread().name[:24]])  # fmt: skip


def _timed(owner: Any, name: str, key: str, rows: Callable[[tuple[Any, ...]], int] | None = None) -> None:
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            event = [round(time.time(), 3), round((time.perf_counter() - wall0) * 1e3, 2), round((time.thread_time() - cpu0) * 1e3, 2)]
            if rows is not None:
                event.append(rows(args))
            EVENTS[key].append(event)

    setattr(owner, name, wrapper)


def install() -> None:
    from types import SimpleNamespace

    from twisted.internet.task import LoopingCall

    from aaa import auth_log_spool, serve
    from aaa.background import AuthLogWriter
    from aaa.cache import Cache
    from aaa.radius.server import RadiusServer

    gc.callbacks.append(_gc_callback)
    _timed(RadiusServer, "purge_duplicates", "purge")
    _timed(AuthLogWriter, "_write", "auth_log", rows=lambda args: len(args[1]))
    timed_pickle = SimpleNamespace(dumps=auth_log_spool.pickle.dumps, loads=auth_log_spool.pickle.loads,
                                   HIGHEST_PROTOCOL=auth_log_spool.pickle.HIGHEST_PROTOCOL)  # fmt: skip
    _timed(timed_pickle, "dumps", "auth_log_piece", rows=lambda args: len(args[0]))
    auth_log_spool.pickle = timed_pickle  # type: ignore[assignment]
    _timed(Cache, "refresh", "refresh")
    start = serve.Service.start

    def started(self: Any) -> None:
        start(self)

        def census() -> None:
            EVENTS["heap"].append([round(time.time(), 1), len(gc.get_objects(2)), gc.get_freeze_count()])

        loop = LoopingCall(census)
        loop.clock = self.reactor
        loop.start(2.0, now=True)

    serve.Service.start = started  # type: ignore[method-assign]


def summary(path: str) -> str:
    events = json.loads(open(path).read())  # noqa: SIM115
    gen2 = [(e[2], e[3]) for e in events["gc"] if e[1] == 2]
    young = sorted(e[3] for e in events["gc"] if e[1] < 2)
    purge = sorted(e[2] for e in events["purge"]) or [0.0]
    batches = events["auth_log"]
    lines = [
        f"full collections (gen 2), wall/CPU ms: {gen2}",
        f"young collections over 0.5 ms: {len(young)}, CPU ms max {max(young, default=0):.1f}",
        f"purge_duplicates: {len(events['purge'])} calls, CPU ms median {purge[len(purge) // 2]:.2f} max {purge[-1]:.2f}",
    ]
    if batches:
        cpu = [b[2] for b in batches]
        rows = sum(b[3] for b in batches)
        lines.append(f"auth log: {len(batches)} batches, {rows} rows, CPU ms per batch max {max(cpu):.0f}, "
                     f"{sum(cpu) / max(rows, 1) * 1e3:.1f} µs of CPU per row, wall ms max {max(b[1] for b in batches):.0f}")  # fmt: skip
    pieces = events.get("auth_log_piece", [])
    if pieces:
        cpu = sorted(p[2] for p in pieces)
        lines.append(f"auth log frames pickled (GIL held): {len(pieces)}, rows max {max(p[3] for p in pieces)}, "
                     f"CPU ms median {cpu[len(cpu) // 2]:.2f} max {cpu[-1]:.2f}")  # fmt: skip
    lines.append(f"heap (oldest generation, frozen) every 2 s: {[(h[1], h[2]) for h in events['heap']]}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="stall-probe.json", help="where the events go when the server stops")
    parser.add_argument("--summary", metavar="JSON", help="print a summary of a probe file and exit")
    parser.add_argument("aaa_args", nargs=argparse.REMAINDER, help="-- then the aaa arguments (--config ... serve)")
    args = parser.parse_args()
    if args.summary:
        print(summary(args.summary))
        return
    out = args.out
    atexit.register(lambda: open(out, "w").write(json.dumps(EVENTS)))  # noqa: SIM115
    install()
    from aaa.cli import main as aaa_main

    sys.argv = ["aaa", *[a for a in args.aaa_args if a != "--"]]
    sys.exit(aaa_main())


if __name__ == "__main__":
    main()

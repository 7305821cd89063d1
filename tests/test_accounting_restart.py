"""Start-up after a crash: every journal folder is applied before the online index is seeded, and
with ``--workers`` or PostgreSQL the index is resynced from the database. On SQLite and PostgreSQL.

The in-process tests build the real :class:`aaa.serve.Service` on an in-memory reactor; the last one
runs ``aaa serve --workers 2``, kills it while the database is locked (so acknowledged records are
only in the workers' journals) and starts it again without ``--workers``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from radius_harness import SECRET, InlineReactor, ServerProcess, accounting, status_server, wait_for
from sqlalchemy import select
from test_accounting_durability import Client, DatabaseLock

from aaa.context import Context, build_context
from aaa.db.models import AcctSession
from aaa.demo import load_demo
from aaa.radius import codec
from aaa.serve import ServeOptions, Service, replay_before_fork

T0 = 1_780_000_000.0


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Any:
    return make_settings(tmp_path, database_url, accounting={"journal_dir": "var/journal"})


@pytest.fixture
def demo(ctx: Context) -> int:
    load_demo(ctx, count=0)
    with ctx.sessions() as s:
        from aaa.db.models import Nas

        return int(s.scalar(select(Nas.id)) or 0)


def segment(folder: Path, records: list[dict[str, Any]], number: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{number:010d}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def leftovers(settings: Any, nas_id: int) -> list[Path]:
    """Journals of a crash: an earlier run with ``--workers 2`` (w0, w1) and one without (the root)."""
    root = settings.path("var/journal")
    start = lambda sid, login, at: {"t": "start", "nas": nas_id, "sid": sid, "login": login, "at": at}  # noqa: E731
    return [
        segment(root / "w0", [start("a", "joao", T0), start("b", "maria", T0 + 1)]),
        segment(root / "w1", [{"t": "on", "nas": nas_id, "at": T0 + 5}, start("c", "joao", T0 + 6)]),
        segment(root, [{"t": "stop", "nas": nas_id, "sid": "b", "login": "maria", "at": T0 + 3, "time": 2, "cause": "User-Request"},
                       start("d", "ana", T0 + 7)]),  # fmt: skip
    ]


def stored(ctx: Context) -> dict[str, tuple[bool, str | None]]:
    with ctx.sessions() as s:
        return {r.acct_session_id: (r.stopped_at is None, r.terminate_cause) for r in s.scalars(select(AcctSession))}


EXPECTED = {"a": (False, "NAS-Reboot"), "b": (False, "User-Request"), "c": (True, None), "d": (True, None)}


@pytest.fixture
def services() -> Iterator[list[Service]]:
    made: list[Service] = []
    yield made
    for service in made:
        for sock in service._sockets:
            sock.close()
        service.journal.close()
        if service.drainer.process is not None:
            service.drainer.process.close()


def service(ctx: Context, made: list[Service], workers: int = 1, index: int = 0) -> Service:
    made.append(Service(ctx, ServeOptions("127.0.0.1", 0, 0, workers, index), InlineReactor()))
    return made[-1]


def test_one_process_applies_every_journal_folder_before_seeding_the_online_index(
    ctx: Context, settings: Any, demo: int, services: list[Service]
) -> None:
    paths = leftovers(settings, demo)
    server = service(ctx, services)
    server.prepare()
    assert stored(ctx) == EXPECTED
    assert (server.online.count("joao"), server.online.count("maria"), server.online.count("ana")) == (1, 0, 1)
    assert not any(p.exists() for p in paths)
    assert server.journal.segments() == [server.journal.current]  # its own, new and empty


def test_with_workers_the_parent_applies_every_folder_before_forking(
    ctx: Context, settings: Any, demo: int, services: list[Service]
) -> None:
    paths = leftovers(settings, demo)
    assert replay_before_fork(settings).applied == 6
    assert stored(ctx) == EXPECTED and not any(p.exists() for p in paths)
    worker = service(ctx, services, workers=2, index=1)
    worker.prepare()
    assert worker.online.total() == 2 and worker.journal.folder.name == "w1"


def test_the_online_index_is_resynced_from_the_database_with_workers(ctx: Context, settings: Any, demo: int, services: list[Service]) -> None:
    """What another worker (or node) opened and closed reaches this one's index; what this one has
    acknowledged but not yet applied stays in it."""
    worker = service(ctx, services, workers=2, index=0)
    worker.prepare()
    assert worker.resync_online
    from aaa import acct_writer

    acct_writer.apply(ctx.engine, [{"t": "start", "nas": demo, "sid": "elsewhere", "login": "maria", "at": T0}])
    worker.online.started("joao", demo, "here-not-applied", T0 + 1)
    worker._resync_online()
    assert (worker.online.count("maria"), worker.online.count("joao"), worker.online.resyncs) == (1, 1, 1)
    acct_writer.apply(ctx.engine, [{"t": "on", "nas": demo, "at": T0 + 0.5}])  # another worker's Accounting-On
    worker._resync_online()
    assert (worker.online.count("maria"), worker.online.count("joao")) == (0, 1)


def test_the_drainer_tells_the_online_index_how_far_the_database_has_caught_up(
    ctx: Context, settings: Any, demo: int, services: list[Service]
) -> None:
    worker = service(ctx, services, workers=2, index=0)
    worker.prepare()
    sid = "81a00001"
    worker.journal.append({"t": "start", "nas": demo, "sid": sid, "login": "joao", "at": T0})
    worker.reactor.advance(1)  # the group commit
    worker.online.started("joao", demo, sid, T0)  # what the acknowledgement does
    worker.drainer.drain()  # seals the segment (its mark) and applies it, inline
    worker.drainer.drain()  # nothing left: everything acknowledged is applied
    assert worker.online._applied == worker.online.seq and not worker.online._log


# --- a real server ----------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def stats(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as reply:
        return dict(json.loads(reply.read()))


def answers_status_server(sock: socket.socket, port: int) -> bool:
    request = status_server()  # Identifier 200: none of the accounting requests below use it
    sock.settimeout(0.5)
    sock.sendto(request, ("127.0.0.1", port))
    try:
        reply = sock.recv(4096)
    except TimeoutError:
        return False
    return codec.decode_reply(reply, request[4:20], SECRET) is not None


@pytest.mark.slow
def test_acknowledged_by_two_workers_then_killed_everything_is_in_sessions_and_the_index(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url, security={"key_file": str(tmp_path / "var" / "aaa.key")})
    ctx = build_context(settings)
    load_demo(ctx, count=0)
    ctx.close()
    server = ServerProcess(tmp_path, database_url)
    server.start("--workers", "2")
    assert server.process is not None
    client = Client(server.acct_port)
    client.sockets += [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(6)]  # more source ports: both workers
    for sock in client.sockets:  # the worker each source port reaches is serving (a worker still loading would wait for the lock)
        wait_for(lambda sock=sock: answers_status_server(sock, server.acct_port), timeout=30, what="both workers to serve")
    lock = DatabaseLock(database_url)  # the drainers cannot write: acknowledged records stay in the journals
    try:
        for i in range(40):
            sid = f"81a{i:05x}"
            client.sockets[i % 8].sendto(accounting("Start", sid, "joao" if i < 20 else f"user{i:05d}", identifier=i), ("127.0.0.1", server.acct_port))
            client.pending[(i % 8, i)] = (b"", sid)
        acknowledged = []
        for index, sock in enumerate(client.sockets):
            sock.settimeout(2.0)
            while any(k[0] == index for k in client.pending):
                try:
                    reply = sock.recv(4096)
                except TimeoutError:
                    break
                if (index, reply[1]) in client.pending:  # not a late answer to a Status-Server above
                    acknowledged.append(client.pending.pop((index, reply[1]))[1])
        workers = {p.parent.name for p in (tmp_path / "var" / "journal").glob("w*/*.jsonl") if p.stat().st_size}
        for pid in [*children(server.process.pid), server.process.pid]:
            os.kill(pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        for sock in client.sockets:
            sock.close()
    finally:
        lock.release()
    assert len(acknowledged) == 40 and workers == {"w0", "w1"}, (len(acknowledged), workers)
    wait_for(lambda: not children(server.process.pid if server.process else 0), timeout=10, what="the workers to die")
    server.start()  # no --workers: the leftovers of w0 and w1 are applied before the index is seeded
    seen = stats(server.metrics_port)
    assert seen["online"] == 40
    check = build_context(settings)
    try:
        assert set(stored(check)) == set(acknowledged)
    finally:
        check.close()
    assert server.stop() == 0


class DiesOnce:
    """An apply process that commits its first batch and dies before answering (the server gets
    "ended"); later batches apply and answer normally."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.calls = 0

    def start(self) -> None:
        pass

    def apply(self, segments: list[Path]) -> tuple[Any, BaseException | None]:
        from aaa import acct_writer
        from aaa.apply_process import ApplyProcessEnded
        from aaa.background import apply_segments

        self.calls += 1
        result, error = apply_segments(self.engine, segments)
        if self.calls == 1:
            return acct_writer.ApplyResult(), ApplyProcessEnded("the accounting apply process ended (exit code -9)")
        return result, error

    def close(self) -> None:
        pass


def test_after_the_apply_process_died_during_a_batch_the_online_index_is_resynced(
    ctx: Context, settings: Any, demo: int, services: list[Service]
) -> None:
    """A RouterOS Start with a new reboot counter closes the NAS's older sessions in the database;
    the index learns it from the drainer's report. The child that committed it died before
    reporting, so once the journal is applied the index is rebuilt from the database - with one
    process on SQLite too, where there are no periodic resyncs."""
    worker = service(ctx, services)
    worker.prepare()
    dying = DiesOnce(ctx.engine)
    worker.drainer.process = dying  # type: ignore[assignment]
    for login, sid, at in (("maria", "81a00001", T0), ("joao", "81b00001", T0 + 10)):
        worker.journal.append({"t": "start", "nas": demo, "sid": sid, "login": login, "at": at})
        worker.online.started(login, demo, sid, at)  # what the acknowledgement does
    worker.reactor.advance(1)  # the group commit
    worker.drainer.drain()  # committed, never reported
    assert dying.calls == 1 and stored(ctx)["81a00001"] == (False, "NAS-Reboot")
    assert worker.online.count("maria") == 1 and worker.online.resyncs == 0
    worker.drainer.drain()  # nothing left to apply: the index is told everything is in the database
    assert (worker.online.count("maria"), worker.online.count("joao"), worker.online.resyncs) == (0, 1, 1)

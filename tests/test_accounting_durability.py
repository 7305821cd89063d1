"""Nothing lost: an acknowledged Accounting-Request survives SIGKILL and a database outage.

A real ``aaa serve`` subprocess and our own UDP client (codec.encode_request). Acknowledged means the
Accounting-Response arrived; the server sends it only once the record is in the journal (fsync).
On SQLite and PostgreSQL.
"""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from radius_harness import SECRET, ServerProcess, accounting, wait_for
from sqlalchemy import select

from aaa.context import Context, build_context
from aaa.db.models import AcctSession
from aaa.demo import load_demo
from aaa.radius import codec

pytestmark = pytest.mark.slow

SESSIONS = 250  # a Start and a Stop each: 500 records


@pytest.fixture(name="server")
def server_fixture(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    """``aaa serve`` (not started) on the demo data without subscribers; killed after the test."""
    settings = make_settings(tmp_path, database_url, security={"key_file": str(tmp_path / "var" / "aaa.key")})
    ctx = build_context(settings)
    load_demo(ctx, count=0)
    ctx.close()
    proc = ServerProcess(tmp_path, database_url)
    yield proc
    proc.kill()


def rows(database_url: str, tmp_path: Path) -> dict[str, AcctSession]:
    ctx: Context = build_context(
        make_settings(tmp_path, database_url, security={"key_file": str(tmp_path / "var" / "aaa.key")})
    )
    try:
        with ctx.sessions() as s:
            return {r.acct_session_id: r for r in s.scalars(select(AcctSession))}
    finally:
        ctx.close()


class Client:
    """Sends Accounting-Requests over UDP and records which were acknowledged."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
        self.pending: dict[tuple[int, int], tuple[bytes, Any]] = {}
        self.acknowledged: list[Any] = []

    def send(self, number: int, request: bytes, what: Any) -> None:
        sock = self.sockets[number % 2]
        sock.sendto(request, ("127.0.0.1", self.port))
        self.pending[(number % 2, request[1])] = (request, what)

    def collect(self, timeout: float, *, until: int | None = None) -> None:
        """Read replies until none arrives for ``timeout`` seconds (or ``until`` are acknowledged)."""
        for index, sock in enumerate(self.sockets):
            sock.settimeout(timeout)
            while until is None or len(self.acknowledged) < until:
                try:
                    reply = sock.recv(4096)
                except TimeoutError:
                    break
                request, what = self.pending.pop((index, reply[1]))
                codec.decode_reply(reply, request[4:20], SECRET)
                self.acknowledged.append(what)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def test_acknowledged_accounting_survives_sigkill(
    server: ServerProcess, database_url: str, tmp_path: Path
) -> None:
    server.start()
    client = Client(server.acct_port)
    stop_counts = {}
    for i in range(SESSIONS):
        sid = f"81a{i:05x}"
        client.send(i, accounting("Start", sid, f"user{i:05d}", identifier=i % 125), ("start", sid))
    for i in range(SESSIONS):
        sid = f"81a{i:05x}"
        stop_counts[sid] = 1000 + i
        client.send(i, accounting("Stop", sid, f"user{i:05d}", identifier=125 + i % 125, Acct_Input_Octets=1000 + i,
                                  Acct_Session_Time=60), ("stop", sid))  # fmt: skip
    client.collect(2.0, until=50)
    server.kill()  # SIGKILL while acknowledged records are still arriving: some are only in the journal
    client.collect(0.1)  # replies the server sent before it died
    client.close()
    assert len(client.acknowledged) >= 50, "too few acknowledgements to prove anything"
    server.start()  # start-up replays the journal before it answers
    stored = rows(database_url, tmp_path)
    for kind, sid in client.acknowledged:
        assert sid in stored, f"acknowledged {kind} of {sid} lost"
        if kind == "stop":
            assert stored[sid].stopped_at is not None and stored[sid].input_octets == stop_counts[sid]
    assert server.stop() == 0


class DatabaseLock:
    """Holds the sessions table so the server cannot write it (SQLite: the whole database)."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        if database_url.startswith("sqlite"):
            self.conn: Any = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
            self.conn.execute("BEGIN EXCLUSIVE")
        else:
            import psycopg

            self.conn = psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql"))
            self.conn.execute("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")

    def count(self) -> int:
        """Sessions as seen inside the lock holder's transaction."""
        return int(self.conn.execute("SELECT count(*) FROM sessions").fetchone()[0])

    def release(self) -> None:
        self.conn.rollback() if not self.url.startswith("sqlite") else self.conn.execute("ROLLBACK")
        self.conn.close()


def test_accounting_is_acknowledged_while_the_database_is_locked_and_lands_after(
    server: ServerProcess, database_url: str, tmp_path: Path
) -> None:
    server.start()
    lock = DatabaseLock(database_url)
    try:
        client = Client(server.acct_port)
        for i in range(20):
            client.send(i, accounting("Start", f"81b{i:05x}", "joao", identifier=i), ("start", f"81b{i:05x}"))
        client.collect(2.0)
        client.close()
        assert len(client.acknowledged) == 20, "accounting must be acknowledged from the journal"
        time.sleep(0.5)  # give the drainer a chance to (try to) write: it must not get through
        assert lock.count() == 0
    finally:
        lock.release()
    wait_for(
        lambda: len(rows(database_url, tmp_path)) == 20, timeout=30, what="the journal to reach the database"
    )
    assert server.stop() == 0

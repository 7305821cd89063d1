"""Service layer: a NAS's latest activity and the NAS check (activity plus a Status-Server probe)."""

from __future__ import annotations

import datetime as dt
import socket
import threading

import pytest

from aaa.db.models import AcctSession, AuthLog, utcnow
from aaa.errors import NotFoundError
from aaa.radius.codec import Code, MalformedPacket, decode, encode_reply, verify_request
from aaa.services import nas


@pytest.fixture
def routers(ctx, actor):
    nas.add_nas(ctx, name="r1", address="127.0.0.1", secret="s3cret", actor=actor)
    nas.add_nas(ctx, name="r2", address="127.0.0.2", secret="s3cret", actor=actor)
    return {n["name"]: n["id"] for n in nas.list_nas(ctx)}


def add_session(ctx, nas_id: int, sid: str, updated: dt.datetime, *, stopped: bool = False) -> None:
    with ctx.transaction() as uow:
        uow.session.add(AcctSession(
            nas_id=nas_id, acct_session_id=sid, login="maria", started_at=updated - dt.timedelta(hours=1),
            updated_at=updated, stopped_at=updated if stopped else None,
        ))


def test_activity_of_a_silent_nas_is_empty(ctx, routers):
    assert nas.nas_activity(ctx, "r1") == {
        "name": "r1", "address": "127.0.0.1", "last_auth_at": None, "last_accounting_at": None, "open_sessions": 0,
    }


def test_activity_is_the_latest_auth_and_accounting_of_that_nas_only(ctx, routers):
    now = utcnow().replace(microsecond=0)
    with ctx.transaction() as uow:
        uow.session.add_all([
            AuthLog(at=now - dt.timedelta(minutes=5), login="maria", nas_id=routers["r1"], result="accept"),
            AuthLog(at=now - dt.timedelta(minutes=1), login="joao", nas_id=routers["r1"], result="reject"),
            AuthLog(at=now, login="ana", nas_id=routers["r2"], result="accept"),
        ])
    add_session(ctx, routers["r1"], "a1", now - dt.timedelta(minutes=3))
    add_session(ctx, routers["r1"], "a2", now - dt.timedelta(minutes=2), stopped=True)
    add_session(ctx, routers["r2"], "b1", now)
    activity = nas.nas_activity(ctx, "r1")
    assert activity["last_auth_at"][:19] == (now - dt.timedelta(minutes=1)).isoformat()[:19]
    assert activity["last_accounting_at"][:19] == (now - dt.timedelta(minutes=2)).isoformat()[:19]
    assert activity["open_sessions"] == 1


def test_activity_of_an_unknown_nas_is_not_found(ctx, routers):
    with pytest.raises(NotFoundError):
        nas.nas_activity(ctx, "ghost")


class Responder:
    """A UDP socket on loopback that answers a Status-Server with ``reply_code``, signed with
    ``secret`` (or stays silent when ``reply_code`` is None), on a thread; stops by itself."""

    def __init__(self, secret: bytes, reply_code: Code | None) -> None:
        self.secret, self.reply_code = secret, reply_code
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]
        self.seen: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        with self.sock:
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                return
            request = decode(data)
            try:
                self.seen.append(request.code.name if verify_request(request, self.secret) else "unverified")
            except MalformedPacket:
                self.seen.append("unverified")
            if self.reply_code is not None:
                self.sock.sendto(encode_reply(request, self.reply_code, [], self.secret), peer)

    def __enter__(self) -> Responder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(6)


def point_r1_at(ctx, actor, port: int) -> None:
    nas.update_nas(ctx, "r1", coa_port=port, actor=actor)


def test_check_reports_a_verified_status_server_answer(ctx, routers, actor):
    with Responder(b"s3cret", Code.ACCESS_ACCEPT) as server:
        point_r1_at(ctx, actor, server.port)
        checked = nas.check_nas(ctx, "r1", timeout=3)
    assert server.seen == ["STATUS_SERVER"]
    assert checked["probe"]["outcome"] == "answered" and checked["probe"]["code"] == "ACCESS_ACCEPT"
    assert checked["open_sessions"] == 0 and checked["coa_port"] == server.port


def test_check_tells_a_wrong_secret_from_silence_and_from_a_closed_port(ctx, routers, actor):
    with Responder(b"another-secret", Code.ACCESS_ACCEPT) as server:
        point_r1_at(ctx, actor, server.port)
        assert nas.check_nas(ctx, "r1", timeout=3)["probe"]["outcome"] == "bad-secret"
    with Responder(b"s3cret", None) as server:
        point_r1_at(ctx, actor, server.port)
        assert nas.check_nas(ctx, "r1", timeout=0.3)["probe"]["outcome"] == "no-answer"
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    point_r1_at(ctx, actor, port)
    assert nas.check_nas(ctx, "r1", timeout=1)["probe"]["outcome"] == "unreachable"


def test_check_of_a_nas_defined_by_a_range_does_not_probe(ctx, actor):
    nas.add_nas(ctx, name="pool", address="127.0.10.0/24", secret="s3cret", actor=actor)
    probe = nas.check_nas(ctx, "pool", timeout=0.2)["probe"]
    assert probe["outcome"] == "skipped" and "range" in probe["detail"]


# --- Reachability of every NAS (the dashboard card) and the staggered probes -------------------------

NOW = dt.datetime(2026, 12, 3, 15, 0, tzinfo=dt.UTC)


def closed_port() -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_reachability_from_activity_lists_silent_then_quiet_then_active(ctx, routers, actor):
    nas.add_nas(ctx, name="r3", address="127.0.0.3", secret="s3cret", actor=actor)
    with ctx.transaction() as uow:
        uow.session.add(AuthLog(at=NOW - dt.timedelta(minutes=2), login="maria", nas_id=routers["r1"], result="accept"))
    add_session(ctx, routers["r2"], "b1", NOW - dt.timedelta(minutes=40))
    rows = nas.nas_reachability(ctx, now=NOW)
    assert [(r["name"], r["state"], r["seen_minutes_ago"], r["open_sessions"]) for r in rows] == [
        ("r3", "silent", None, 0), ("r2", "quiet", 40, 1), ("r1", "active", 2, 0),
    ]
    assert rows[2]["last_auth_at"].startswith("2026-12-03T14:58") and rows[2]["last_accounting_at"] is None
    assert rows[1]["last_seen_at"] == rows[1]["last_accounting_at"] and rows[1]["probe"] is None


def test_reachability_looks_back_one_hour_except_at_open_sessions(ctx, routers):
    with ctx.transaction() as uow:
        uow.session.add(AuthLog(at=NOW - dt.timedelta(hours=2), login="maria", nas_id=routers["r1"], result="accept"))
    add_session(ctx, routers["r1"], "a1", NOW - dt.timedelta(hours=2), stopped=True)
    add_session(ctx, routers["r2"], "b1", NOW - dt.timedelta(hours=3))  # open, no interim update for 3 h
    by_name = {r["name"]: r for r in nas.nas_reachability(ctx, now=NOW)}
    assert (by_name["r1"]["state"], by_name["r1"]["last_seen_at"]) == ("silent", None)
    assert (by_name["r2"]["state"], by_name["r2"]["seen_minutes_ago"]) == ("quiet", 180)


def test_a_session_closed_within_the_hour_counts_as_accounting(ctx, routers):
    add_session(ctx, routers["r1"], "a1", NOW - dt.timedelta(minutes=5), stopped=True)
    r1 = next(r for r in nas.nas_reachability(ctx, now=NOW) if r["name"] == "r1")
    assert (r1["state"], r1["seen_minutes_ago"], r1["open_sessions"]) == ("active", 5, 0)


def test_probe_schedule_probes_one_nas_per_call_and_each_at_most_once_per_interval(ctx, routers, actor):
    nas.add_nas(ctx, name="pool", address="127.0.10.0/24", secret="s3cret", actor=actor)
    for name in ("r1", "r2"):
        nas.update_nas(ctx, name, coa_port=closed_port(), actor=actor)
    ticks = [1000.0]
    schedule = nas.ProbeSchedule(ctx, interval=300, timeout=0.5, clock=lambda: ticks[0])
    assert [schedule.probe_next(), schedule.probe_next(), schedule.probe_next()] == ["r1", "r2", None]  # never the range
    assert schedule.results["r1"]["outcome"] == "unreachable" and schedule.results["r1"]["probed_at"]
    ticks[0] += 299
    assert schedule.probe_next() is None
    ticks[0] += 1
    assert schedule.probe_next() == "r1"
    rows = {r["name"]: r for r in nas.nas_reachability(ctx, now=NOW, probes=schedule.results)}
    assert rows["r2"]["probe"]["outcome"] == "unreachable" and rows["pool"]["probe"] is None

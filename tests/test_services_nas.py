"""Service layer: a NAS's latest activity (the NAS check that replaces a Status-Server probe)."""

from __future__ import annotations

import datetime as dt

import pytest

from aaa.db.models import AcctSession, AuthLog, utcnow
from aaa.errors import NotFoundError
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

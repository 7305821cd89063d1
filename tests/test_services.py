"""Service layer: the admin actions round-trip on every backend and bad input changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from aaa.db.models import AuditLog, Outbox, Subscriber
from aaa.errors import ConflictError, NotFoundError, ValidationError
from aaa.services import audit, customers, nas, outbox, plans, subscribers


@pytest.fixture
def base(ctx, actor):
    nas.add_nas(ctx, name="r1", address="127.0.0.1", secret="s3cret", actor=actor)
    plans.add_plan(ctx, name="100M", down="100M", up="50M", price="99.90", actor=actor)
    return ctx


def count(ctx, model) -> int:
    with ctx.sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_nas_plan_subscriber_round_trip(base, actor):
    subscribers.add_subscriber(base, login="ana", password="pw", plan="100M", ip="100.64.0.2", mac="aa-bb-cc-dd-ee-ff", actor=actor)
    (row,) = subscribers.list_subscribers(base)
    assert row["login"] == "ana" and row["plan"] == "100M" and row["status"] == "active"
    assert row["static_ipv4"] == "100.64.0.2" and row["mac_binding"] == "AA:BB:CC:DD:EE:FF"
    assert "password" not in row and "password_enc" not in row
    assert nas.list_nas(base)[0]["name"] == "r1" and "secret" not in nas.list_nas(base)[0]
    assert plans.show_plan(base, "100M")["subscribers"] == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"login": "ana", "plan": "nope"}, "plan 'nope' not found"),
        ({"login": "ana", "plan": "100M", "ip": "300.1.1.1"}, "invalid static IP"),
        ({"login": "ana", "plan": "100M", "mac": "zz"}, "invalid MAC"),
        ({"login": "bad login", "plan": "100M"}, "invalid login"),
    ],
)
def test_bad_subscriber_input_is_refused_and_stores_nothing(base, actor, fields, message):
    with pytest.raises((ValidationError, NotFoundError), match=message):
        subscribers.add_subscriber(base, password="pw", actor=actor, **fields)
    assert count(base, Subscriber) == 0


def test_duplicate_login_is_a_conflict(base, actor):
    subscribers.add_subscriber(base, login="ana", password="pw", plan="100M", actor=actor)
    with pytest.raises(ConflictError, match="subscriber 'ana' already exists"):
        subscribers.add_subscriber(base, login="ana", password="other", plan="100M", actor=actor)
    assert count(base, Subscriber) == 1


@pytest.mark.parametrize("rate", ["100X", "0", "-5M", "M"])
def test_bad_rate_strings_are_refused(ctx, actor, rate):
    with pytest.raises(ValidationError, match="invalid download rate"):
        plans.add_plan(ctx, name="p", down=rate, up="1M", actor=actor)
    assert plans.list_plans(ctx) == []


@pytest.mark.parametrize("address", ["10.0.0.300", "10.0.0.0/33", "router"])
def test_bad_nas_address_is_refused(ctx, actor, address):
    with pytest.raises(ValidationError, match="invalid NAS address"):
        nas.add_nas(ctx, name="r", address=address, secret="s", actor=actor)
    assert nas.list_nas(ctx) == []


def test_invalid_cpf_is_refused_without_echoing_it(ctx, actor):
    with pytest.raises(ValidationError) as info:
        customers.add_customer(ctx, name="Bob", document="123.456.789-00", actor=actor)
    assert "123.456.789-00" not in str(info.value) and "12345678900" not in str(info.value)
    assert customers.list_customers(ctx) == []


def test_customer_personal_data_is_masked_and_reveal_is_audited(ctx, actor):
    c = customers.add_customer(ctx, name="Maria", document="529.982.247-25", phone="(11) 98765-4321", actor=actor)
    assert c["document"] != "52998224725" and c["phone"].endswith("4321") and "98765" not in c["phone"]
    shown = customers.show_customer(ctx, c["id"], actor="admin:ana", reveal=True)
    assert shown["document"] == "52998224725"
    entries = audit.list_entries(ctx)
    assert entries[0]["action"] == "customer.reveal" and entries[0]["actor"] == "admin:ana"


def test_customer_found_by_cpf_through_keyed_hash(ctx, actor):
    customers.add_customer(ctx, name="Maria", document="52998224725", actor=actor)
    assert [c["name"] for c in customers.find_customers(ctx, "529.982.247-25")] == ["Maria"]


def test_duplicate_cpf_is_a_conflict(ctx, actor):
    customers.add_customer(ctx, name="Maria", document="52998224725", actor=actor)
    with pytest.raises(ConflictError):
        customers.add_customer(ctx, name="Maria 2", document="529.982.247-25", actor=actor)


def _open_session(ctx, login: str) -> None:
    from aaa.db.models import AcctSession, Nas, utcnow

    with ctx.transaction() as uow:
        nas_id = uow.session.scalar(select(Nas.id))
        now = utcnow()
        uow.session.add(AcctSession(nas_id=nas_id, acct_session_id="81500001", login=login, framed_ip="100.64.0.9", started_at=now, updated_at=now))


def test_suspend_with_open_session_queues_one_outbox_row_and_records_history(base, actor):
    subscribers.add_subscriber(base, login="ana", password="pw", plan="100M", actor=actor)
    _open_session(base, "ana")
    subscribers.suspend(base, "ana", actor=actor, reason="overdue")
    rows = outbox.list_rows(base)
    assert len(rows) == 1 and rows[0]["kind"] == "radius.reauthorize"
    assert rows[0]["payload"]["acct_session_id"] == "81500001" and rows[0]["payload"]["cause"] == "status:suspended"
    history = subscribers.show_subscriber(base, "ana")["history"]
    assert history[0]["to"] == "suspended" and history[0]["actor"] == actor and history[0]["reason"] == "overdue"


def test_suspend_without_session_sends_nothing(base, actor):
    subscribers.add_subscriber(base, login="ana", password="pw", plan="100M", actor=actor)
    subscribers.suspend(base, "ana", actor=actor)
    assert count(base, Outbox) == 0


def test_set_plan_queues_reauthorize_and_fires_event(base, actor):
    events = []

    class Listener:
        from aaa import hookimpl

        @hookimpl
        def aaa_subscriber_plan_changed(self, subscriber, old_plan, new_plan, actor):
            events.append((subscriber["login"], old_plan, new_plan))

    base.pm.register(Listener())
    plans.add_plan(base, name="300M", down="300M", up="150M", actor=actor)
    subscribers.add_subscriber(base, login="ana", password="pw", plan="100M", actor=actor)
    _open_session(base, "ana")
    subscribers.set_plan(base, "ana", "300M", actor=actor)
    assert events == [("ana", "100M", "300M")]
    assert [r["payload"]["cause"] for r in outbox.list_rows(base)] == ["plan"]


def test_plan_change_without_an_open_session_sends_nothing(base, actor):
    """Issue 4: with no open session nothing is queued; the next login gets the new plan."""
    plans.add_plan(base, name="300M", down="300M", up="150M", actor=actor)
    subscribers.add_subscriber(base, login="ana", password="pw", plan="100M", actor=actor)
    result = subscribers.set_plan(base, "ana", "300M", actor=actor)
    assert result["outbox"] == [] and result["plan"] == "300M" and count(base, Outbox) == 0


def test_every_status_change_fires_the_state_changed_event_with_its_cause(base, actor):
    events = []

    class Listener:
        from aaa import hookimpl

        @hookimpl
        def aaa_subscriber_state_changed(self, subscriber, old_status, new_status, actor, reason):
            events.append((subscriber["login"], old_status, new_status, actor, reason))

    base.pm.register(Listener())
    subscribers.add_subscriber(base, login="ana", password="pw", plan="100M", actor=actor)
    subscribers.suspend(base, "ana", actor=actor, reason="overdue")
    subscribers.reactivate(base, "ana", actor="payment")
    assert events == [("ana", "active", "suspended", actor, "overdue"), ("ana", "suspended", "active", "payment", "reactivated by admin")]


def test_event_is_not_fired_when_the_transaction_rolls_back(base, actor):
    events = []

    class Listener:
        from aaa import hookimpl

        @hookimpl
        def aaa_subscriber_state_changed(self, subscriber, old_status, new_status, actor, reason):
            events.append(new_status)

    base.pm.register(Listener())
    subscribers.add_subscriber(base, login="ana", password="pw", plan="100M", actor=actor)
    with pytest.raises(RuntimeError), base.transaction() as uow:
        sub = uow.session.scalar(select(Subscriber))
        subscribers.change_status(uow, sub, "suspended", actor=actor)
        raise RuntimeError("boom")
    assert events == []
    assert subscribers.show_subscriber(base, "ana")["status"] == "active"


def test_audit_chain_detects_tampering(base):
    assert audit.verify(base) == (True, None)
    with base.transaction() as uow:
        entry = uow.session.scalar(select(AuditLog).order_by(AuditLog.id))
        entry.target = "someone-else"
    ok, bad = audit.verify(base)
    assert not ok and bad == 1


def test_plan_in_use_cannot_be_deleted(base, actor):
    subscribers.add_subscriber(base, login="ana", password="pw", plan="100M", actor=actor)
    with pytest.raises(ConflictError, match="used by 1 subscriber"):
        plans.delete_plan(base, "100M", actor=actor)


def test_passwords_and_cpf_are_not_stored_in_clear(base, actor, database_url):
    customers.add_customer(base, name="Maria", document="52998224725", phone="11987654321", actor=actor)
    subscribers.add_subscriber(base, login="ana", password="SuperSecretPw1", plan="100M", actor=actor)
    nas.add_nas(base, name="r2", address="10.0.0.1", secret="NasSecretXyz", actor=actor)
    from sqlalchemy import text

    with base.engine.connect() as conn:
        dump = repr(conn.execute(text("SELECT * FROM subscribers")).all())
        dump += repr(conn.execute(text("SELECT * FROM customers")).all())
        dump += repr(conn.execute(text("SELECT * FROM nas")).all())
    for secret in ("SuperSecretPw1", "52998224725", "NasSecretXyz", "11987654321"):
        assert secret not in dump
    if database_url.startswith("sqlite"):
        raw = open(database_url.removeprefix("sqlite:///"), "rb").read()
        raw += open(database_url.removeprefix("sqlite:///") + "-wal", "rb").read() if __import__("os").path.exists(database_url.removeprefix("sqlite:///") + "-wal") else b""
        for secret in (b"SuperSecretPw1", b"52998224725", b"NasSecretXyz"):
            assert secret not in raw


def test_subscriber_found_by_customer_cpf_or_phone(base, actor):
    c = customers.add_customer(base, name="Maria", document="529.982.247-25", phone="(11) 98765-4321", actor=actor)
    subscribers.add_subscriber(base, login="maria", password="pw", plan="100M", customer_id=c["id"], actor=actor)
    subscribers.add_subscriber(base, login="other", password="pw", plan="100M", actor=actor)
    assert [r["login"] for r in subscribers.list_subscribers(base, search="52998224725")] == ["maria"]
    assert [r["login"] for r in subscribers.list_subscribers(base, search="+55 11 98765-4321")] == ["maria"]
    assert [r["login"] for r in subscribers.list_subscribers(base, search="mari")] == ["maria"]


def test_disconnect_queues_a_forced_disconnect_per_open_session(base, actor):
    subscribers.add_subscriber(base, login="ana", password="pw", plan="100M", actor=actor)
    _open_session(base, "ana")
    result = subscribers.disconnect(base, "ana", actor=actor, reason="support call")
    (row,) = outbox.list_rows(base)
    assert result["outbox"] == [row["id"]] and row["payload"]["cause"] == "disconnect"


def test_auth_per_minute_counts_each_minute_of_the_last_hour_in_sql(ctx):
    """Rows written by the server's auth log writer land in the right minute of the sparkline;
    older rows, newer rows and other results are left out."""
    from radius_harness import InlinePool, InlineReactor

    from aaa.background import AuthLogWriter
    from aaa.services import overview

    now = dt.datetime(2026, 12, 3, 12, 30, 40, tzinfo=dt.UTC)
    log = AuthLogWriter(InlineReactor(), InlinePool(), ctx.engine)  # type: ignore[arg-type]

    def decision(at: dt.datetime, result: str) -> None:
        log((at.timestamp(), "ana", None, result, "pap", None, None))

    decision(now, "accept")  # this minute: the last slot
    decision(now.replace(second=0), "accept")
    decision(now - dt.timedelta(minutes=1), "reject")
    decision(now - dt.timedelta(minutes=59, seconds=40), "accept")  # 11:31:00, the first slot
    decision(now - dt.timedelta(minutes=60), "accept")  # 11:30:40, before the hour
    decision(now + dt.timedelta(minutes=2), "accept")  # after now
    decision(now, "other")
    log.flush()
    counts = overview.auth_per_minute(ctx, now=now)
    assert log.written == 7
    assert len(counts["accept"]) == len(counts["reject"]) == 60
    assert (counts["accept"][-1], counts["accept"][0], sum(counts["accept"])) == (2, 1, 3)
    assert (counts["reject"][-2], sum(counts["reject"])) == (1, 1)

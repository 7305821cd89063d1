"""Policy: rate-limit strings, status treatment, what a live session is told, trust unlock."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from aaa.errors import ConflictError, ValidationError
from aaa.services import nas, outbox, plans, subscribers
from policy.entitlement import PlanReplies, PolicySettings, refusal, reply_attributes, session_update
from policy.ratelimit import rate_limit

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def plan(**kw):
    base = dict(id=7, name="p", download_bps=100_000_000, upload_bps=50_000_000, burst_download_bps=None, burst_upload_bps=None,
                burst_threshold_download_bps=None, burst_threshold_upload_bps=None, burst_time_seconds=None, priority=None,
                ipv4_pool=None, ipv6_pool=None, delegated_ipv6_pool=None, session_timeout=None, idle_timeout=None,
                interim_interval=None, data_limit_bytes=None, mikrotik_group=None)  # fmt: skip
    return SimpleNamespace(**{**base, **kw})


def sub(**kw):
    base = dict(id=3, login="ana", status="active", static_ipv4=None, delegated_ipv6_prefix=None, trust_unlock_until=None)
    return SimpleNamespace(**{**base, **kw})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "50M/100M"),
        ({"download_bps": 512_000, "upload_bps": 256_000}, "256k/512k"),
        ({"burst_download_bps": 400_000_000, "burst_upload_bps": 200_000_000, "burst_threshold_download_bps": 80_000_000,
          "burst_threshold_upload_bps": 40_000_000, "burst_time_seconds": 8}, "50M/100M 200M/400M 40M/80M 8/8"),  # fmt: skip
        ({"burst_download_bps": 200_000_000, "burst_upload_bps": 100_000_000}, "50M/100M 100M/200M 50M/100M 1/1"),
        ({"priority": 5}, "50M/100M 0/0 0/0 0/0 5"),
        ({"download_bps": 1_500_000, "upload_bps": 1_000_000}, "1M/1500k"),
    ],
)
def test_rate_limit_is_routeros_format_upload_first(fields, expected):
    assert rate_limit(plan(**fields)) == expected


def test_reply_has_plan_addresses_limits_and_class():
    attrs = dict(reply_attributes(sub(static_ipv4="100.64.0.9"), plan(data_limit_bytes=5 * 2**32 + 7, session_timeout=86400), PolicySettings(), NOW))
    assert attrs["Mikrotik-Rate-Limit"] == "50M/100M" and attrs["Framed-IP-Address"] == "100.64.0.9"
    assert (attrs["Mikrotik-Total-Limit"], attrs["Mikrotik-Total-Limit-Gigawords"]) == (7, 5)
    assert attrs["Session-Timeout"] == 86400 and attrs["Acct-Interim-Interval"] == 300 and attrs["Class"] == "aaa:3:7"


@pytest.mark.parametrize(
    ("subscriber", "the_plan", "settings"),
    [
        (sub(static_ipv4="100.64.0.9"), plan(data_limit_bytes=5 * 2**32 + 7, session_timeout=86400, idle_timeout=600), PolicySettings()),
        (sub(delegated_ipv6_prefix="2804:db8:1::/56"), plan(ipv4_pool="p4", ipv6_pool="p6", mikrotik_group="g"), PolicySettings()),
        (sub(status="reduced"), plan(delegated_ipv6_pool="pd", interim_interval=60), PolicySettings(reduced_percent=10)),
        (sub(status="suspended", static_ipv4="100.64.0.9"), plan(ipv4_pool="p4"),
         PolicySettings(suspended_treatment="blocked", blocked_pool="bloqueados", extra_reply={"Filter-Id": "x"})),
    ],
)
def test_plan_replies_give_the_same_attributes_as_building_them(subscriber, the_plan, settings):
    memo = PlanReplies()
    built = reply_attributes(subscriber, the_plan, settings, NOW)
    assert reply_attributes(subscriber, the_plan, settings, NOW, plans=memo) == built
    assert reply_attributes(subscriber, the_plan, settings, NOW, plans=memo) == built  # from the memo


def test_plan_replies_are_reused_until_the_plan_object_changes():
    memo, settings, fibra = PlanReplies(), PolicySettings(), plan()
    assert memo.get(fibra, settings, False, 1.0) is memo.get(fibra, settings, False, 1.0)
    edited = plan(download_bps=200_000_000)  # what a cache refresh puts in place of the edited row
    assert memo.get(edited, settings, False, 1.0)[0][0] == ("Mikrotik-Rate-Limit", "50M/200M")
    assert memo.get(edited, PolicySettings(interim_interval=60), False, 1.0)[1] == (("Acct-Interim-Interval", 60),)


@pytest.mark.parametrize(
    ("status", "treatment", "refused"),
    [("active", "reject", None), ("notified", "reject", None), ("suspended", "reject", "service suspended for non-payment"),
     ("suspended", "blocked", None), ("disabled", "blocked", "account disabled"), ("terminated", "reject", "contract terminated")],
)
def test_who_may_log_in(status, treatment, refused):
    assert refusal(sub(status=status), PolicySettings(suspended_treatment=treatment), NOW) == refused


def test_blocked_profile_for_suspended_subscriber():
    attrs = dict(reply_attributes(sub(status="suspended"), plan(ipv4_pool="clientes"), PolicySettings(suspended_treatment="blocked", blocked_pool="bloqueados"), NOW))
    assert attrs["Mikrotik-Address-List"] == "aaa_blocked" and attrs["Mikrotik-Rate-Limit"] == "512k/512k"
    assert attrs["Framed-Pool"] == "bloqueados"


def test_trust_unlock_period_serves_the_plan():
    unlocked = sub(status="suspended", trust_unlock_until=NOW + dt.timedelta(days=1))
    assert refusal(unlocked, PolicySettings(), NOW) is None
    assert dict(reply_attributes(unlocked, plan(), PolicySettings(), NOW))["Mikrotik-Rate-Limit"] == "50M/100M"


def test_reduced_status_cuts_the_speed():
    attrs = dict(reply_attributes(sub(status="reduced"), plan(), PolicySettings(reduced_percent=10), NOW))
    assert attrs["Mikrotik-Rate-Limit"] == "5M/10M"


@pytest.mark.parametrize(
    ("status", "cause", "treatment", "action"),
    [("active", "plan", "reject", "coa"), ("suspended", "status:suspended", "reject", "disconnect"),
     ("suspended", "status:suspended", "blocked", "disconnect"), ("active", "status:active", "blocked", "disconnect"),
     ("reduced", "status:reduced", "reject", "coa"), ("active", "status:active", "reject", "coa")],
)
def test_live_session_gets_coa_or_disconnect(status, cause, treatment, action):
    decision = session_update(sub(status=status), plan(), cause, PolicySettings(suspended_treatment=treatment), NOW)
    assert decision["action"] == action
    if action == "coa":
        names = {n for n, _ in decision["attributes"]}
        assert "Mikrotik-Rate-Limit" in names and not names & {"Framed-IP-Address", "Class", "Framed-Pool"}


@pytest.fixture
def suspended(ctx, actor):
    nas.add_nas(ctx, name="r1", address="127.0.0.1", secret="s", actor=actor)
    plans.add_plan(ctx, name="100M", down="100M", up="50M", actor=actor)
    subscribers.add_subscriber(ctx, login="ana", password="pw", plan="100M", actor=actor)
    subscribers.suspend(ctx, "ana", actor=actor)
    return ctx


def test_trust_unlock_once_per_cycle(suspended, actor):
    now = dt.datetime(2026, 11, 10, 15, tzinfo=dt.UTC)
    row = subscribers.trust_unlock(suspended, "ana", actor=actor, days=3, now=now)
    assert row["trust_unlock_until"].startswith("2026-11-13")
    with pytest.raises(ConflictError, match="already used the trust unlock of cycle 2026-11"):
        subscribers.trust_unlock(suspended, "ana", actor=actor, now=now + dt.timedelta(days=5))
    assert subscribers.trust_unlock(suspended, "ana", actor=actor, now=dt.datetime(2026, 12, 2, tzinfo=dt.UTC))["trust_unlock_until"]


def test_trust_unlock_refused_when_not_suspended(ctx, actor):
    plans.add_plan(ctx, name="100M", down="100M", up="50M", actor=actor)
    subscribers.add_subscriber(ctx, login="bob", password="pw", plan="100M", actor=actor)
    with pytest.raises(ValidationError, match="is active, not suspended"):
        subscribers.trust_unlock(ctx, "bob", actor=actor)


def test_trust_unlock_expiry_clears_and_counts(suspended, actor):
    now = dt.datetime(2026, 11, 10, 15, tzinfo=dt.UTC)
    subscribers.trust_unlock(suspended, "ana", actor=actor, days=3, now=now)
    assert subscribers.expire_trust_unlocks(suspended, now=now + dt.timedelta(days=1)) == 0
    assert subscribers.expire_trust_unlocks(suspended, now=now + dt.timedelta(days=4)) == 1
    shown = subscribers.show_subscriber(suspended, "ana")
    assert shown["trust_unlock_until"] is None and shown["history"][0]["kind"] == "trust-unlock-expired"
    assert outbox.list_rows(suspended) == []  # no open session, nothing to send


def lifecycle_table_case(ctx, actor, reduce_after: int = 0):
    from policy import lifecycle

    ctx.settings.plugins.settings["policy"] = {"reduce_after_days": reduce_after} if reduce_after else {}
    plans.add_plan(ctx, name="100M", down="100M", up="50M", actor=actor)
    subscribers.add_subscriber(ctx, login="ana", password="pw", plan="100M", actor=actor)
    return lifecycle


@pytest.mark.parametrize(
    ("reduce_after", "days_after_notice", "expected"),
    [(0, 0, "notified"), (0, 14, "notified"), (0, 15, "suspended"), (0, 40, "suspended"),
     (5, 4, "notified"), (5, 5, "reduced"), (5, 15, "suspended")],
)
def test_life_cycle_by_days_after_the_notice(ctx, actor, reduce_after, days_after_notice, expected):
    lifecycle = lifecycle_table_case(ctx, actor, reduce_after)
    assert lifecycle.on_overdue(ctx, "ana", "000001")
    noticed = dt.datetime.now(dt.UTC)
    for day in range(0, days_after_notice + 1):  # the job runs every day
        lifecycle.evaluate(ctx, now=noticed + dt.timedelta(days=day, hours=1))
    assert subscribers.show_subscriber(ctx, "ana")["status"] == expected


def test_payment_reactivates_and_termination_is_only_flagged(ctx, actor):
    lifecycle = lifecycle_table_case(ctx, actor)
    lifecycle.on_overdue(ctx, "ana", "000001")
    noticed = dt.datetime.now(dt.UTC)
    lifecycle.evaluate(ctx, now=noticed + dt.timedelta(days=15, hours=1))
    counts = lifecycle.evaluate(ctx, now=noticed + dt.timedelta(days=76))
    shown = subscribers.show_subscriber(ctx, "ana")
    assert counts["termination_allowed"] == 1 and shown["status"] == "suspended"
    assert shown["history"][0]["kind"] == "termination-allowed"
    assert lifecycle.evaluate(ctx, now=noticed + dt.timedelta(days=77))["termination_allowed"] == 0
    assert lifecycle.on_paid(ctx, "ana", "000001")
    history = subscribers.show_subscriber(ctx, "ana")["history"]
    assert history[0]["to"] == "active" and history[0]["actor"] == "payment"


def _online(ctx, login: str = "ana") -> None:
    from aaa.db.models import AcctSession, utcnow

    with ctx.transaction() as uow:
        now = utcnow()
        uow.session.add(AcctSession(nas_id=nas.show_nas(ctx, "r1")["id"], acct_session_id="81a00001", login=login,
                                    framed_ip="100.64.0.9", started_at=now, updated_at=now))  # fmt: skip


@pytest.mark.parametrize("treatment", ["reject", "blocked"])
def test_trust_unlock_and_its_unpaid_end_each_reach_the_open_session(suspended, actor, treatment):
    """The unlock queues a reauthorize that serves the plan again; when the period ends unpaid the
    expiry queues one that puts the session back under the suspended treatment (a Disconnect: the
    router's next login is refused or gets the blocked profile)."""
    rules = PolicySettings(suspended_treatment=treatment)
    _online(suspended)
    now = dt.datetime(2026, 11, 10, 15, tzinfo=dt.UTC)
    unlocked = subscribers.trust_unlock(suspended, "ana", actor=actor, days=3, now=now)
    (row,) = [r for r in outbox.list_rows(suspended) if r["id"] in unlocked["outbox"]]
    assert (row["payload"]["cause"], row["payload"]["acct_session_id"]) == ("trust-unlock", "81a00001")
    during = sub(status="suspended", trust_unlock_until=now + dt.timedelta(days=3))
    assert refusal(during, rules, now + dt.timedelta(days=1)) is None
    assert dict(reply_attributes(during, plan(), rules, now + dt.timedelta(days=1)))["Mikrotik-Rate-Limit"] == "50M/100M"

    assert subscribers.expire_trust_unlocks(suspended, now=now + dt.timedelta(days=3, minutes=1)) == 1
    rows = outbox.list_rows(suspended)
    assert rows[0]["payload"]["cause"] == "status:suspended" and rows[0]["payload"]["acct_session_id"] == "81a00001"
    after = sub(status="suspended", trust_unlock_until=None)
    assert session_update(after, plan(), "status:suspended", rules, now + dt.timedelta(days=4))["action"] == "disconnect"
    shown = subscribers.show_subscriber(suspended, "ana")
    assert shown["status"] == "suspended" and shown["history"][0]["actor"] == "job:trust-unlock"
    with pytest.raises(ConflictError, match="already used the trust unlock of cycle 2026-11"):
        subscribers.trust_unlock(suspended, "ana", actor=actor, now=now + dt.timedelta(days=5))


def test_the_trust_unlock_expiry_runs_as_a_job_every_minute():
    from policy import plugin

    jobs = {}
    plugin.aaa_register_jobs(register=lambda name, seconds, function: jobs.update({name: (seconds, function)}))
    assert jobs["trust-unlock-expiry"][0] == 60 and jobs["policy-lifecycle"][0] == 3600


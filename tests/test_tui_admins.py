"""Admin users in the service layer: argon2 passwords, lock-out, TOTP (RFC 6238 vectors), permissions."""

from __future__ import annotations

import datetime as dt

import pytest

from aaa.db.models import utcnow
from aaa.errors import PermissionDenied, ValidationError
from aaa.services import admins, audit, subscribers

SEED = b"12345678901234567890"


pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.mark.parametrize(
    ("at", "code"),
    [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"), (1234567890, "89005924"), (2000000000, "69279037"), (20000000000, "65353130")],
)
def test_totp_matches_rfc6238_sha1_vectors(at, code):
    assert admins.totp(SEED, at, digits=8) == code


def test_totp_accepts_one_step_of_clock_drift_only():
    secret = admins.new_totp_secret()
    code = admins.totp(secret, 1_000_000)
    assert admins.verify_totp(secret, code, 1_000_000 + 30)
    assert not admins.verify_totp(secret, code, 1_000_000 + 90)


def test_password_is_stored_as_argon2_and_never_listed(ctx):
    admins.add_admin(ctx, username="ana", password="segredo123", role="operator", actor="test")
    listed = admins.list_admins(ctx)
    assert listed[0]["username"] == "ana" and "segredo123" not in repr(listed) and "password_hash" not in listed[0]
    with ctx.sessions() as s:
        from aaa.db.models import AdminUser

        assert s.query(AdminUser).one().password_hash.startswith("$argon2id$")


def test_login_success_and_failure_are_audited(ctx):
    admins.add_admin(ctx, username="ana", password="segredo123", role="operator", actor="test")
    session = admins.authenticate(ctx, "ana", "segredo123")
    assert session == admins.AdminSession("ana", "operator") and session.actor == "admin:ana"
    with pytest.raises(PermissionDenied, match="invalid username or password"):
        admins.authenticate(ctx, "ana", "wrong-password")
    actions = [e["action"] for e in audit.list_entries(ctx)]
    assert actions[:2] == ["admin.login.failed", "admin.login"]
    assert audit.verify(ctx) == (True, None)


def test_five_failures_lock_the_user_then_the_lock_expires(ctx):
    admins.add_admin(ctx, username="ana", password="segredo123", role="operator", actor="test")
    for _ in range(admins.MAX_FAILED_LOGINS):
        with pytest.raises(PermissionDenied):
            admins.authenticate(ctx, "ana", "wrong-password")
    with pytest.raises(PermissionDenied, match="locked"):
        admins.authenticate(ctx, "ana", "segredo123")
    later = utcnow() + dt.timedelta(minutes=admins.LOCK_MINUTES + 1)
    assert admins.authenticate(ctx, "ana", "segredo123", now=later).username == "ana"


def test_totp_is_required_when_enabled(ctx):
    admins.add_admin(ctx, username="ana", password="segredo123", role="admin", actor="test")
    secret = admins.enable_totp(ctx, "ana", actor="test")
    with pytest.raises(admins.TotpRequired):
        admins.authenticate(ctx, "ana", "segredo123")
    with pytest.raises(PermissionDenied, match="TOTP"):
        admins.authenticate(ctx, "ana", "segredo123", totp="000000" if admins.totp(secret) != "000000" else "111111")
    assert admins.authenticate(ctx, "ana", "segredo123", totp=admins.totp(secret)).role == "admin"


def test_unknown_role_and_short_password_are_refused(ctx):
    with pytest.raises(ValidationError, match="unknown role"):
        admins.add_admin(ctx, username="ana", password="segredo123", role="root", actor="test")
    with pytest.raises(ValidationError, match="too short"):
        admins.add_admin(ctx, username="ana", password="123", role="admin", actor="test")


def test_auditor_may_look_but_not_suspend(ctx):
    auditor = admins.AdminSession("carla", "auditor")
    assert admins.can("auditor", "subscriber.view") and not admins.can("auditor", "subscriber.suspend")
    with pytest.raises(PermissionDenied):
        admins.perform(auditor, "subscriber.suspend", subscribers.suspend, ctx, "anyone")


def test_unknown_action_is_an_error_not_a_grant():
    with pytest.raises(ValidationError):
        admins.can("admin", "subscriber.suspnd")


def test_demo_admin_is_created_once(ctx):
    admins.ensure_demo_admin(ctx)
    assert "already exists" in admins.ensure_demo_admin(ctx)
    assert admins.authenticate(ctx, admins.DEMO_USERNAME, admins.DEMO_PASSWORD).role == "admin"

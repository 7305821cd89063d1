"""Admin users: roles, argon2 passwords, optional TOTP, lock-out after failed logins, permissions.

Roles are ``admin``, ``operator``, ``finance`` and ``auditor``. :func:`can` answers whether a role may
do an action (the TUI hides what it may not), :func:`require` refuses it in the service layer, and
:func:`perform` runs a service function behind that check with ``actor=admin:<username>``.
Every login attempt, good or bad, lands in the audit log. The TOTP second factor (RFC 6238,
HMAC-SHA1, 6 digits, 30 s) is our own small implementation; its secret is kept encrypted by the vault.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hmac
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from aaa import validate
from aaa.context import Context
from aaa.db.models import AdminUser, utcnow
from aaa.errors import PermissionDenied, ValidationError
from aaa.services import audit
from aaa.services.common import ensure_free, find, iso

T = TypeVar("T")

ROLES = ("admin", "operator", "finance", "auditor")
MAX_FAILED_LOGINS = 5
LOCK_MINUTES = 15
MIN_PASSWORD_LENGTH = 8
DEMO_USERNAME = "admin"
DEMO_PASSWORD = "admin123"

_VIEW = frozenset(ROLES)
_STAFF = frozenset({"admin", "operator"})
_MONEY = frozenset({"admin", "finance"})
_ADMIN = frozenset({"admin"})

#: action -> roles that may do it. Unknown actions are an error, so a typo cannot grant anything.
PERMISSIONS: dict[str, frozenset[str]] = {
    "dashboard.view": _VIEW,
    "subscriber.view": _VIEW,
    "subscriber.suspend": _STAFF | _MONEY,
    "subscriber.reactivate": _STAFF | _MONEY,
    "subscriber.set_plan": _STAFF,
    "subscriber.reset_password": _STAFF,
    "subscriber.trust_unlock": _STAFF,
    "subscriber.disconnect": _STAFF,
    "subscriber.edit": _STAFF,
    "subscriber.delete": _ADMIN,
    "customer.reveal": _STAFF | _MONEY,
    "session.view": _VIEW,
    "nas.view": _VIEW,
    "nas.edit": _ADMIN,
    "plan.view": _VIEW,
    "plan.edit": _ADMIN,
    "outbox.view": _VIEW,
    "outbox.retry": _STAFF,
    "invoice.view": _VIEW,
    "invoice.edit": _MONEY,
    "invoice.export": _MONEY,
    "plugins.view": _VIEW,
    "audit.view": frozenset({"admin", "auditor"}),
    "admin.manage": _ADMIN,
}

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown users (made on first need: hashing costs a while)."""
    return _hasher.hash("not a real password, for timing only")


class TotpRequired(PermissionDenied):
    """The password was right but this admin needs a TOTP code to finish logging in."""


@dataclass(frozen=True)
class AdminSession:
    """Who is logged in and with which role; what the TUI and the guards work from."""

    username: str
    role: str

    @property
    def actor(self) -> str:
        return f"admin:{self.username}"

    def can(self, action: str) -> bool:
        return can(self.role, action)


# --- Permissions -----------------------------------------------------------------------------------


def can(role: str, action: str) -> bool:
    """Whether ``role`` may do ``action`` (see :data:`PERMISSIONS`)."""
    try:
        return role in PERMISSIONS[action]
    except KeyError:
        raise ValidationError(f"unknown action {action!r}") from None


def require(session: AdminSession, action: str) -> None:
    """PermissionDenied unless the session's role may do ``action``."""
    if not can(session.role, action):
        raise PermissionDenied(f"role {session.role!r} may not {action}")


def perform(session: AdminSession, action: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a service ``function`` for this admin: checked by :func:`require`, with ``actor`` set."""
    require(session, action)
    return function(*args, actor=session.actor, **kwargs)


# --- TOTP (RFC 6238 over RFC 4226) ------------------------------------------------------------------


def new_totp_secret() -> str:
    """A random 160-bit secret in base32, the form authenticator apps take."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")


def _b32decode(secret: str) -> bytes:
    text = secret.replace(" ", "").upper()
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError:
        raise ValidationError("invalid TOTP secret") from None


def hotp(key: bytes, counter: int, *, digits: int = 6, digest: str = "sha1") -> str:
    """RFC 4226: HMAC of the counter, dynamic truncation, ``digits`` decimal digits."""
    mac = hmac.new(key, struct.pack(">Q", counter), digest).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def totp(secret: str | bytes, at: float | None = None, *, step: int = 30, digits: int = 6, digest: str = "sha1") -> str:
    """RFC 6238: the code for time ``at`` (Unix seconds, default now); ``secret`` bytes or base32."""
    key = secret if isinstance(secret, bytes) else _b32decode(secret)
    moment = time.time() if at is None else at
    return hotp(key, int(moment // step), digits=digits, digest=digest)


def verify_totp(secret: str, code: str, at: float | None = None, *, window: int = 1, step: int = 30) -> bool:
    """True if ``code`` matches the current step or one of ``window`` steps either side (clock drift)."""
    code = code.strip().replace(" ", "")
    if not code.isdigit():
        return False
    moment = time.time() if at is None else at
    return any(
        hmac.compare_digest(totp(secret, moment + k * step, step=step, digits=len(code)), code)
        for k in range(-window, window + 1)
    )


def totp_uri(username: str, secret: str, *, issuer: str = "aaa") -> str:
    """The ``otpauth://`` URI to show as a QR code for authenticator apps."""
    label = quote(f"{issuer}:{username}")
    return f"otpauth://totp/{label}?secret={secret}&issuer={quote(issuer)}"


# --- Admin users -----------------------------------------------------------------------------------


def as_dict(user: AdminUser) -> dict[str, Any]:
    """Never includes the password hash or the TOTP secret."""
    return {
        "username": user.username,
        "role": user.role,
        "active": user.active,
        "totp": user.totp_secret_enc is not None,
        "failed_logins": user.failed_logins,
        "locked_until": iso(user.locked_until),
        "last_login_at": iso(user.last_login_at),
        "created_at": iso(user.created_at),
    }


def _role(role: str) -> str:
    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return role


def _password_hash(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode()) > 1024:
        raise ValidationError("password too long")
    return _hasher.hash(password)


def add_admin(ctx: Context, *, username: str, password: str, role: str, actor: str) -> dict[str, Any]:
    """A new admin user with an argon2 password hash."""
    username = validate.name(username, what="admin username")
    with ctx.transaction() as uow:
        ensure_free(uow.session, AdminUser, AdminUser.username, username, "admin")
        user = AdminUser(username=username, password_hash=_password_hash(password), role=_role(role), failed_logins=0, active=True)
        uow.session.add(user)
        uow.session.flush()
        audit.record(uow, actor=actor, action="admin.add", target=username, detail={"role": role})
        return as_dict(user)


def set_password(ctx: Context, username: str, password: str, *, actor: str) -> dict[str, Any]:
    """Replace the password; also clears failed logins and any lock."""
    with ctx.transaction() as uow:
        user = find(uow.session, AdminUser, AdminUser.username, username, "admin")
        user.password_hash = _password_hash(password)
        user.failed_logins = 0
        user.locked_until = None
        audit.record(uow, actor=actor, action="admin.passwd", target=username)
        return as_dict(user)


def set_role(ctx: Context, username: str, role: str, *, actor: str) -> dict[str, Any]:
    with ctx.transaction() as uow:
        user = find(uow.session, AdminUser, AdminUser.username, username, "admin")
        old, user.role = user.role, _role(role)
        audit.record(uow, actor=actor, action="admin.role", target=username, detail={"from": old, "to": role})
        return as_dict(user)


def enable_totp(ctx: Context, username: str, *, actor: str) -> str:
    """Give the admin a new TOTP secret and return it (base32) once, to load into an app."""
    secret = new_totp_secret()
    with ctx.transaction() as uow:
        user = find(uow.session, AdminUser, AdminUser.username, username, "admin")
        user.totp_secret_enc = ctx.vault.encrypt(secret)
        audit.record(uow, actor=actor, action="admin.totp.enable", target=username)
    return secret


def disable_totp(ctx: Context, username: str, *, actor: str) -> None:
    with ctx.transaction() as uow:
        user = find(uow.session, AdminUser, AdminUser.username, username, "admin")
        user.totp_secret_enc = None
        audit.record(uow, actor=actor, action="admin.totp.disable", target=username)


def list_admins(ctx: Context) -> list[dict[str, Any]]:
    with ctx.sessions() as s:
        return [as_dict(u) for u in s.scalars(select(AdminUser).order_by(AdminUser.username))]


def ensure_demo_admin(ctx: Context, *, actor: str = "demo") -> str:
    """Create the demo admin ``admin`` / ``admin123`` (role admin) unless an admin of that name exists."""
    with ctx.sessions() as s:
        if s.scalar(select(AdminUser.id).where(AdminUser.username == DEMO_USERNAME)) is not None:
            return f"admin user {DEMO_USERNAME!r} already exists"
    add_admin(ctx, username=DEMO_USERNAME, password=DEMO_PASSWORD, role="admin", actor=actor)
    return f"demo admin {DEMO_USERNAME!r} created (password {DEMO_PASSWORD}; change it with `aaa admin passwd {DEMO_USERNAME}`)"


# --- Login -----------------------------------------------------------------------------------------


def _check_password(user: AdminUser | None, password: str) -> bool:
    """argon2 verification; an unknown user still costs one hash so timing does not tell."""
    try:
        return _hasher.verify(user.password_hash if user else _dummy_hash(), password) and user is not None
    except (VerificationError, InvalidHashError):
        return False


def authenticate(
    ctx: Context,
    username: str,
    password: str,
    totp: str | None = None,
    *,
    lock_minutes: int = LOCK_MINUTES,
    now: dt.datetime | None = None,
) -> AdminSession:
    """Log an admin in, or raise PermissionDenied (TotpRequired when only the code is missing).

    A wrong password or code counts as a failed login; the fifth in a row locks the user for
    ``lock_minutes``. Every outcome is written to the audit log with the reason.
    """
    moment = now or utcnow()
    outcome: PermissionDenied | None = None
    session: AdminSession | None = None
    with ctx.transaction() as uow:
        user = uow.session.scalars(select(AdminUser).where(AdminUser.username == username)).first()
        password_ok = _check_password(user, password)

        def fail(action: str, reason: str, error: PermissionDenied) -> None:
            nonlocal outcome
            audit.record(uow, actor=f"admin:{username}"[:64], action=action, target=username[:128], detail={"reason": reason})
            outcome = error

        bad = PermissionDenied("invalid username or password")
        if user is None or not user.active:
            fail("admin.login.failed", "unknown user" if user is None else "inactive", bad)
        elif user.locked_until is not None and user.locked_until > moment:
            until = user.locked_until.strftime("%H:%M UTC")
            fail("admin.login.locked", "locked", PermissionDenied(f"user {username!r} is locked until {until} after too many failed logins"))
        elif password_ok and user.totp_secret_enc and not totp:
            fail("admin.login.totp_required", "totp required", TotpRequired("a TOTP code is required for this user"))
        else:
            totp_ok = not user.totp_secret_enc or verify_totp(ctx.vault.decrypt(user.totp_secret_enc), totp or "", moment.timestamp())
            if password_ok and totp_ok:
                user.failed_logins = 0
                user.locked_until = None
                user.last_login_at = moment
                if _hasher.check_needs_rehash(user.password_hash):
                    user.password_hash = _hasher.hash(password)
                audit.record(uow, actor=f"admin:{username}", action="admin.login", target=username, detail={"role": user.role})
                session = AdminSession(username=user.username, role=user.role)
            else:
                user.failed_logins = (user.failed_logins or 0) + 1
                reason = "password" if not password_ok else "totp"
                if user.failed_logins >= MAX_FAILED_LOGINS:
                    user.locked_until = moment + dt.timedelta(minutes=lock_minutes)
                    user.failed_logins = 0
                    reason += f"; locked for {lock_minutes} min"
                    bad = PermissionDenied(f"invalid username or password; user {username!r} is now locked for {lock_minutes} minutes")
                elif reason == "totp":
                    bad = PermissionDenied("invalid TOTP code")
                fail("admin.login.failed", reason, bad)
    if session is None:
        assert outcome is not None
        raise outcome
    return session


__all__ = [
    "PERMISSIONS",
    "ROLES",
    "AdminSession",
    "TotpRequired",
    "add_admin",
    "authenticate",
    "can",
    "disable_totp",
    "enable_totp",
    "ensure_demo_admin",
    "hotp",
    "list_admins",
    "perform",
    "require",
    "set_password",
    "set_role",
    "totp",
    "totp_uri",
    "verify_totp",
]

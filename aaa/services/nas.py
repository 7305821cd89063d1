"""NAS (RADIUS clients): add, list, show, update, delete, their latest activity, the NAS check, and
the reachability summary of every NAS for the dashboard (with staggered, cached probes)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import func, select

from aaa import validate
from aaa.context import Context
from aaa.db.models import AcctSession, AuthLog, Nas, utcnow
from aaa.errors import ConflictError, NotFoundError, ValidationError
from aaa.radius import probe
from aaa.services import audit
from aaa.services.common import ensure_free, find, iso

VENDORS = ("mikrotik", "other")


def as_dict(nas: Nas) -> dict[str, Any]:
    """Never includes the shared secret or API password."""
    return {
        "id": nas.id,
        "name": nas.name,
        "address": nas.address,
        "vendor": nas.vendor,
        "coa_port": nas.coa_port,
        "require_message_authenticator": nas.require_message_authenticator,
        "api_username": nas.api_username,
        "api_port": nas.api_port,
        "description": nas.description,
        "created_at": iso(nas.created_at),
    }


def _secret(secret: str) -> str:
    if not secret or len(secret.encode()) > 128:
        raise ValidationError("invalid NAS secret: 1-128 bytes")
    return secret


def add_nas(
    ctx: Context,
    *,
    name: str,
    address: str,
    secret: str,
    actor: str,
    coa_port: int = 3799,
    require_message_authenticator: bool = True,
    vendor: str = "mikrotik",
    api_username: str | None = None,
    api_password: str | None = None,
    api_port: int | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    name = validate.name(name, what="NAS name")
    address = validate.ip_or_cidr(address, what="NAS address")
    if vendor not in VENDORS:
        raise ValidationError(f"unknown vendor {vendor!r}: one of {', '.join(VENDORS)}")
    with ctx.transaction() as uow:
        s = uow.session
        ensure_free(s, Nas, Nas.name, name, "NAS")
        ensure_free(s, Nas, Nas.address, address, "NAS with address")
        nas = Nas(
            name=name,
            address=address,
            secret_enc=ctx.vault.encrypt(_secret(secret)),
            vendor=vendor,
            coa_port=validate.port(coa_port, what="CoA port"),
            require_message_authenticator=require_message_authenticator,
            api_username=api_username,
            api_password_enc=ctx.vault.encrypt_optional(api_password),
            api_port=validate.port(api_port, what="API port") if api_port else None,
            description=description,
        )
        s.add(nas)
        s.flush()
        audit.record(uow, actor=actor, action="nas.add", target=name, detail={"address": address})
        return as_dict(nas)


def list_nas(ctx: Context) -> list[dict[str, Any]]:
    with ctx.sessions() as s:
        return [as_dict(n) for n in s.scalars(select(Nas).order_by(Nas.name))]


def show_nas(ctx: Context, name: str) -> dict[str, Any]:
    with ctx.sessions() as s:
        return as_dict(find(s, Nas, Nas.name, name, "NAS"))


def nas_activity(ctx: Context, name: str) -> dict[str, Any]:
    """Whether a NAS is alive, from what it last sent us: its latest authentication (``auth_log``), its
    latest accounting update (``sessions.updated_at``) and how many sessions it has open now.
    MikroTik routers do not answer Status-Server, so for them the traffic they send us is the evidence
    that they are alive; :func:`check_nas` adds the probe for those that do."""
    with ctx.sessions() as s:
        nas = find(s, Nas, Nas.name, name, "NAS")
        last_auth = s.scalar(select(AuthLog.at).where(AuthLog.nas_id == nas.id).order_by(AuthLog.at.desc()).limit(1))
        last_accounting = s.scalar(select(func.max(AcctSession.updated_at)).where(AcctSession.nas_id == nas.id))
        open_sessions = s.scalar(
            select(func.count()).select_from(AcctSession).where(AcctSession.nas_id == nas.id, AcctSession.stopped_at.is_(None))
        )
        return {
            "name": nas.name,
            "address": nas.address,
            "last_auth_at": iso(last_auth),
            "last_accounting_at": iso(last_accounting),
            "open_sessions": int(open_sessions or 0),
        }


def check_nas(ctx: Context, name: str, *, timeout: float = 1.0) -> dict[str, Any]:
    """The admin's NAS check: its activity (:func:`nas_activity`) and a Status-Server probe of its CoA
    port (:func:`probe_nas`), in ``probe``.

    MikroTik routers do not answer Status-Server, so for them ``no-answer`` is expected and the
    activity is the evidence; a NAS that answers proves its CoA port is open and the secret right. A
    NAS defined by a range of addresses has no single host to probe (``probe.outcome`` ``"skipped"``)."""
    activity = nas_activity(ctx, name)
    port, result = probe_nas(ctx, name, timeout=timeout)
    return {**activity, "coa_port": port, "probe": result}


def probe_nas(ctx: Context, name: str, *, timeout: float = 1.0) -> tuple[int, dict[str, Any]]:
    """A Status-Server probe (:func:`aaa.radius.probe.status_server`) of the CoA port of NAS ``name``:
    the port and the result as a dict. Blocks up to ``timeout`` seconds: call it from a worker."""
    with ctx.sessions() as s:
        row = find(s, Nas, Nas.name, name, "NAS")
        network = ipaddress.ip_network(row.address, strict=False)
        port, secret = row.coa_port, ctx.vault.decrypt(row.secret_enc).encode("utf-8")
    if network.num_addresses == 1:
        result = probe.status_server(str(network.network_address), port, secret, timeout=timeout).as_dict()
    else:
        result = probe.ProbeResult("skipped", detail=f"the NAS address {row.address} is a range").as_dict()
    return port, result


# --- Reachability of every NAS, for the dashboard -----------------------------------------------------

ACTIVE_WITHIN = dt.timedelta(minutes=10)
"""A NAS that sent an authentication or accounting this recently is ``active``."""
ACTIVITY_WINDOW = dt.timedelta(hours=1)
"""How far back :func:`nas_reachability` looks in ``auth_log`` and at closed sessions."""
REACHABILITY_STATES = ("silent", "quiet", "active")
"""From the most to the least worrying: the order :func:`nas_reachability` lists NAS in."""


def nas_reachability(
    ctx: Context, *, now: dt.datetime | None = None, probes: Mapping[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Every NAS with what it last sent us, cheaply enough for a dashboard that refreshes every few
    seconds: four grouped queries on indexed columns, none of them per NAS and none on the network.

    - ``last_auth_at``: its latest authentication within :data:`ACTIVITY_WINDOW` (``auth_log.at``);
    - ``last_accounting_at``: the latest update of its open sessions, or of those closed within the
      window (``sessions.updated_at``, found through the ``stopped_at`` indexes);
    - ``last_seen_at`` (the later of the two) and ``seen_minutes_ago``; ``open_sessions``;
    - ``state``: ``active`` (seen within :data:`ACTIVE_WITHIN`), ``quiet`` (seen before that, or
      holding open sessions) or ``silent`` (nothing in the window and no open session);
    - ``probe``: the cached Status-Server result for it from ``probes`` (see :class:`ProbeSchedule`),
      or None.

    Silent NAS come first, then quiet, then active, each by name.
    """
    now = now or utcnow()
    since = now - ACTIVITY_WINDOW
    with ctx.sessions() as s:
        rows = s.execute(select(Nas.id, Nas.name, Nas.address, Nas.vendor).order_by(Nas.name)).all()
        last_auth = dict(
            s.execute(select(AuthLog.nas_id, func.max(AuthLog.at)).where(AuthLog.at >= since).group_by(AuthLog.nas_id)).all()
        )
        open_rows = s.execute(
            select(AcctSession.nas_id, func.count(), func.max(AcctSession.updated_at))
            .where(AcctSession.stopped_at.is_(None))
            .group_by(AcctSession.nas_id)
        ).all()
        closed = dict(
            s.execute(
                select(AcctSession.nas_id, func.max(AcctSession.updated_at))
                .where(AcctSession.stopped_at >= since)
                .group_by(AcctSession.nas_id)
            ).all()
        )
    open_count = {nas_id: int(n) for nas_id, n, _ in open_rows}
    open_updated = {nas_id: at for nas_id, _, at in open_rows}
    result = []
    for nas_id, name, address, vendor in rows:
        auth = last_auth.get(nas_id)
        accounting = _latest(open_updated.get(nas_id), closed.get(nas_id))
        seen = _latest(auth, accounting)
        sessions = open_count.get(nas_id, 0)
        if seen is not None and now - seen <= ACTIVE_WITHIN:
            state = "active"
        elif seen is not None or sessions:
            state = "quiet"
        else:
            state = "silent"
        result.append({
            "name": name,
            "address": address,
            "vendor": vendor,
            "last_auth_at": iso(auth),
            "last_accounting_at": iso(accounting),
            "last_seen_at": iso(seen),
            "seen_minutes_ago": max(0, int((now - seen).total_seconds() // 60)) if seen is not None else None,
            "open_sessions": sessions,
            "state": state,
            "probe": (probes or {}).get(name),
        })
    result.sort(key=lambda r: REACHABILITY_STATES.index(r["state"]))
    return result


def _latest(*values: dt.datetime | None) -> dt.datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


class ProbeSchedule:
    """Status-Server probes for a screen that refreshes every few seconds, without ever making it wait.

    Each :meth:`probe_next` call probes at most one NAS (a single-address NAS whose result is older
    than ``interval`` seconds, or that was never probed, the stalest first) with ``timeout``, so the
    probes are staggered over the refreshes and each NAS is probed at most once per ``interval``;
    :attr:`results` holds the latest result of each, with ``probed_at``. Call :meth:`probe_next` from
    a worker thread (it blocks up to ``timeout``); two calls at once do one probe. ``clock`` is a
    monotonic clock in seconds (tests pass their own)."""

    def __init__(
        self,
        ctx: Context,
        *,
        interval: float = 300.0,
        timeout: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.ctx = ctx
        self.interval = interval
        self.timeout = timeout
        self.clock = clock
        self.now = now
        self.results: dict[str, dict[str, Any]] = {}
        self._probed: dict[str, float] = {}
        self._busy = threading.Lock()

    def due(self) -> str | None:
        """The NAS to probe next, or None when every NAS was probed within ``interval``."""
        with self.ctx.sessions() as s:
            rows = s.execute(select(Nas.name, Nas.address).order_by(Nas.name)).all()
        now = self.clock()
        waiting = [
            (self._probed.get(name, float("-inf")), name)
            for name, address in rows
            if ipaddress.ip_network(address, strict=False).num_addresses == 1
            and now - self._probed.get(name, float("-inf")) >= self.interval
        ]
        return min(waiting)[1] if waiting else None

    def probe_next(self) -> str | None:
        """Probe the NAS :meth:`due` names and keep its result; returns its name (None: nothing due,
        or another call is probing)."""
        if not self._busy.acquire(blocking=False):
            return None
        try:
            name = self.due()
            if name is None:
                return None
            self._probed[name] = self.clock()
            try:
                _port, result = probe_nas(self.ctx, name, timeout=self.timeout)
            except NotFoundError:  # deleted since due() listed it
                self.results.pop(name, None)
                return None
            self.results[name] = {**result, "probed_at": iso(self.now())}
            return name
        finally:
            self._busy.release()


def update_nas(ctx: Context, name: str, *, actor: str, **changes: Any) -> dict[str, Any]:
    """Change any of: address, secret, coa_port, require_message_authenticator, vendor, api_*, description."""
    with ctx.transaction() as uow:
        nas = find(uow.session, Nas, Nas.name, name, "NAS")
        for key, value in changes.items():
            if value is None:
                continue
            if key == "address":
                value = validate.ip_or_cidr(value, what="NAS address")
                ensure_free(uow.session, Nas, Nas.address, value, "NAS with address", exclude_id=nas.id)
                nas.address = value
            elif key == "secret":
                nas.secret_enc = ctx.vault.encrypt(_secret(value))
            elif key == "api_password":
                nas.api_password_enc = ctx.vault.encrypt(value)
            elif key in ("coa_port", "api_port"):
                setattr(nas, key, validate.port(value, what=key.replace("_", " ")))
            elif key in ("require_message_authenticator", "vendor", "api_username", "description"):
                setattr(nas, key, value)
            else:
                raise ValidationError(f"unknown NAS field {key!r}")
        audit.record(uow, actor=actor, action="nas.update", target=name, detail={"fields": sorted(k for k, v in changes.items() if v is not None)})
        return as_dict(nas)


def delete_nas(ctx: Context, name: str, *, actor: str) -> None:
    with ctx.transaction() as uow:
        nas = find(uow.session, Nas, Nas.name, name, "NAS")
        if uow.session.scalar(select(AcctSession.id).where(AcctSession.nas_id == nas.id).limit(1)) is not None:
            raise ConflictError(f"NAS {name!r} has sessions on record (kept for Marco Civil); it cannot be deleted")
        uow.session.delete(nas)
        audit.record(uow, actor=actor, action="nas.delete", target=name)

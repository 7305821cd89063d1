"""NAS (RADIUS clients): add, list, show, update, delete, their latest activity and the NAS check."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import func, select

from aaa import validate
from aaa.context import Context
from aaa.db.models import AcctSession, AuthLog, Nas
from aaa.errors import ConflictError, ValidationError
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
    port (:func:`aaa.radius.probe.status_server`), in ``probe``.

    MikroTik routers do not answer Status-Server, so for them ``no-answer`` is expected and the
    activity is the evidence; a NAS that answers proves its CoA port is open and the secret right. A
    NAS defined by a range of addresses has no single host to probe (``probe.outcome`` ``"skipped"``)."""
    activity = nas_activity(ctx, name)
    with ctx.sessions() as s:
        row = find(s, Nas, Nas.name, name, "NAS")
        network = ipaddress.ip_network(row.address, strict=False)
        port, secret = row.coa_port, ctx.vault.decrypt(row.secret_enc).encode("utf-8")
    if network.num_addresses == 1:
        result = probe.status_server(str(network.network_address), port, secret, timeout=timeout).as_dict()
    else:
        result = probe.ProbeResult("skipped", detail=f"the NAS address {row.address} is a range").as_dict()
    return {**activity, "coa_port": port, "probe": result}


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

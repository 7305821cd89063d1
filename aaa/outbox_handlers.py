"""What ``aaa serve`` does with outbox rows: the built-in ``radius.reauthorize`` handler and the
handlers plugins register through ``aaa_register_outbox_handlers``.

``radius.reauthorize`` tells a live session about a change to its subscriber. It reads the
subscriber and plan as stored now, asks ``aaa_session_update`` (the policy) for a CoA with new
attributes or a Disconnect, and sends it to the NAS's CoA port identified by User-Name,
Acct-Session-Id, Framed-IP-Address and NAS-IP-Address (RouterOS needs more than the user name).
A CoA that is NAKed or unanswered falls back to a Disconnect, so the router logs the subscriber in
again and gets the new entitlement from the Access-Accept. A session already closed needs nothing.
A Disconnect NAKed with Session-Context-Not-Found (503) means the session is gone: done.
Anything else is retried by the worker with back-off, then dead-lettered.

Before anything is sent, this process's cache is refreshed past the change that queued the row:
a router logs the subscriber in again within a second of a Disconnect, and that login must be
answered from the new state (suspended, blocked profile, new plan), not the one the cache held.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool

from aaa.cache import NasEntry, PlanEntry, SubscriberEntry
from aaa.db.models import AcctSession
from aaa.outbox_worker import OutboxFailure, OutboxRow, OutboxWorker, PermanentFailure
from aaa.radius.coa import CoaClient, CoaResult
from aaa.radius.codec import Code
from aaa.services.subscribers import DISCONNECT, REAUTHORIZE

if TYPE_CHECKING:
    from aaa.serve import Service

SESSION_CONTEXT_NOT_FOUND = 503


@dataclass
class _Target:
    login: str
    acct_session_id: str
    framed_ip: str | None
    nas: NasEntry
    subscriber: SubscriberEntry | None
    plan: PlanEntry | None


def coa_host(nas: NasEntry) -> str:
    """The router's address for CoA: a NAS registered as a network has no single one."""
    if "/" in nas.address:
        network = ipaddress.ip_network(nas.address, strict=False)
        if network.num_addresses != 1:
            raise PermanentFailure(f"NAS {nas.name} is registered as network {nas.address}; CoA needs the router's own address")
        return str(network.network_address)
    return nas.address


def identity(target: _Target, host: str) -> list[tuple[str, Any]]:
    attrs: list[tuple[str, Any]] = [("User-Name", target.login), ("Acct-Session-Id", target.acct_session_id)]
    if target.framed_ip:
        attrs.append(("Framed-IP-Address", target.framed_ip))
    if ipaddress.ip_address(host).version == 4:
        attrs.append(("NAS-IP-Address", host))
    return attrs


class Reauthorize:
    """The ``radius.reauthorize`` handler."""

    def __init__(self, service: Service, client: CoaClient) -> None:
        self._service = service
        self._client = client

    def __call__(self, row: OutboxRow) -> Deferred[Any]:
        service = self._service
        d: Deferred[Any] = service.refresh_cache()
        d.addCallback(lambda _: deferToThreadPool(service.reactor, service.pool, self._load, row))
        d.addCallback(self._act, row)
        return d

    def _load(self, row: OutboxRow) -> _Target | None:
        payload = row.payload
        with Session(self._service.context.engine) as session:
            stored = session.get(AcctSession, payload["session_id"])
            if stored is None or stored.stopped_at is not None:
                return None
            nas = self._service.cache.nas_by_id.get(stored.nas_id)
            framed_ip = stored.framed_ip
        if nas is None:
            raise PermanentFailure(f"NAS {payload.get('nas_id')} of session {payload['session_id']} no longer exists")
        fresh = self._service.cache.read_fresh(payload["login"])
        sub, plan = fresh if fresh is not None else (None, None)
        return _Target(payload["login"], payload["acct_session_id"], framed_ip, nas, sub, plan)

    def _act(self, target: _Target | None, row: OutboxRow) -> Any:
        if target is None:
            return {"action": "none", "reason": "session already closed"}
        host = coa_host(target.nas)
        who = identity(target, host)
        decision = None
        cause = row.payload.get("cause", "")
        if cause != DISCONNECT and target.subscriber is not None and target.plan is not None:
            decision = self._service.context.pm.hook.aaa_session_update(
                subscriber=target.subscriber, plan=target.plan, cause=cause
            )
        if decision and decision.get("action") == "coa":
            d = self._client.send(host, target.nas.coa_port, target.nas.secret, Code.COA_REQUEST, [*who, *decision["attributes"]])
            d.addCallback(self._after_coa, target, host, who)
            return d
        return self._disconnect(target, host, who, None)

    def _after_coa(self, result: CoaResult, target: _Target, host: str, who: list[tuple[str, Any]]) -> Any:
        if result.ok:
            return {"action": "coa", **result.as_dict()}
        return self._disconnect(target, host, who, result)

    def _disconnect(self, target: _Target, host: str, who: list[tuple[str, Any]], coa: CoaResult | None) -> Deferred[dict[str, Any]]:
        d = self._client.send(host, target.nas.coa_port, target.nas.secret, Code.DISCONNECT_REQUEST, who)
        return d.addCallback(self._after_disconnect, coa)

    @staticmethod
    def _after_disconnect(result: CoaResult, coa: CoaResult | None) -> dict[str, Any]:
        outcome: dict[str, Any] = {"action": "disconnect", **result.as_dict()}
        if coa is not None:
            outcome["coa"] = coa.as_dict()
        if result.ok or result.error_cause == SESSION_CONTEXT_NOT_FOUND:
            return outcome
        raise OutboxFailure(f"Disconnect-Request {result.outcome}" + (f" ({result.error_cause_name})" if result.error_cause_name else ""), result=outcome)


class PluginHandler:
    """A plugin's ``handler(context, row)``, run on the thread pool."""

    def __init__(self, service: Service, function: Any) -> None:
        self._service = service
        self._function = function

    def __call__(self, row: OutboxRow) -> Deferred[Any]:
        service = self._service
        return deferToThreadPool(service.reactor, service.pool, self._function, service.context, row)


class OutboxRuntime:
    """The worker and its CoA client, started and stopped together by ``aaa serve``."""

    def __init__(self, worker: OutboxWorker, client: CoaClient) -> None:
        self.worker = worker
        self.client = client

    def stop(self) -> Deferred[Any]:
        d = self.worker.stop()
        d.addBoth(lambda _: self.client.close())
        return d

    def counters(self) -> dict[str, int]:
        return {**self.worker.counters(), **{f"coa_{k}": v for k, v in self.client.counters().items()}}


def start_outbox_worker(service: Service) -> OutboxRuntime:
    settings = service.context.settings.outbox
    client = CoaClient(service.reactor, timeout=settings.coa_timeout_seconds, retries=settings.coa_retries, dictionary=service.dictionary)
    handlers: dict[str, Any] = {REAUTHORIZE: Reauthorize(service, client)}

    def register(kind: str, function: Any) -> None:
        handlers[kind] = PluginHandler(service, function)

    service.context.pm.hook.aaa_register_outbox_handlers(register=register)
    node = f"{socket.gethostname()}:{os.getpid()}"
    worker = OutboxWorker(service.context, service.reactor, handlers, node_id=node, settings=settings, pool=service.pool)
    worker.start()
    return OutboxRuntime(worker, client)


__all__ = ["OutboxRuntime", "Reauthorize", "start_outbox_worker"]

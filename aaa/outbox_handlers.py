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

Before anything is sent, this process's cache is refreshed past the change that queued the row
(with ``--workers N``, every worker's: :mod:`aaa.cache_sync`): a router logs the subscriber in again
within a second of a Disconnect, and that login must be answered from the new state (suspended,
blocked profile, new plan), not the one a cache held.

The time budget of one attempt (:func:`attempt_budget`), from the CoA client's retry schedule. With
the defaults (``coa_timeout_seconds = 2``, ``coa_retries = 2``, back-off x2) one request to a silent
NAS gives up after 2 + 4 + 8 = 14 s; a CoA that times out falls back to a Disconnect, another 14 s:
28 s of RADIUS. Add :data:`DB_ALLOWANCE` (4 s) for the cache refresh and the session read on the
thread pool, and with ``--workers N`` the bounded wait for the other workers' caches (3 s): the
handler timeout is 32 s (35 s). The lease must outlive the handler plus the write of its outcome
(:data:`WRITE_ALLOWANCE`, 5 s): at least 37 s (40 s); a shorter ``lease_seconds`` is raised to that,
and logged. So a live worker's row is never re-claimed by another node while it may still send for
it; the worker renews the leases of rows in flight as well, and cancels the handler (which withdraws
its CoA requests) when the timeout fires, when its claim is lost, or ``STOP_GRACE`` seconds into a
shutdown.

Node identity: the worker's ``node_id`` is kept in ``outbox-node`` in the journal folder (the node's
own local state), held under an exclusive ``flock`` while ``aaa serve`` runs. The same node keeps
its id across restarts, and holding the lock proves that the process which last used the id is gone,
so a restarted node re-runs its own ``running`` claims at once (``recover_own_claims``) instead of
waiting for their leases. A second process that finds the lock taken (the same folder in use) gets a
one-off id and does not recover anything.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import secrets
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from aaa.cache import NasEntry, PlanEntry, SubscriberEntry
from aaa.cache_sync import WAIT_BOUND_SECONDS
from aaa.config import OutboxSettings
from aaa.db.models import AcctSession
from aaa.outbox_worker import OutboxFailure, OutboxRow, OutboxWorker, PermanentFailure
from aaa.radius.coa import CoaClient, CoaResult
from aaa.radius.codec import Code
from aaa.services.subscribers import DISCONNECT, REAUTHORIZE

if TYPE_CHECKING:
    from aaa.serve import Service

log = Logger()

SESSION_CONTEXT_NOT_FOUND = 503
DB_ALLOWANCE = 4.0
"""Seconds allowed in one attempt for the cache refresh and the session read (thread pool)."""
WRITE_ALLOWANCE = 5.0
"""Seconds the lease must outlast the handler by: writing the outcome."""
STOP_GRACE = 2.0
"""Seconds in-flight rows get to finish when ``aaa serve`` stops, before they are cancelled and given back."""
NODE_FILE = "outbox-node"


@dataclass(frozen=True)
class Budget:
    """The time limits of one outbox attempt; see the module docstring for the arithmetic."""

    request: float
    """One CoA-Request or Disconnect-Request to a silent NAS, all retransmissions included."""
    handler_timeout: float
    lease: float


def attempt_budget(settings: OutboxSettings, client: CoaClient, *, cache_sync: bool = False) -> Budget:
    """CoA + Disconnect fallback + database work (+ the other workers' caches) bound the handler; the
    lease outlives the handler and the outcome's write."""
    request = client.worst_case_seconds()
    handler = 2 * request + DB_ALLOWANCE + (WAIT_BOUND_SECONDS if cache_sync else 0.0)
    return Budget(request, handler, max(settings.lease_seconds, handler + WRITE_ALLOWANCE))


@dataclass
class NodeIdentity:
    node_id: str
    stable: bool
    """True: this process holds the id's lock, so ``running`` rows claimed under it are its own to recover."""
    handle: Any = None
    """The open, locked file; the lock lasts as long as it stays open (or the process lives)."""

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def claim_node_id(folder: Path) -> NodeIdentity:
    """This node's outbox identity (see the module docstring): stable across restarts, never held by
    two live processes."""
    host = socket.gethostname()[:40]
    folder.mkdir(parents=True, exist_ok=True)
    handle = (folder / NODE_FILE).open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return NodeIdentity(f"{host}:{os.getpid()}:{secrets.token_hex(4)}", stable=False)
    handle.seek(0)
    node_id = handle.read().strip()[:64]
    if not node_id:
        node_id = f"{host}:{secrets.token_hex(6)}"
        handle.seek(0)
        handle.truncate()
        handle.write(node_id + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return NodeIdentity(node_id, stable=True, handle=handle)


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
        d: Deferred[Any] = service.refresh_everywhere()
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

    def __init__(self, worker: OutboxWorker, client: CoaClient, node: NodeIdentity | None = None) -> None:
        self.worker = worker
        self.client = client
        self.node = node

    def stop(self) -> Deferred[Any]:
        """Stop claiming, give in-flight rows ``STOP_GRACE`` seconds, cancel the rest (their requests
        are withdrawn, their rows given back), then close the CoA client and release the node id."""
        d: Deferred[Any] = self.worker.stop(cancel_after=STOP_GRACE)
        d.addBoth(self._stopped)
        return d

    def _stopped(self, _: Any) -> Deferred[Any]:
        if self.node is not None:
            self.node.release()
        return self.client.close()

    def counters(self) -> dict[str, int]:
        return {**self.worker.counters(), **{f"coa_{k}": v for k, v in self.client.counters().items()}}


def start_outbox_worker(service: Service) -> OutboxRuntime:
    settings = service.context.settings.outbox
    client = CoaClient(service.reactor, timeout=settings.coa_timeout_seconds, retries=settings.coa_retries, dictionary=service.dictionary)
    handlers: dict[str, Any] = {REAUTHORIZE: Reauthorize(service, client)}

    def register(kind: str, function: Any) -> None:
        handlers[kind] = PluginHandler(service, function)

    service.context.pm.hook.aaa_register_outbox_handlers(register=register)
    budget = attempt_budget(settings, client, cache_sync=service.options.cache_sync is not None)
    if budget.lease > settings.lease_seconds:
        log.info("outbox: lease raised from {configured}s to {lease}s to outlive an attempt ({timeout}s: CoA and Disconnect of {request}s each)",
                 configured=settings.lease_seconds, lease=budget.lease, timeout=budget.handler_timeout, request=budget.request)  # fmt: skip
    folder = service.context.settings.path(service.context.settings.accounting.journal_dir)
    node = claim_node_id(folder)
    if not node.stable:
        log.warn("outbox: {file} in {folder} is held by another running process; using the one-off node id {node}",
                 file=NODE_FILE, folder=str(folder), node=node.node_id)  # fmt: skip
    worker = OutboxWorker(service.context, service.reactor, handlers, node_id=node.node_id, pool=service.pool,
                          settings=replace(settings, lease_seconds=budget.lease), handler_timeout=budget.handler_timeout,
                          recover_own_claims=node.stable)  # fmt: skip
    worker.start()
    return OutboxRuntime(worker, client, node)


__all__ = ["Budget", "NodeIdentity", "OutboxRuntime", "Reauthorize", "attempt_budget", "claim_node_id", "start_outbox_worker"]

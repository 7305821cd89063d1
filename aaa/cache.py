"""The in-memory view of NAS, plans and subscribers that the RADIUS hot path reads.

Loaded once at start-up, then refreshed by :meth:`Cache.refresh`: one read of the change counter;
when it moved, only the rows whose ``change_seq`` is newer are read; when its epoch moved (a row was
deleted) everything is reloaded. Passwords are decrypted when a row is loaded, so an
Access-Request costs dictionary lookups and no database or crypto-at-rest work.

The cache holds plain slotted objects, never ORM instances; all its methods that touch the
database are blocking and run on a thread (or at start-up).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from aaa.db import changes
from aaa.db.models import Nas, Plan, Subscriber
from aaa.vault import Vault


@dataclass(slots=True)
class NasEntry:
    id: int
    name: str
    address: str
    secret: bytes
    require_message_authenticator: bool
    coa_port: int
    vendor: str


@dataclass(slots=True)
class PlanEntry:
    id: int
    name: str
    download_bps: int
    upload_bps: int
    burst_download_bps: int | None
    burst_upload_bps: int | None
    burst_threshold_download_bps: int | None
    burst_threshold_upload_bps: int | None
    burst_time_seconds: int | None
    priority: int | None
    ipv4_pool: str | None
    ipv6_pool: str | None
    delegated_ipv6_pool: str | None
    session_timeout: int | None
    idle_timeout: int | None
    interim_interval: int | None
    data_limit_bytes: int | None
    mikrotik_group: str | None


@dataclass(slots=True)
class SubscriberEntry:
    id: int
    login: str
    password: str | None
    plan_id: int
    status: str
    static_ipv4: str | None
    delegated_ipv6_prefix: str | None
    mac_binding: str | None
    simultaneous_use: int
    customer_id: int | None
    trust_unlock_until: dt.datetime | None
    nt_keys: Any = None  # MS-CHAP key material (aaa.radius.mschap.NtKeys), filled on the first MS-CHAP login


_PLAN_FIELDS = [f for f in PlanEntry.__dataclass_fields__]


def _nas_entry(row: Nas, vault: Vault) -> NasEntry:
    return NasEntry(
        id=row.id,
        name=row.name,
        address=row.address,
        secret=vault.decrypt(row.secret_enc).encode("utf-8"),
        require_message_authenticator=row.require_message_authenticator,
        coa_port=row.coa_port,
        vendor=row.vendor,
    )


def _plan_entry(row: Plan) -> PlanEntry:
    return PlanEntry(**{name: getattr(row, name) for name in _PLAN_FIELDS})


class Cache:
    """NAS by source address, plans by id, subscribers by login and by bound MAC."""

    def __init__(self, engine: Engine, vault: Vault) -> None:
        self._engine = engine
        self._vault = vault
        self._watch = changes.CounterWatch(engine)
        self.nas_by_address: dict[str, NasEntry] = {}
        self.nas_by_id: dict[int, NasEntry] = {}
        self._nas_networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, NasEntry]] = []
        self.plans: dict[int, PlanEntry] = {}
        self.subscribers: dict[str, SubscriberEntry] = {}
        self._by_id: dict[int, SubscriberEntry] = {}
        self.by_mac: dict[str, SubscriberEntry] = {}
        self.seq = -1
        self.epoch = -1
        self.loads = 0
        self.refreshes = 0

    # --- lookups (hot path) ---------------------------------------------------------------------

    def nas_for(self, address: str) -> NasEntry | None:
        """The NAS a datagram from ``address`` belongs to (exact address first, then CIDRs)."""
        nas = self.nas_by_address.get(address)
        if nas is not None or not self._nas_networks:
            return nas
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        for network, entry in self._nas_networks:
            if ip.version == network.version and ip in network:
                return entry
        return None

    def subscriber(self, login: str) -> SubscriberEntry | None:
        return self.subscribers.get(login)

    def plan(self, plan_id: int) -> PlanEntry | None:
        return self.plans.get(plan_id)

    # --- loading ---------------------------------------------------------------------------------

    def load(self) -> None:
        """Read everything (start-up, or after a deletion)."""
        with Session(self._engine) as session:
            seq, epoch = changes.read(session.connection())
            nas = [_nas_entry(r, self._vault) for r in session.scalars(select(Nas))]
            plans = {r.id: _plan_entry(r) for r in session.scalars(select(Plan))}
            subscribers = self._subscriber_entries(session.connection().execute(select(*_SUB_COLUMNS)))
        self._set_nas(nas)
        self.plans = plans
        self.subscribers = {s.login: s for s in subscribers}
        self._by_id = {s.id: s for s in subscribers}
        self.by_mac = {s.mac_binding: s for s in subscribers if s.mac_binding}
        self.seq, self.epoch = seq, epoch
        self.loads += 1

    def refresh(self) -> bool:
        """Apply what changed since the last look; True if anything did."""
        seq, epoch = self._watch.read()
        if seq == self.seq and epoch == self.epoch:
            return False
        if epoch != self.epoch:
            self.load()
            return True
        # Rows are read after the counter: one committed in between comes now and again next time.
        with Session(self._engine) as session:
            since = self.seq
            nas = [_nas_entry(r, self._vault) for r in session.scalars(select(Nas).where(Nas.change_seq > since))]
            plans = [_plan_entry(r) for r in session.scalars(select(Plan).where(Plan.change_seq > since))]
            subs = self._subscriber_entries(session.connection().execute(select(*_SUB_COLUMNS).where(Subscriber.change_seq > since)))
        if nas:
            merged = {n.id: n for n in self.nas_by_id.values()}
            merged.update({n.id: n for n in nas})
            self._set_nas(list(merged.values()))
        for plan in plans:
            self.plans[plan.id] = plan
        for sub in subs:
            old = self._by_id.get(sub.id)
            if old is not None:
                self.subscribers.pop(old.login, None)
                if old.mac_binding:
                    self.by_mac.pop(old.mac_binding, None)
            self.subscribers[sub.login] = sub
            self._by_id[sub.id] = sub
            if sub.mac_binding:
                self.by_mac[sub.mac_binding] = sub
        self.seq = seq
        self.refreshes += 1
        return True

    def close(self) -> None:
        """Close the connection the refreshes read the change counter over (shutdown)."""
        self._watch.close()

    def read_fresh(self, login: str) -> tuple[SubscriberEntry, PlanEntry | None] | None:
        """The subscriber and its plan as stored right now, without touching the cache (blocking)."""
        with Session(self._engine) as session:
            found = self._subscriber_entries(session.connection().execute(select(*_SUB_COLUMNS).where(Subscriber.login == login)))
            if not found:
                return None
            plan = session.get(Plan, found[0].plan_id)
            return found[0], (_plan_entry(plan) if plan is not None else None)

    def _set_nas(self, entries: list[NasEntry]) -> None:
        by_address: dict[str, NasEntry] = {}
        networks = []
        for entry in entries:
            if "/" in entry.address:
                network = ipaddress.ip_network(entry.address, strict=False)
                if network.num_addresses == 1:
                    by_address[str(network.network_address)] = entry
                else:
                    networks.append((network, entry))
            else:
                by_address[entry.address] = entry
        networks.sort(key=lambda item: item[0].prefixlen, reverse=True)
        self.nas_by_address = by_address
        self.nas_by_id = {e.id: e for e in entries}
        self._nas_networks = networks

    def _subscriber_entries(self, rows: Iterable[Any]) -> list[SubscriberEntry]:
        """Cache entries from rows of :data:`_SUB_COLUMNS`, the passwords decrypted.

        Positional, and through SQLAlchemy Core rather than the ORM session: at start-up this runs
        once per subscriber, and with 100,000 of them the ORM's row handling, named row access and
        keyword arguments were two thirds of the load (docs/performance.md).
        """
        decrypt, entry = self._vault.decrypt, SubscriberEntry
        return [
            entry(sid, login, decrypt(password) if password else None, plan, status, ipv4, ipv6, mac, simultaneous, customer, trust)
            for sid, login, password, plan, status, ipv4, ipv6, mac, simultaneous, customer, trust in rows
        ]


_SUB_COLUMNS = (  # SubscriberEntry's fields in its order (nt_keys aside): the load is positional
    Subscriber.id,
    Subscriber.login,
    Subscriber.password_enc,
    Subscriber.plan_id,
    Subscriber.status,
    Subscriber.static_ipv4,
    Subscriber.delegated_ipv6_prefix,
    Subscriber.mac_binding,
    Subscriber.simultaneous_use,
    Subscriber.customer_id,
    Subscriber.trust_unlock_until,
)

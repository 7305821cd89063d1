"""What a subscriber is entitled to right now, as RADIUS reply attributes.

One function serves both the Access-Accept and the CoA that changes a live session, so a router
always hears the same thing about the same subscriber. Statuses: ``active`` and ``notified`` get the
plan; ``reduced`` gets the plan's speed cut to ``reduced_percent``; ``suspended`` gets the blocked
profile when ``suspended_treatment = "blocked"`` (otherwise the login is refused); ``disabled`` and
``terminated`` are always refused. A suspended subscriber inside a trust-unlock period gets the plan.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from typing import Any

from aaa.errors import ConfigError
from policy.ratelimit import rate_limit

GIGAWORD = 1 << 32
REFUSED = {"disabled": "account disabled", "terminated": "contract terminated"}


@dataclass(frozen=True)
class PolicySettings:
    """``[plugins.policy]`` in aaa.toml."""

    suspended_treatment: str = "reject"  # "reject" or "blocked"
    suspended_message: str = "service suspended for non-payment"
    blocked_address_list: str = "aaa_blocked"
    blocked_rate_limit: str = "512k/512k"
    blocked_pool: str = ""
    reduced_percent: int = 50
    interim_interval: int = 300
    suspend_after_days: int = 15  # after the overdue notice (Res. 765/2023 art. 70)
    reduce_after_days: int = 0  # 0: no speed-cut step before suspension
    terminate_after_days: int = 60  # of suspension, before termination is allowed (art. 73)
    extra_reply: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, table: dict[str, Any], source: str = "[plugins.policy]") -> PolicySettings:
        known = {f.name for f in fields(cls)}
        for key in table:
            if key not in known:
                raise ConfigError(f"{source}: unknown key 'plugins.policy.{key}'")
        settings = cls(**table)
        if settings.suspended_treatment not in ("reject", "blocked"):
            raise ConfigError(f"{source}: 'plugins.policy.suspended_treatment' must be \"reject\" or \"blocked\"")
        if not 1 <= settings.reduced_percent <= 100:
            raise ConfigError(f"{source}: 'plugins.policy.reduced_percent' must be 1-100")
        return settings


def in_trust_unlock(sub: Any, now: dt.datetime) -> bool:
    until = getattr(sub, "trust_unlock_until", None)
    return until is not None and until > now


def refusal(sub: Any, settings: PolicySettings, now: dt.datetime) -> str | None:
    """Why this subscriber may not log in at all, or None."""
    if sub.status in REFUSED:
        return REFUSED[sub.status]
    if sub.status == "suspended" and settings.suspended_treatment == "reject" and not in_trust_unlock(sub, now):
        return settings.suspended_message
    return None


Attributes = tuple[tuple[str, Any], ...]


def _plan_part(plan: Any, settings: PolicySettings, blocked: bool, scale: float) -> tuple[Attributes, Attributes]:
    """What a reply takes from the plan alone: the attributes before the addresses, and after them."""
    head: list[tuple[str, Any]] = []
    if blocked:
        head.append(("Mikrotik-Rate-Limit", settings.blocked_rate_limit))
        head.append(("Mikrotik-Address-List", settings.blocked_address_list))
        if settings.blocked_pool:
            head.append(("Framed-Pool", settings.blocked_pool))
    else:
        head.append(("Mikrotik-Rate-Limit", rate_limit(plan, scale=scale)))
        if plan.mikrotik_group:
            head.append(("Mikrotik-Group", plan.mikrotik_group))
        if plan.data_limit_bytes:
            head.append(("Mikrotik-Total-Limit", plan.data_limit_bytes % GIGAWORD))
            if plan.data_limit_bytes >= GIGAWORD:
                head.append(("Mikrotik-Total-Limit-Gigawords", plan.data_limit_bytes // GIGAWORD))
    tail: list[tuple[str, Any]] = []
    if plan.ipv6_pool:
        tail.append(("Framed-IPv6-Pool", plan.ipv6_pool))
    tail.append(("Acct-Interim-Interval", plan.interim_interval or settings.interim_interval))
    if plan.session_timeout:
        tail.append(("Session-Timeout", plan.session_timeout))
    if plan.idle_timeout:
        tail.append(("Idle-Timeout", plan.idle_timeout))
    return tuple(head), tuple(tail)


class PlanReplies:
    """The plan's share of every Access-Accept, built once per plan version instead of per login.

    Most of an Accept (the Mikrotik-Rate-Limit string, limits, pools, timers) depends only on the
    plan, the subscriber's treatment (normal, reduced, blocked) and the settings; rebuilding it was
    a measurable part of each login (docs/performance.md). Entries are keyed by plan id and
    treatment and remembered with the plan object they were built from: the cache's change-counter
    refresh replaces a changed plan's object, so the next login rebuilds (no stale speed survives
    a plan edit). Per plan, not per subscriber: in a reconnect storm every subscriber logs in once,
    so only what subscribers share can be reused, and memory stays a few entries per plan.
    """

    def __init__(self) -> None:
        self._parts: dict[tuple[int, bool, float], tuple[Any, PolicySettings, tuple[Attributes, Attributes]]] = {}

    def get(self, plan: Any, settings: PolicySettings, blocked: bool, scale: float) -> tuple[Attributes, Attributes]:
        key = (plan.id, blocked, scale)
        entry = self._parts.get(key)
        if entry is not None and entry[0] is plan and entry[1] is settings:
            return entry[2]
        parts = _plan_part(plan, settings, blocked, scale)
        self._parts[key] = (plan, settings, parts)
        return parts


def reply_attributes(sub: Any, plan: Any, settings: PolicySettings, now: dt.datetime, *, session_class: bool = True,
                     plans: PlanReplies | None = None) -> list[tuple[str, Any]]:  # fmt: skip
    """The reply attributes for ``sub`` on ``plan`` (an accepted login, or a CoA).

    ``plans`` reuses the plan's share across logins (the Access-Accept path); the result is the
    same list either way.
    """
    blocked = sub.status == "suspended" and not in_trust_unlock(sub, now)
    scale = settings.reduced_percent / 100 if sub.status == "reduced" and not blocked else 1.0
    head, tail = plans.get(plan, settings, blocked, scale) if plans is not None else _plan_part(plan, settings, blocked, scale)
    attrs = list(head)
    if sub.static_ipv4 and not (blocked and settings.blocked_pool):
        attrs.append(("Framed-IP-Address", sub.static_ipv4))
    elif plan.ipv4_pool and not blocked:
        attrs.append(("Framed-Pool", plan.ipv4_pool))
    if sub.delegated_ipv6_prefix:
        attrs.append(("Delegated-IPv6-Prefix", sub.delegated_ipv6_prefix))
    elif plan.delegated_ipv6_pool:
        attrs.append(("Mikrotik-Delegated-IPv6-Pool", plan.delegated_ipv6_pool))
    attrs.extend(tail)
    if session_class:
        attrs.append(("Class", f"aaa:{sub.id}:{plan.id}"))
    attrs.extend(settings.extra_reply.items())
    return attrs


COA_ATTRIBUTES = frozenset({"Mikrotik-Rate-Limit", "Mikrotik-Group", "Session-Timeout", "Idle-Timeout", "Mikrotik-Total-Limit", "Mikrotik-Total-Limit-Gigawords"})


def session_update(sub: Any, plan: Any, cause: str, settings: PolicySettings, now: dt.datetime) -> dict[str, Any]:
    """CoA with the attributes RouterOS changes live, or Disconnect when only a new login can apply
    the change: a refused status, or a move into or out of the blocked profile (addresses, pools and
    address lists are not changeable by CoA)."""
    if refusal(sub, settings, now) is not None:
        return {"action": "disconnect"}
    if settings.suspended_treatment == "blocked" and cause in ("status:suspended", "status:active", "trust-unlock"):
        return {"action": "disconnect"}  # into or out of the blocked profile
    return _coa(sub, plan, settings, now)


def _coa(sub: Any, plan: Any, settings: PolicySettings, now: dt.datetime) -> dict[str, Any]:
    attrs = [(n, v) for n, v in reply_attributes(sub, plan, settings, now, session_class=False) if n in COA_ATTRIBUTES]
    return {"action": "coa", "attributes": attrs}

"""The built-in policy plugin: who may log in given their status, and what the router is told.

Registered through the ``aaa.plugins`` entry point ``policy`` like any third-party plugin. Its
settings are ``[plugins.policy]`` (see :class:`policy.entitlement.PolicySettings`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aaa import hookimpl
from aaa.services import subscribers
from aaa.stages import Request, Result
from policy import lifecycle
from policy.entitlement import PlanReplies, PolicySettings, refusal, reply_attributes, session_update

settings = PolicySettings()
plan_replies = PlanReplies()  # the plans' share of an Access-Accept, rebuilt when a plan changes


@hookimpl
def aaa_startup(context: Any, reactor: Any) -> None:
    global settings
    settings = PolicySettings.from_config(context.plugin_config("policy"), context.settings.source)


@hookimpl
def aaa_authorize(request: Request) -> Result | None:
    sub = request.subscriber
    if sub is None:
        return None
    reason = refusal(sub, settings, dt.datetime.now(dt.UTC))
    if reason is not None:
        return request.reject(reason)
    if request.plan is None:
        return request.reject("plan not found")
    return Result.OK


@hookimpl
def aaa_post_auth(request: Request) -> Result | None:
    if not request.accepted or request.subscriber is None or request.plan is None:
        return None
    request.reply.extend(reply_attributes(request.subscriber, request.plan, settings, dt.datetime.now(dt.UTC), plans=plan_replies))
    return Result.UPDATED


@hookimpl
def aaa_session_update(subscriber: Any, plan: Any, cause: str) -> dict[str, Any]:
    return session_update(subscriber, plan, cause, settings, dt.datetime.now(dt.UTC))


@hookimpl
def aaa_invoice_overdue(context: Any, invoice: dict[str, Any]) -> None:
    if invoice.get("login"):
        lifecycle.on_overdue(context, invoice["login"], invoice.get("number") or str(invoice.get("id")))


@hookimpl
def aaa_invoice_paid(context: Any, invoice: dict[str, Any], payment: dict[str, Any]) -> None:
    if invoice.get("login") and invoice.get("status") == "paid" and not invoice.get("overdue_invoices_left"):
        lifecycle.on_paid(context, invoice["login"], invoice.get("number") or str(invoice.get("id")))


@hookimpl
def aaa_register_jobs(register: Any) -> None:
    register("policy-lifecycle", 3600, lifecycle.evaluate)
    register("trust-unlock-expiry", 60, lambda context: subscribers.expire_trust_unlocks(context))

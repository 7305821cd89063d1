"""Shared set-up for the invoicing tests: billable demo-like data, a hook recorder, configured contexts.

Test modules import the fixtures (``billing_data_fixture``, ``recorder_fixture``); they are used by
their names ``billing_data`` and ``recorder``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import update

from aaa import hookimpl
from aaa.config import PluginSettings
from aaa.context import Context
from aaa.db.models import Subscriber
from aaa.services import customers, plans, subscribers
from billing.boleto import SAO_PAULO

PRICE = "99.90"


class Recorder:
    """A plugin that remembers every invoice event it hears."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    @hookimpl
    def aaa_invoice_issued(self, invoice: dict[str, Any]) -> None:
        self.events.append(("issued", {"invoice": invoice}))

    @hookimpl
    def aaa_invoice_paid(self, invoice: dict[str, Any], payment: dict[str, Any]) -> None:
        self.events.append(("paid", {"invoice": invoice, "payment": payment}))

    @hookimpl
    def aaa_invoice_overdue(self, invoice: dict[str, Any]) -> None:
        self.events.append(("overdue", {"invoice": invoice}))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [data for name, data in self.events if name == kind]


def joined_on(ctx: Context, login: str, day: dt.date) -> None:
    """Pretend the subscriber was created on ``day`` (noon in São Paulo)."""
    moment = dt.datetime.combine(day, dt.time(12), tzinfo=SAO_PAULO)
    with ctx.transaction() as uow:
        uow.session.execute(update(Subscriber).where(Subscriber.login == login).values(created_at=moment))


def configured(ctx: Context, **invoicing: Any) -> Context:
    """The same database and plugins with a ``[plugins.invoicing]`` table."""
    settings = ctx.settings.replace(plugins=PluginSettings(settings={"invoicing": invoicing}))
    return dataclasses.replace(ctx, settings=settings)


@pytest.fixture(name="recorder")
def recorder_fixture(ctx: Context) -> Recorder:
    rec = Recorder()
    ctx.pm.register(rec)
    return rec


@pytest.fixture(name="billing_data")
def billing_data_fixture(ctx: Context, actor: str) -> Context:
    """Maria (due day 10) and João (due day 15), subscribers since October 2026; an unbilled login
    without a customer and a disabled one."""
    plans.add_plan(ctx, name="Fibra 100M", down="100M", up="50M", price=PRICE, actor=actor)
    maria = customers.add_customer(
        ctx, actor=actor, name="Maria da Silva", document="529.982.247-25",
        address="Rua das Flores, 123, Centro, Campinas/SP", due_day=10,
    )
    joao = customers.add_customer(ctx, actor=actor, name="João Pereira", document="11.444.777/0001-61", due_day=15)
    subscribers.add_subscriber(ctx, login="maria", password="pw", plan="Fibra 100M", customer_id=maria["id"], actor=actor)
    subscribers.add_subscriber(ctx, login="joao", password="pw", plan="Fibra 100M", customer_id=joao["id"], actor=actor)
    subscribers.add_subscriber(ctx, login="hotspot1", password="pw", plan="Fibra 100M", actor=actor)
    subscribers.add_subscriber(ctx, login="ex", password="pw", plan="Fibra 100M", customer_id=joao["id"], actor=actor)
    _disable(ctx, "ex")
    for login in ("maria", "joao", "hotspot1", "ex"):
        joined_on(ctx, login, dt.date(2026, 10, 1))
    return ctx


def _disable(ctx: Context, login: str) -> None:
    with ctx.transaction() as uow:
        uow.session.execute(update(Subscriber).where(Subscriber.login == login).values(status="disabled"))


def by_login(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["login"]: row for row in rows}

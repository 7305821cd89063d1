"""Demo data: what `make run` loads the first time so a fresh checkout answers radclient at once.

A NAS for 127.0.0.1 (secret ``testing123``), three plans, a customer, the logins ``maria`` (PPPoE,
password ``senha123``), ``joao`` (static IP), a Hotspot MAC login, and ``--subscribers N`` generated
logins ``user00001``... with passwords ``pw00001``... (the pattern the benchmarks use). ``aaa demo``
then lets the plugins add theirs (``aaa_demo_loaded``): the invoicing plugin issues this month's
invoices of the two customers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from aaa.context import Context
from aaa.db.models import Nas, Plan, SubscriberStatus, utcnow
from aaa.importer import insert_subscribers
from aaa.services import customers, nas, plans, subscribers

DEMO_SECRET = "testing123"
DEMO_PLANS = (
    {"name": "Fibra 100M", "down": "100M", "up": "50M", "price": "89.90", "interim_interval": 300},
    {"name": "Fibra 300M", "down": "300M", "up": "150M", "price": "109.90", "interim_interval": 300,
     "burst": "400M/200M", "burst_threshold": "240M/120M", "burst_time_seconds": 16, "priority": 8},
    {"name": "Fibra 600M", "down": "600M", "up": "300M", "price": "149.90", "interim_interval": 300, "ipv4_pool": "pool-clientes"},
)


def load_demo(ctx: Context, *, count: int = 3, if_empty: bool = False, actor: str = "demo", plugins: bool = False) -> str:
    """Load the demo data and describe what was loaded; with ``plugins`` (what ``aaa demo`` does), the
    plugins then add theirs through ``aaa_demo_loaded`` (the invoicing plugin: this month's invoices)."""
    with ctx.sessions() as s:
        if s.scalar(select(Nas.id).limit(1)) is not None:
            if if_empty:
                return "demo data already loaded; nothing to do"
            if s.scalar(select(Nas.id).where(Nas.name == "demo-router")) is not None:
                return _generate(ctx, count, actor)
    nas.add_nas(ctx, name="demo-router", address="127.0.0.1", secret=DEMO_SECRET, actor=actor, description="demo NAS on loopback")
    for spec in DEMO_PLANS:
        plans.add_plan(ctx, actor=actor, **spec)  # type: ignore[arg-type]
    maria = customers.add_customer(
        ctx, actor=actor, name="Maria da Silva", document="529.982.247-25", phone="(11) 98765-4321",
        email="maria@example.com.br", address="Rua das Flores, 123, Centro, Campinas/SP", due_day=10, consent_whatsapp=True,
    )
    joao = customers.add_customer(ctx, actor=actor, name="João Pereira", document="11.444.777/0001-61", phone="(19) 3234-5678", due_day=15)
    logins: tuple[dict[str, Any], ...] = (
        {"login": "maria", "password": "senha123", "plan": "Fibra 300M", "customer_id": maria["id"], "mac": "4C:5E:0C:11:22:33"},
        {"login": "joao", "password": "joao2024", "plan": "Fibra 100M", "customer_id": joao["id"], "ip": "100.64.10.20"},
        {"login": "AA:BB:CC:00:00:01", "password": None, "plan": "Fibra 100M", "mac": "AA:BB:CC:00:00:01"},
    )
    for spec in logins:
        login = spec.pop("login")
        subscribers.add_subscriber(ctx, login=login, actor=actor, **spec)  # type: ignore[arg-type]
    generated = _generate(ctx, count, actor)
    lines = [f"demo data loaded: NAS demo-router (127.0.0.1, secret {DEMO_SECRET}), {len(DEMO_PLANS)} plans, 2 customers, 3 subscribers; {generated}"]
    if plugins:
        lines.extend(line for line in ctx.pm.hook.aaa_demo_loaded(context=ctx, actor=actor) if line)
    return "\n".join(lines)


def _generate(ctx: Context, count: int, actor: str) -> str:
    """``user00001``... with ``pw00001``..., on the first demo plan, skipping logins that exist."""
    from aaa.db.models import Subscriber

    with ctx.transaction() as uow:
        s = uow.session
        plan_id = s.scalar(select(Plan.id).where(Plan.name == DEMO_PLANS[0]["name"]))
        existing = set(s.scalars(select(Subscriber.login).where(Subscriber.login.like("user%"))))
        now = utcnow()
        records = []
        for i in range(1, count + 1):
            login = f"user{i:05d}"
            if login in existing:
                continue
            records.append({
                "login": login, "password_enc": ctx.vault.encrypt(f"pw{i:05d}"), "plan_id": plan_id,
                "status": SubscriberStatus.ACTIVE.value, "simultaneous_use": 1, "created_at": now,
                "updated_at": now, "status_changed_at": now,
            })
        insert_subscribers(uow, records)
    return f"{len(records)} generated subscribers (user00001/pw00001 ...)"

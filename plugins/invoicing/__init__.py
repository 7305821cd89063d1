"""The invoicing plugin: boletos and PIX for every subscriber, written like any third-party plugin.

Registered through the ``aaa.plugins`` entry point ``invoicing``. It adds the ``aaa billing`` and
``aaa invoice`` commands, the scheduled monthly run and daily overdue check, this month's invoices
for the demo data (``aaa demo``), and checks its
``[plugins.invoicing]`` settings when ``aaa serve`` starts. The money logic and storage are in
``billing``; this package only wires them into the product.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aaa import hookimpl
from billing import service
from billing.boleto import today_in_brazil
from billing.cycle import cycle_of
from billing.settings import load
from plugins.invoicing import jobs


@hookimpl
def aaa_startup(context: Any, reactor: Any) -> None:
    """Refuse to start with a bad ``[plugins.invoicing]`` table (one line naming the key)."""
    load(context)


@hookimpl
def aaa_register_commands(cli: Any) -> None:
    from plugins.invoicing.cli import billing_group, invoice_group

    cli.add_command(billing_group)
    cli.add_command(invoice_group)


@hookimpl
def aaa_demo_loaded(context: Any, actor: str) -> str:
    """Issue this month's invoices of the demo customers, so there are invoices to show and pay."""
    today = today_in_brazil()
    result = service.run_month(context, cycle_of(today), actor=actor, today=today)
    return f"{result['issued']} demo invoices issued for {result['cycles'][0]} (aaa invoice list)"


@hookimpl
def aaa_register_jobs(register: Callable[..., None]) -> None:
    register(jobs.MONTHLY_RUN, jobs.MONTHLY_RUN_INTERVAL, jobs.monthly_run)
    register(jobs.OVERDUE_CHECK, jobs.OVERDUE_CHECK_INTERVAL, jobs.overdue_check)

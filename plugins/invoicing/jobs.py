"""The invoicing plugin's periodic jobs, run by ``aaa serve`` under a lease (one node at a time).

Both are idempotent, so they run every hour and the first run of a day does that day's work:
the monthly run issues each invoice ``issue_days_before_due`` days before it is due (the unique
constraint makes repeats no-ops) and the overdue check fires ``aaa_invoice_overdue`` once per invoice.
Dates are today's in America/Sao_Paulo.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from billing import service
from billing.boleto import today_in_brazil

log = Logger()

MONTHLY_RUN = "invoicing.monthly_run"
MONTHLY_RUN_INTERVAL = 3600
OVERDUE_CHECK = "invoicing.overdue_check"
OVERDUE_CHECK_INTERVAL = 3600
JOB_ACTOR = f"job:{MONTHLY_RUN}"


def monthly_run(context: Any) -> dict[str, Any]:
    """Issue the invoices whose issue day has come (this month's and next month's cycles)."""
    result = service.run_month(context, None, actor=JOB_ACTOR, today=today_in_brazil())
    if result["issued"] or result["problems"]:
        log.info(
            "invoicing: issued {issued} invoices for {cycles}, {problems} subscribers not billed",
            issued=result["issued"], cycles=",".join(result["cycles"]), problems=len(result["problems"]),
        )
    return result


def overdue_check(context: Any) -> dict[str, Any]:
    """Mark invoices past due as overdue (fires ``aaa_invoice_overdue`` once each)."""
    result = service.mark_overdue(context, today_in_brazil())
    if result["overdue"]:
        log.info("invoicing: {count} invoices became overdue", count=result["overdue"])
    return result

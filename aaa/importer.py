"""Bulk import of subscribers from CSV, all or nothing, fast enough for 100,000 rows.

Columns: ``login,password,plan`` and optionally ``ip,mac,simultaneous_use,customer_name,document,
phone,email,address``. Every row is validated first; any problem is reported with its line number
and nothing is written. Valid files are inserted with batched Core INSERTs in one transaction.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from aaa import validate
from aaa.context import Context, UnitOfWork
from aaa.db import changes
from aaa.db.models import Plan, Subscriber, SubscriberStatus, utcnow
from aaa.errors import AAAError, ValidationError
from aaa.services import audit, customers

REQUIRED = ("login", "password", "plan")
OPTIONAL = ("ip", "mac", "simultaneous_use", "customer_name", "document", "phone", "email", "address")
CUSTOMER_FIELDS = {"customer_name": "name", "document": "document", "phone": "phone", "email": "email", "address": "address"}
BATCH = 5000
MAX_REPORTED = 20


class CsvImportError(ValidationError):
    """The file has bad rows; ``problems`` lists them as (line, message)."""

    def __init__(self, problems: list[tuple[int, str]], total: int) -> None:
        self.problems = problems
        shown = "; ".join(f"line {line}: {msg}" for line, msg in problems[:MAX_REPORTED])
        more = f" (and {len(problems) - MAX_REPORTED} more)" if len(problems) > MAX_REPORTED else ""
        super().__init__(f"{len(problems)} bad row(s) of {total}, nothing imported: {shown}{more}")


def _rows(path: Path) -> tuple[list[str], Iterable[tuple[int, dict[str, str]]]]:
    fh = path.open(newline="", encoding="utf-8-sig")
    reader = csv.DictReader(fh)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        fh.close()
        raise ValidationError(f"{path}: missing column(s) {', '.join(missing)} (need {','.join(REQUIRED)})")
    unknown = [c for c in header if c not in REQUIRED and c not in OPTIONAL]
    if unknown:
        fh.close()
        raise ValidationError(f"{path}: unknown column(s) {', '.join(unknown)}")
    reader.fieldnames = header

    def generate() -> Iterable[tuple[int, dict[str, str]]]:
        with fh:
            for row in reader:
                yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k is not None}

    return header, generate()


def import_csv(ctx: Context, path: str | Path, *, actor: str) -> dict[str, Any]:
    started = time.monotonic()
    path = Path(path)
    _, rows = _rows(path)
    with ctx.transaction() as uow:
        s = uow.session
        plan_ids = dict(s.execute(select(Plan.name, Plan.id)).tuples().all())
        taken_logins = set(s.scalars(select(Subscriber.login)))
        taken_ips = {ip for ip in s.scalars(select(Subscriber.static_ipv4)) if ip}
        problems: list[tuple[int, str]] = []
        subscribers: list[dict[str, Any]] = []
        customer_rows: list[tuple[int, dict[str, Any], dict[str, Any]]] = []  # (line, subscriber record, fields)
        total = 0
        now = utcnow()
        for line, row in rows:
            total += 1
            fields = {CUSTOMER_FIELDS[k]: v for k, v in row.items() if k in CUSTOMER_FIELDS and v}
            if fields and "name" not in fields:
                problems.append((line, "customer fields given without customer_name"))
                continue
            try:
                record = _subscriber_record(ctx, row, plan_ids, taken_logins, taken_ips, now)
            except AAAError as exc:
                problems.append((line, str(exc)))
                continue
            subscribers.append(record)
            if fields:
                customer_rows.append((line, record, fields))
        for line, record, fields in customer_rows:  # rolled back with the rest if any row is bad
            try:
                record["customer_id"] = customers.create(ctx, uow, fields).id
            except AAAError as exc:
                problems.append((line, str(exc)))
        if problems:
            raise CsvImportError(sorted(problems), total)
        insert_subscribers(uow, subscribers)
        audit.record(uow, actor=actor, action="subscriber.import", target=path.name, detail={"rows": len(subscribers)})
    elapsed = time.monotonic() - started
    return {"imported": len(subscribers), "customers": len(customer_rows), "seconds": round(elapsed, 2)}


def _subscriber_record(
    ctx: Context, row: dict[str, str], plan_ids: dict[str, int], taken_logins: set[str], taken_ips: set[str], now: Any
) -> dict[str, Any]:
    login = validate.login(row.get("login", ""))
    if login in taken_logins:
        raise ValidationError(f"duplicate login {login!r}")
    plan = row.get("plan", "")
    if plan not in plan_ids:
        raise ValidationError(f"unknown plan {plan!r}")
    password = row.get("password", "")
    if not password and not row.get("mac"):
        raise ValidationError("password is required (or a mac for MAC authentication)")
    ip = validate.ipv4(row["ip"], what="static IP") if row.get("ip") else None
    if ip and ip in taken_ips:
        raise ValidationError(f"static IP {ip} already in use")
    mac = validate.mac(row["mac"]) if row.get("mac") else None
    simultaneous = int(row["simultaneous_use"]) if row.get("simultaneous_use", "").isdigit() else 1
    taken_logins.add(login)
    if ip:
        taken_ips.add(ip)
    return {
        "login": login,
        "password_enc": ctx.vault.encrypt(password) if password else None,
        "plan_id": plan_ids[plan],
        "status": SubscriberStatus.ACTIVE.value,
        "static_ipv4": ip,
        "mac_binding": mac,
        "simultaneous_use": simultaneous,
        "customer_id": None,
        "created_at": now,
        "updated_at": now,
        "status_changed_at": now,
    }


def insert_subscribers(uow: UnitOfWork, records: list[dict[str, Any]]) -> None:
    """Batched INSERTs stamped with one change-counter value (the server cache sees them at once)."""
    if not records:
        return
    seq = changes.bump(uow.session.connection())
    for start in range(0, len(records), BATCH):
        batch = [{**r, "change_seq": seq} for r in records[start : start + BATCH]]
        uow.session.execute(insert(Subscriber), batch)


__all__ = ["CsvImportError", "import_csv", "insert_subscribers"]

"""Payments, late fee and interest, second copies, the overdue check and CNAB 240 return files."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from invoicing_support import (  # noqa: F401  (fixtures)
    PRICE,
    billing_data_fixture,
    by_login,
    recorder_fixture,
)
from sqlalchemy import func, select

from aaa.errors import ConflictError, NotFoundError, ValidationError
from aaa.services import outbox, subscribers
from billing import boleto, cnab240, latefee, pix, service
from billing.cnab240 import PaymentRecord
from billing.models import Payment

DEC_1 = dt.date(2026, 12, 1)
MARIA_DUE = dt.date(2026, 12, 10)  # a Thursday


@pytest.fixture
def issued(billing_data, actor):
    """The December invoices of Maria (due 10/12) and João (due 15/12), by login."""
    service.run_month(billing_data, "2026-12", actor=actor, today=DEC_1)
    return by_login(service.list_invoices(billing_data))


def payments(ctx) -> int:
    with ctx.sessions() as s:
        return s.scalar(select(func.count()).select_from(Payment))


def test_partial_then_rest_pays_the_invoice_and_fires_paid_once_per_payment(
    billing_data, issued, recorder, actor
):
    maria = issued["maria"]["id"]
    first = service.pay(billing_data, maria, Decimal("50.00"), dt.date(2026, 12, 5), actor=actor)
    assert first["invoice"]["status"] == "open" and first["owed"]["balance"] == "49.90"
    second = service.pay(billing_data, maria, Decimal("49.90"), MARIA_DUE, actor=actor)
    assert second["invoice"]["status"] == "paid" and second["invoice"]["paid_on"] == "2026-12-10"
    paid = recorder.of("paid")
    assert [e["payment"]["amount"] for e in paid] == ["50.00", "49.90"]
    assert [e["invoice"]["status"] for e in paid] == ["open", "paid"]


def test_over_payment_is_recorded(billing_data, issued, actor):
    result = service.pay(billing_data, issued["joao"]["id"], Decimal("120.00"), DEC_1, actor=actor)
    assert result["invoice"]["status"] == "paid" and result["invoice"]["paid"] == "120.00"
    assert result["owed"]["balance"] == "0.00"


@pytest.mark.parametrize(
    "paid_on",
    [dt.date(2026, 12, 11), dt.date(2026, 12, 31), dt.date(2027, 1, 4), dt.date(2027, 3, 15)],
)
def test_late_payment_owes_fine_and_interest_from_latefee(billing_data, issued, actor, paid_on):
    maria = issued["maria"]["id"]
    expected = latefee.amount_due(Decimal(PRICE), MARIA_DUE, paid_on)
    assert expected.fine == Decimal("2.00") and expected.interest > 0
    short = service.pay(billing_data, maria, expected.total - Decimal("0.01"), paid_on, actor=actor)
    assert short["owed"]["fine"] == f"{expected.fine:.2f}"
    assert short["owed"]["interest"] == f"{expected.interest:.2f}"
    assert short["invoice"]["status"] == "open" and short["owed"]["balance"] == "0.01"
    rest = service.pay(billing_data, maria, Decimal("0.01"), paid_on, actor=actor)
    assert rest["invoice"]["status"] == "paid"


def test_paying_on_the_due_date_owes_no_fine(billing_data, issued, actor):
    result = service.pay(billing_data, issued["maria"]["id"], Decimal(PRICE), MARIA_DUE, actor=actor)
    assert result["owed"]["fine"] == "0.00" and result["invoice"]["status"] == "paid"


def test_second_copy_carries_the_updated_amount_and_a_new_boleto_and_pix(
    billing_data, issued, recorder, actor
):
    original = issued["maria"]
    new_due = dt.date(2026, 12, 28)
    copy = service.second_copy(
        billing_data, original["id"], new_due, actor=actor, today=dt.date(2026, 12, 20)
    )
    expected = latefee.amount_due(Decimal(PRICE), MARIA_DUE, new_due).total
    assert Decimal(copy["amount"]) == expected > Decimal(PRICE)
    assert (
        copy["kind"] == "second_copy" and copy["parent_id"] == original["id"] and copy["cycle"] == "2026-12"
    )
    assert [i["kind"] for i in copy["items"]] == ["plan", "late_fee"]
    slip = boleto.parse(copy["linha_digitavel"], today=dt.date(2026, 12, 20))
    assert slip.amount == expected and slip.due_date == new_due
    assert copy["nosso_numero"] != original["nosso_numero"]
    payload = pix.parse(copy["pix_payload"])
    assert payload.amount == expected and payload.txid == copy["pix_txid"] != original["pix_txid"]
    assert service.show_invoice(billing_data, original["id"])["status"] == "renegotiated"
    assert recorder.of("issued")[-1]["invoice"]["id"] == copy["id"]
    paid = service.pay(billing_data, copy["id"], expected, new_due, actor=actor)
    assert paid["invoice"]["id"] == copy["id"] and paid["invoice"]["status"] == "paid"


def test_second_copy_after_a_partial_payment_charges_the_balance(billing_data, issued, actor):
    maria = issued["maria"]["id"]
    service.pay(billing_data, maria, Decimal("40.00"), dt.date(2026, 12, 5), actor=actor)
    new_due = dt.date(2026, 12, 21)
    copy = service.second_copy(billing_data, maria, new_due, actor=actor, today=dt.date(2026, 12, 15))
    expected = latefee.amount_due(Decimal(PRICE), MARIA_DUE, new_due).total - Decimal("40.00")
    assert Decimal(copy["amount"]) == expected


def test_paying_a_replaced_invoice_lands_on_its_second_copy(billing_data, issued, actor):
    maria = issued["maria"]["id"]
    copy = service.second_copy(
        billing_data, maria, dt.date(2026, 12, 28), actor=actor, today=dt.date(2026, 12, 20)
    )
    result = service.pay(billing_data, maria, Decimal(copy["amount"]), dt.date(2026, 12, 22), actor=actor)
    assert result["invoice"]["id"] == copy["id"] and result["invoice"]["status"] == "paid"


def test_second_copy_refuses_past_dates_and_settled_invoices(billing_data, issued, actor):
    joao = issued["joao"]["id"]
    with pytest.raises(ValidationError, match="in the past"):
        service.second_copy(billing_data, joao, dt.date(2026, 12, 1), actor=actor, today=dt.date(2026, 12, 2))
    service.pay(billing_data, joao, Decimal(PRICE), DEC_1, actor=actor)
    with pytest.raises(ConflictError, match="is paid"):
        service.second_copy(billing_data, joao, dt.date(2026, 12, 30), actor=actor, today=DEC_1)


def test_mark_overdue_fires_once_per_invoice(billing_data, issued, recorder, actor):
    assert service.mark_overdue(billing_data, MARIA_DUE)["overdue"] == 0
    first = service.mark_overdue(billing_data, dt.date(2026, 12, 11))
    again = service.mark_overdue(billing_data, dt.date(2026, 12, 12))
    later = service.mark_overdue(billing_data, dt.date(2026, 12, 16))
    assert (first["invoice_ids"], again["overdue"], later["invoice_ids"]) == (
        [issued["maria"]["id"]],
        0,
        [issued["joao"]["id"]],
    )
    assert [e["invoice"]["login"] for e in recorder.of("overdue")] == ["maria", "joao"]
    assert service.show_invoice(billing_data, issued["maria"]["id"])["status"] == "overdue"


def test_due_date_on_a_weekend_is_not_overdue_on_the_next_business_day(billing_data, actor):
    service.run_month(billing_data, "2027-01", actor=actor, today=dt.date(2027, 1, 1))
    rows = by_login(service.list_invoices(billing_data))
    assert rows["maria"]["due_date"] == "2027-01-10"  # a Sunday
    assert service.mark_overdue(billing_data, dt.date(2027, 1, 11))["overdue"] == 0
    assert service.mark_overdue(billing_data, dt.date(2027, 1, 12))["invoice_ids"] == [rows["maria"]["id"]]


def test_paying_an_overdue_invoice_makes_it_paid(billing_data, issued, actor):
    service.mark_overdue(billing_data, dt.date(2026, 12, 20))
    owed = service.show_invoice(billing_data, issued["maria"]["id"], on=dt.date(2026, 12, 20))["owed"]
    result = service.pay(
        billing_data, issued["maria"]["id"], Decimal(owed["total"]), dt.date(2026, 12, 20), actor=actor
    )
    assert result["invoice"]["status"] == "paid"


def test_cancelled_invoice_cannot_be_paid(billing_data, issued, actor):
    service.cancel(billing_data, issued["joao"]["id"], actor=actor, reason="contrato cancelado")
    with pytest.raises(ConflictError, match="is cancelled"):
        service.pay(billing_data, issued["joao"]["id"], Decimal("10"), DEC_1, actor=actor)
    assert payments(billing_data) == 0


def test_unknown_invoice_and_bad_amount_are_refused(billing_data, issued, actor):
    with pytest.raises(NotFoundError, match="invoice 999 not found"):
        service.pay(billing_data, 999, Decimal("1"), DEC_1, actor=actor)
    with pytest.raises(ValidationError, match="greater than zero"):
        service.pay(billing_data, issued["maria"]["id"], Decimal("0"), DEC_1, actor=actor)


def _return_file(issued, tmp_path, sequence: int = 1):
    maria, joao = issued["maria"], issued["joao"]
    records = [
        # Banco do Brasil reports the nosso número as convênio + sequence (17 digits)
        PaymentRecord(
            nosso_numero="1234567" + maria["nosso_numero"],
            occurrence="06",
            amount_paid=Decimal(PRICE),
            face_value=Decimal(PRICE),
            due_date=MARIA_DUE,
            occurrence_date=dt.date(2026, 12, 9),
        ),
        PaymentRecord(
            nosso_numero=joao["nosso_numero"],
            occurrence="06",
            amount_paid=Decimal("50.00"),
            face_value=Decimal(PRICE),
            occurrence_date=dt.date(2026, 12, 14),
        ),
        PaymentRecord(
            nosso_numero="0000099999",
            occurrence="06",
            amount_paid=Decimal("10.00"),
            occurrence_date=dt.date(2026, 12, 14),
        ),
        PaymentRecord(nosso_numero=joao["nosso_numero"], occurrence="02", amount_paid=Decimal("0")),
    ]
    path = tmp_path / f"retorno{sequence}.ret"
    path.write_text(
        cnab240.build_return_file(records, bank="001", generated=dt.date(2026, 12, 15), sequence=sequence)
    )
    return path


def test_cnab_return_file_settles_the_right_invoices_and_reports_the_rest(
    billing_data, issued, recorder, actor, tmp_path
):
    result = service.import_return_file(billing_data, _return_file(issued, tmp_path), actor=actor)
    settled = {row["invoice_id"]: row for row in result["settled"]}
    assert settled[issued["maria"]["id"]]["status"] == "paid"
    assert (
        settled[issued["joao"]["id"]]["status"] == "open"
        and settled[issued["joao"]["id"]]["amount"] == "50.00"
    )
    assert [(u["nosso_numero"], u["amount"]) for u in result["unmatched"]] == [("0000099999", "10.00")]
    assert result["ignored"] == 1 and len(recorder.of("paid")) == 2
    maria = service.show_invoice(billing_data, issued["maria"]["id"])
    assert maria["paid_on"] == "2026-12-09" and maria["payments"][0]["method"] == "cnab"


def test_reimporting_a_return_file_changes_nothing(billing_data, issued, recorder, actor, tmp_path):
    path = _return_file(issued, tmp_path)
    service.import_return_file(billing_data, path, actor=actor)
    before = service.list_invoices(billing_data)
    again = service.import_return_file(billing_data, path, actor=actor)
    assert again["settled"] == [] and again["already_imported"] == 2 and len(again["unmatched"]) == 1
    assert service.list_invoices(billing_data) == before and payments(billing_data) == 2
    assert len(recorder.of("paid")) == 2


def test_bad_return_file_is_one_clear_error(billing_data, actor, tmp_path):
    bad = tmp_path / "bad.ret"
    bad.write_text("not a cnab file\n")
    with pytest.raises(ValidationError):
        service.import_return_file(billing_data, bad, actor=actor)
    with pytest.raises(ValidationError, match="cannot read return file"):
        service.import_return_file(billing_data, tmp_path / "missing.ret", actor=actor)


def _suspended_with_a_session(ctx, actor) -> None:
    """Maria's December invoice overdue, the notice sent, suspended 15 days later, online on a NAS."""
    from aaa.db.models import AcctSession, utcnow
    from aaa.services import nas
    from policy import lifecycle

    nas.add_nas(ctx, name="r1", address="127.0.0.1", secret="s3cret-s3cret", actor=actor)
    service.mark_overdue(ctx, dt.date(2026, 12, 11))
    assert subscribers.show_subscriber(ctx, "maria")["status"] == "notified"
    lifecycle.evaluate(ctx, now=utcnow() + dt.timedelta(days=15, hours=1))
    assert subscribers.show_subscriber(ctx, "maria")["status"] == "suspended"
    with ctx.transaction() as uow:
        now = utcnow()
        uow.session.add(AcctSession(nas_id=nas.show_nas(ctx, "r1")["id"], acct_session_id="81a00001", login="maria",
                                    framed_ip="100.64.0.9", started_at=now, updated_at=now))  # fmt: skip


def _reauthorize_rows(ctx) -> list[dict]:
    return [
        r
        for r in outbox.list_rows(ctx)
        if r["kind"] == "radius.reauthorize" and r["payload"].get("login") == "maria"
    ]


def test_paying_the_overdue_invoice_reactivates_the_suspended_subscriber_and_tells_the_router(
    billing_data, issued, actor
):
    _suspended_with_a_session(billing_data, actor)
    invoice_id = issued["maria"]["id"]
    owed = service.show_invoice(billing_data, invoice_id, on=dt.date(2026, 12, 28))["owed"]
    result = service.pay(billing_data, invoice_id, Decimal(owed["total"]), dt.date(2026, 12, 28), actor=actor)
    assert result["invoice"]["status"] == "paid" and result["invoice"]["overdue_invoices_left"] == 0
    shown = subscribers.show_subscriber(billing_data, "maria")
    assert shown["status"] == "active" and shown["history"][0]["actor"] == "payment"
    rows = _reauthorize_rows(billing_data)
    assert (
        rows
        and rows[-1]["payload"]["acct_session_id"] == "81a00001"
        and rows[-1]["payload"]["cause"] == "status:active"
    )


def test_a_partial_payment_or_another_overdue_invoice_keeps_the_subscriber_suspended(
    billing_data, issued, actor
):
    service.run_month(billing_data, "2027-01", actor=actor, today=dt.date(2027, 1, 1))
    january = [
        r for r in service.list_invoices(billing_data) if r["login"] == "maria" and r["cycle"] == "2027-01"
    ][0]
    _suspended_with_a_session(billing_data, actor)
    service.mark_overdue(billing_data, dt.date(2027, 1, 12))
    december = issued["maria"]["id"]
    service.pay(billing_data, december, Decimal("10.00"), dt.date(2027, 1, 12), actor=actor)
    assert subscribers.show_subscriber(billing_data, "maria")["status"] == "suspended"
    owed = service.show_invoice(billing_data, december, on=dt.date(2027, 1, 12))["owed"]
    paid = service.pay(billing_data, december, Decimal(owed["balance"]), dt.date(2027, 1, 12), actor=actor)
    assert paid["invoice"]["status"] == "paid" and paid["invoice"]["overdue_invoices_left"] == 1
    assert subscribers.show_subscriber(billing_data, "maria")["status"] == "suspended"
    owed = service.show_invoice(billing_data, january["id"], on=dt.date(2027, 1, 12))["owed"]
    service.pay(billing_data, january["id"], Decimal(owed["total"]), dt.date(2027, 1, 12), actor=actor)
    assert subscribers.show_subscriber(billing_data, "maria")["status"] == "active"


def test_coming_back_after_payment_carries_no_reconnection_fee(billing_data, issued, actor):
    """Res. 765/2023: no reconnection fee, ever. Paying the overdue invoice reactivates and bills
    nothing more: no invoice appears, and next month Maria (suspended, then reactivated) is billed
    exactly what João (same plan, never suspended) is."""
    _suspended_with_a_session(billing_data, actor)
    before = service.list_invoices(billing_data)
    december = issued["maria"]["id"]
    owed = service.show_invoice(billing_data, december, on=dt.date(2026, 12, 28))["owed"]
    service.pay(billing_data, december, Decimal(owed["total"]), dt.date(2026, 12, 28), actor=actor)
    assert subscribers.show_subscriber(billing_data, "maria")["status"] == "active"
    assert len(service.list_invoices(billing_data)) == len(before)
    service.run_month(billing_data, "2027-01", actor=actor, today=dt.date(2027, 1, 1))
    january = {r["login"]: r for r in service.list_invoices(billing_data) if r["cycle"] == "2027-01"}
    assert Decimal(str(january["maria"]["amount"])) == Decimal(str(january["joao"]["amount"]))

"""Invoice document: the Portuguese HTML and the PDF hold the linha digitável and the PIX payload."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pypdf
import pytest

from billing import boleto, pix
from billing.render import InvoiceItem, InvoiceView, render_html, render_pdf


@pytest.fixture
def view() -> InvoiceView:
    slip = boleto.build(boleto.BancoDoBrasil("7777777"), Decimal("101.90"), date(2026, 12, 10), "123")
    payload = pix.build("11444777000161", "Provedor Exemplo", "Recife", Decimal("101.90"), "FAT2026120001")
    return InvoiceView(
        number="2026-000123",
        cycle="2026-12",
        issue_date=date(2026, 11, 28),
        due_date=date(2026, 12, 10),
        issuer_name="Provedor Exemplo Ltda",
        issuer_document="11.444.777/0001-61",
        issuer_address="Rua das Flores, 100 - Recife/PE",
        customer_name="Maria da Conceição <script>",
        customer_document="***.718.458-**",
        customer_address="Av. Brasil, 5 - Olinda/PE",
        items=[
            InvoiceItem("Plano Fibra 300 Mbps - dezembro/2026", Decimal("99.90")),
            InvoiceItem("Instalação", Decimal("1.00"), quantity=2),
        ],
        boleto=slip,
        bank_name="Banco do Brasil",
        nosso_numero="77777770000000123",
        pix_payload=payload,
    )


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def test_pdf_text_holds_the_linha_digitavel_and_the_pix_payload(view: InvoiceView) -> None:
    assert view.boleto is not None and view.pix_payload is not None
    text = _pdf_text(render_pdf(view))
    assert view.boleto.linha_formatted in text
    assert "".join(view.pix_payload.split()) in "".join(text.split())  # the payload may wrap


def test_pdf_text_is_in_portuguese_with_totals_and_late_payment_rules(view: InvoiceView) -> None:
    text = _pdf_text(render_pdf(view))
    assert "Vencimento: 10/12/2026" in text
    assert "R$ 101,90" in text
    assert "multa de 2%" in text and "1% ao mês" in text
    assert "***.718.458-**" in text


def test_pdf_starts_with_the_pdf_signature(view: InvoiceView) -> None:
    assert render_pdf(view).startswith(b"%PDF-")


def test_html_embeds_barcode_and_qr_and_escapes_customer_text(view: InvoiceView) -> None:
    html = render_html(view)
    assert '<html lang="pt-BR">' in html
    assert html.count("<svg") == 2
    assert "Maria da Conceição &lt;script&gt;" in html
    assert "00190.00009 07777.777009 00000.123182 1 16560000010190" in html


def test_totals_sum_items_and_subtract_the_discount(view: InvoiceView) -> None:
    assert view.total == Decimal("101.90")
    discounted = InvoiceView(**{**view.__dict__, "discount": Decimal("10.00")})
    assert discounted.total == Decimal("91.90")
    assert "-R$ 10,00" in render_html(discounted)


def test_invoice_without_boleto_or_pix_still_renders(view: InvoiceView) -> None:
    bare = InvoiceView(**{**view.__dict__, "boleto": None, "pix_payload": None})
    assert "Linha digitável" not in render_html(bare)
    assert "Fatura 2026-000123" in _pdf_text(render_pdf(bare))

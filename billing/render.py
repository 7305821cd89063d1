"""The invoice document a customer receives: HTML from the jinja2 template and a printable PDF.

Input is a plain `InvoiceView` (no database model): the caller fills it from storage, with the customer's
document already masked. The HTML embeds the ITF barcode and the PIX QR code as SVG; the PDF writes the
same template's text with fpdf2 and draws the barcode with rectangles and the QR code as an image.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import jinja2
from fpdf import FPDF
from markupsafe import Markup

from billing import barcode, pix
from billing.boleto import Boleto
from billing.money import format_brl, quantize

TEMPLATE_NAME = "invoice.html"
DEFAULT_TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "etc" / "templates"


@dataclass(frozen=True)
class InvoiceItem:
    """One line of the invoice: the plan's monthly fee, an installation, equipment, a pro-rata period."""

    description: str
    unit_price: Decimal
    quantity: int = 1

    @property
    def total(self) -> Decimal:
        return quantize(self.unit_price * self.quantity)


@dataclass(frozen=True)
class InvoiceView:
    """Everything the invoice document shows, already formatted where formatting is a policy choice."""

    number: str
    cycle: str
    issue_date: date
    due_date: date
    issuer_name: str
    customer_name: str
    items: list[InvoiceItem]
    issuer_document: str = ""
    issuer_address: str = ""
    customer_document: str = ""
    customer_address: str = ""
    discount: Decimal = Decimal("0.00")
    fine_pct: Decimal = Decimal("2")
    monthly_interest_pct: Decimal = Decimal("1")
    boleto: Boleto | None = None
    bank_name: str = ""
    nosso_numero: str = ""
    pix_payload: str | None = None

    @property
    def total(self) -> Decimal:
        return quantize(sum((i.total for i in self.items), Decimal("0")) - self.discount)


def _date_br(value: date) -> str:
    return value.strftime("%d/%m/%Y")


def _pct(value: Decimal) -> str:
    text = f"{value.normalize():f}".replace(".", ",")
    return f"{text}%"


def environment(template_dir: Path | None = None) -> jinja2.Environment:
    """The jinja2 environment with the Brazilian filters (brl, data, pct); autoescaping on."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir or DEFAULT_TEMPLATE_DIR)),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(brl=format_brl, data=_date_br, pct=_pct)
    return env


def render_html(view: InvoiceView, template_dir: Path | None = None, for_pdf: bool = False) -> str:
    """The invoice as an HTML page (or, with `for_pdf`, the plain subset the PDF writer reads)."""
    template = environment(template_dir).get_template(TEMPLATE_NAME)
    barcode_svg = barcode.svg(view.boleto.barcode, narrow=1.2, height=60) if view.boleto else ""
    qr = pix.qr_svg(view.pix_payload) if view.pix_payload else ""
    return template.render(inv=view, for_pdf=for_pdf, barcode_svg=Markup(barcode_svg), qr_svg=Markup(qr))


def _latin1(text: str) -> str:
    """fpdf2's core fonts cover Latin-1 only (all of Portuguese); anything else becomes "?"."""
    return text.encode("latin-1", "replace").decode("latin-1")


def render_pdf(view: InvoiceView, template_dir: Path | None = None) -> bytes:
    """The invoice as an A4 PDF: the template's text, then the ITF barcode and the PIX QR code."""
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_title(_latin1(f"Fatura {view.number}"))
    pdf.set_author(_latin1(view.issuer_name))
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("helvetica", size=10)
    pdf.write_html(_latin1(render_html(view, template_dir, for_pdf=True)))
    if view.boleto:
        _ensure_room(pdf, barcode.BOLETO_HEIGHT_MM + 10)
        y = pdf.get_y() + 4
        barcode.draw(
            lambda x, y_, w, h: pdf.rect(x, y_, w, h, style="F"), pdf.l_margin + 5, y, view.boleto.barcode
        )
        pdf.set_y(y + barcode.BOLETO_HEIGHT_MM + 4)
    if view.pix_payload:
        size = 40.0
        _ensure_room(pdf, size + 4)
        image = io.BytesIO(pix.qr_png(view.pix_payload, scale=8))
        pdf.image(image, x=pdf.l_margin, y=pdf.get_y() + 2, w=size, h=size)
        pdf.set_y(pdf.get_y() + size + 4)
    return bytes(pdf.output())


def _ensure_room(pdf: FPDF, height: float) -> None:
    if pdf.get_y() + height > pdf.h - pdf.b_margin:
        pdf.add_page()

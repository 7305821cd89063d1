"""CNAB 240 return files (arquivo retorno de cobrança, FEBRABAN): read payments, and write test files.

A file is lines of 240 characters: a file header (record type 0), per batch a batch header (1), detail
records (3) in segments, and a batch trailer (5), then the file trailer (9). A bank reports each boleto
event as a segment T (which boleto: nosso número, due date, face value, fee) followed by a segment U
(the money: amount paid, interest/fine, discounts, net credit, payment and credit dates). Occurrence
code 06 is a settlement ("liquidação").

Positions follow the FEBRABAN layout as transcribed in `imobanco/icnab240` data/csvs/main_full.csv
(1-based, inclusive). One field table serves both the reader and the writer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from aaa.errors import ValidationError
from billing.money import from_cents, to_cents

LINE_LENGTH = 240
RETURN_FILE_CODE = "2"  # header position 143: 1 = remessa (to the bank), 2 = retorno (from the bank)

OCCURRENCES = {
    "02": "entrada confirmada",
    "03": "entrada rejeitada",
    "06": "liquidação",
    "09": "baixa",
    "17": "liquidação após baixa ou de título não registrado",
    "28": "débito de tarifas/custas",
}
SETTLEMENT_CODES = frozenset({"06", "17"})

# name: (start, end, numeric) — 1-based inclusive positions
_Field = tuple[int, int, bool]
_Value = str | int | Decimal | date | None
_CONTROL: dict[str, _Field] = {"bank": (1, 3, True), "batch": (4, 7, True), "record_type": (8, 8, True)}
FILE_HEADER: dict[str, _Field] = {
    **_CONTROL,
    "company_id_type": (18, 18, True),
    "company_id": (19, 32, False),
    "agreement": (33, 52, False),
    "agency": (53, 57, True),
    "account": (59, 70, True),
    "company_name": (73, 102, False),
    "bank_name": (103, 132, False),
    "file_code": (143, 143, True),
    "generated_date": (144, 151, True),
    "generated_time": (152, 157, True),
    "sequence": (158, 163, True),
    "layout_version": (164, 166, True),
}
BATCH_HEADER: dict[str, _Field] = {
    **_CONTROL,
    "operation": (9, 9, False),
    "service": (10, 11, True),
    "layout_version": (14, 16, True),
    "company_id_type": (18, 18, True),
    "company_id": (19, 33, False),
    "agreement": (34, 53, False),
    "agency": (54, 58, True),
    "account": (60, 71, True),
    "company_name": (74, 103, False),
    "return_number": (184, 191, True),
    "recorded_date": (192, 199, True),
    "credit_date": (200, 207, True),
}
_DETAIL: dict[str, _Field] = {
    **_CONTROL,
    "sequence": (9, 13, True),
    "segment": (14, 14, False),
    "occurrence": (16, 17, True),
}
SEGMENT_T: dict[str, _Field] = {
    **_DETAIL,
    "agency": (18, 22, True),
    "account": (24, 35, True),
    "nosso_numero": (38, 57, False),
    "wallet": (58, 58, True),
    "document_number": (59, 73, False),
    "due_date": (74, 81, True),
    "face_value": (82, 96, True),
    "collecting_bank": (97, 99, True),
    "collecting_agency": (100, 104, True),
    "company_reference": (106, 130, False),
    "currency": (131, 132, True),
    "payer_id_type": (133, 133, True),
    "payer_id": (134, 148, True),
    "payer_name": (149, 188, False),
    "fee": (199, 213, True),
    "reasons": (214, 223, False),
}
SEGMENT_U: dict[str, _Field] = {
    **_DETAIL,
    "interest_and_fine": (18, 32, True),
    "discount": (33, 47, True),
    "rebate": (48, 62, True),
    "iof": (63, 77, True),
    "amount_paid": (78, 92, True),
    "net_credit": (93, 107, True),
    "other_expenses": (108, 122, True),
    "other_credits": (123, 137, True),
    "occurrence_date": (138, 145, True),
    "credit_date": (146, 153, True),
}
BATCH_TRAILER: dict[str, _Field] = {
    **_CONTROL,
    "record_count": (18, 23, True),
    "simple_count": (24, 29, True),
    "simple_total": (30, 46, True),
}
FILE_TRAILER: dict[str, _Field] = {
    **_CONTROL,
    "batch_count": (18, 23, True),
    "record_count": (24, 29, True),
}


@dataclass(frozen=True)
class PaymentRecord:
    """One boleto event from a return file (a segment T and its segment U).

    `line` is the 1-based line of the segment T in the file it was read from (0 when built in code).
    """

    nosso_numero: str
    occurrence: str
    amount_paid: Decimal
    face_value: Decimal = Decimal("0.00")
    due_date: date | None = None
    occurrence_date: date | None = None
    credit_date: date | None = None
    fee: Decimal = Decimal("0.00")
    interest_and_fine: Decimal = Decimal("0.00")
    discount: Decimal = Decimal("0.00")
    rebate: Decimal = Decimal("0.00")
    net_credit: Decimal = Decimal("0.00")
    document_number: str = ""
    company_reference: str = ""
    payer_name: str = ""
    line: int = 0

    @property
    def is_settlement(self) -> bool:
        """True when the boleto was paid (occurrence 06 or 17)."""
        return self.occurrence in SETTLEMENT_CODES

    @property
    def occurrence_text(self) -> str:
        return OCCURRENCES.get(self.occurrence, f"ocorrência {self.occurrence}")


@dataclass(frozen=True)
class ReturnFile:
    """A parsed return file: who sent it and the boleto events it reports."""

    bank_code: str
    company_name: str
    generated: date | None
    sequence: int
    records: list[PaymentRecord] = field(default_factory=list)

    @property
    def settlements(self) -> list[PaymentRecord]:
        return [r for r in self.records if r.is_settlement]


class _Line:
    """One 240-character line and its number, with typed accessors that report the line on error."""

    def __init__(self, text: str, number: int) -> None:
        self.text, self.number = text, number

    def fail(self, reason: str) -> ValidationError:
        return ValidationError(f"CNAB 240 line {self.number}: {reason}")

    def raw(self, spec: dict[str, _Field], name: str) -> str:
        start, end, numeric = spec[name]
        value = self.text[start - 1 : end]
        if numeric and not value.isdigit():
            raise self.fail(f"field {name} (positions {start}-{end}) is not numeric: {value!r}")
        return value

    def text_field(self, spec: dict[str, _Field], name: str) -> str:
        return self.raw(spec, name).strip()

    def number_field(self, spec: dict[str, _Field], name: str) -> int:
        return int(self.raw(spec, name))

    def money(self, spec: dict[str, _Field], name: str) -> Decimal:
        return from_cents(self.number_field(spec, name))

    def date_field(self, spec: dict[str, _Field], name: str) -> date | None:
        value = self.raw(spec, name)
        if set(value) <= {"0"}:
            return None
        try:
            return datetime.strptime(value, "%d%m%Y").date()
        except ValueError:
            start, end, _ = spec[name]
            raise self.fail(
                f"field {name} (positions {start}-{end}) is not a date DDMMAAAA: {value!r}"
            ) from None


def _lines(data: str | bytes) -> list[_Line]:
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    raw_lines = text.rstrip("\x1a\r\n").splitlines()
    result = []
    for number, raw in enumerate(raw_lines, start=1):
        if len(raw) != LINE_LENGTH:
            raise ValidationError(
                f"CNAB 240 line {number}: has {len(raw)} characters, expected {LINE_LENGTH}"
            )
        result.append(_Line(raw, number))
    if not result:
        raise ValidationError("CNAB 240 file is empty")
    return result


def _record(t: _Line, u: _Line) -> PaymentRecord:
    if u.raw(SEGMENT_U, "batch") != t.raw(SEGMENT_T, "batch"):
        raise u.fail("segment U belongs to another batch than the segment T before it")
    occurrence = t.raw(SEGMENT_T, "occurrence")
    if u.raw(SEGMENT_U, "occurrence") != occurrence:
        raise u.fail("segment U has another occurrence code than the segment T before it")
    return PaymentRecord(
        nosso_numero=t.text_field(SEGMENT_T, "nosso_numero"),
        occurrence=occurrence,
        amount_paid=u.money(SEGMENT_U, "amount_paid"),
        face_value=t.money(SEGMENT_T, "face_value"),
        due_date=t.date_field(SEGMENT_T, "due_date"),
        occurrence_date=u.date_field(SEGMENT_U, "occurrence_date"),
        credit_date=u.date_field(SEGMENT_U, "credit_date"),
        fee=t.money(SEGMENT_T, "fee"),
        interest_and_fine=u.money(SEGMENT_U, "interest_and_fine"),
        discount=u.money(SEGMENT_U, "discount"),
        rebate=u.money(SEGMENT_U, "rebate"),
        net_credit=u.money(SEGMENT_U, "net_credit"),
        document_number=t.text_field(SEGMENT_T, "document_number"),
        company_reference=t.text_field(SEGMENT_T, "company_reference"),
        payer_name=t.text_field(SEGMENT_T, "payer_name"),
        line=t.number,
    )


def parse_return_file(data: str | bytes) -> ReturnFile:
    """Read a CNAB 240 return file (LF or CRLF line ends, optional trailing EOF ^Z).

    Checks line lengths, the record sequence (file header, batches, file trailer), that every segment T
    is followed by its segment U, numeric fields and dates, and the record counts in the trailers.
    Raises ValidationError naming the line. Segments other than T and U are skipped.
    """
    lines = _lines(data)
    header = lines[0]
    if header.raw(FILE_HEADER, "record_type") != "0":
        raise header.fail("the first line must be the file header (record type 0)")
    if header.raw(FILE_HEADER, "file_code") != RETURN_FILE_CODE:
        raise header.fail("this is not a return file (position 143 must be 2 = retorno)")
    bank = header.raw(FILE_HEADER, "bank")
    records: list[PaymentRecord] = []
    batches = 0
    batch_start: _Line | None = None
    pending_t: _Line | None = None
    for line in lines[1:]:
        if line.raw(_CONTROL, "bank") != bank:
            raise line.fail(f"bank code differs from the file header's {bank}")
        kind = line.raw(_CONTROL, "record_type")
        if pending_t is not None and not (kind == "3" and line.text[13] == "U"):
            raise pending_t.fail("segment T is not followed by its segment U")
        if kind == "1":
            if batch_start is not None:
                raise line.fail("batch header inside an open batch (missing batch trailer)")
            batch_start = line
        elif kind == "3":
            if batch_start is None:
                raise line.fail("detail record outside a batch")
            segment = line.raw(_DETAIL, "segment")
            if segment == "T":
                pending_t = line
            elif segment == "U":
                if pending_t is None:
                    raise line.fail("segment U without a segment T before it")
                records.append(_record(pending_t, line))
                pending_t = None
        elif kind == "5":
            if batch_start is None:
                raise line.fail("batch trailer without a batch header")
            expected = line.number - batch_start.number + 1
            if line.number_field(BATCH_TRAILER, "record_count") != expected:
                raise line.fail(
                    f"batch trailer counts {line.raw(BATCH_TRAILER, 'record_count')} records, batch has {expected}"
                )
            batches += 1
            batch_start = None
        elif kind == "9":
            if line is not lines[-1]:
                raise line.fail("file trailer is not the last line")
            if batch_start is not None:
                raise line.fail("file trailer inside an open batch (missing batch trailer)")
            if line.number_field(FILE_TRAILER, "batch_count") != batches:
                raise line.fail(
                    f"file trailer counts {line.raw(FILE_TRAILER, 'batch_count')} batches, file has {batches}"
                )
            if line.number_field(FILE_TRAILER, "record_count") != len(lines):
                raise line.fail(
                    f"file trailer counts {line.raw(FILE_TRAILER, 'record_count')} records, file has {len(lines)}"
                )
        else:
            raise line.fail(f"unknown record type {kind!r}")
    if lines[-1].raw(_CONTROL, "record_type") != "9":
        raise lines[-1].fail("the last line must be the file trailer (record type 9)")
    return ReturnFile(
        bank_code=bank,
        company_name=header.text_field(FILE_HEADER, "company_name"),
        generated=header.date_field(FILE_HEADER, "generated_date"),
        sequence=header.number_field(FILE_HEADER, "sequence"),
        records=records,
    )


class _Writer:
    """Fills a 240-character line from a field table."""

    def __init__(self) -> None:
        self.chars = [" "] * LINE_LENGTH

    def put(self, spec: dict[str, _Field], name: str, value: _Value) -> _Writer:
        start, end, numeric = spec[name]
        width = end - start + 1
        if isinstance(value, Decimal):
            text = str(to_cents(value))
        elif isinstance(value, date):
            text = value.strftime("%d%m%Y")
        elif value is None:
            text = "0" * width if numeric else ""
        else:
            text = str(value)
        text = text.rjust(width, "0") if numeric else text.ljust(width)
        if len(text) > width:
            raise ValidationError(f"CNAB 240 field {name} holds {width} characters, got {len(text)}")
        self.chars[start - 1 : end] = list(text)
        return self

    def line(self) -> str:
        return "".join(self.chars)


def build_return_file(
    records: Sequence[PaymentRecord],
    bank: str = "001",
    company_name: str = "",
    company_cnpj: str = "",
    agreement: str = "",
    agency: str = "0",
    account: str = "0",
    generated: date | None = None,
    sequence: int = 1,
    layout_version: str = "030",
) -> str:
    """Write a CNAB 240 return file holding `records` in one batch, lines ended with CRLF.

    Meant for tests, demos and replaying a bank's file; `parse_return_file` reads it back unchanged.
    """
    day = generated or date.today()
    bank_name = {"001": "BANCO DO BRASIL S.A.", "341": "BANCO ITAU S.A."}.get(bank, "")
    identity: dict[str, _Value] = {
        "bank": bank,
        "company_id_type": 2 if company_cnpj else 0,
        "company_id": company_cnpj,
        "agreement": agreement,
        "agency": agency,
        "account": account,
        "company_name": company_name.upper(),
    }
    file_header: dict[str, _Value] = {
        "batch": 0,
        "record_type": 0,
        "bank_name": bank_name,
        "file_code": RETURN_FILE_CODE,
        "generated_date": day,
        "generated_time": 0,
        "sequence": sequence,
        "layout_version": layout_version,
    }
    batch_header: dict[str, _Value] = {
        "batch": 1,
        "record_type": 1,
        "operation": "T",
        "service": 1,
        "layout_version": layout_version,
        "return_number": sequence,
        "recorded_date": day,
    }
    lines = [
        _fill(FILE_HEADER, {**identity, **file_header}),
        _fill(BATCH_HEADER, {**identity, **batch_header}),
    ]
    for index, record in enumerate(records):
        lines.append(_segment_t(bank, 2 * index + 1, record))
        lines.append(_segment_u(bank, 2 * index + 2, record))
    settled = [r for r in records if r.is_settlement]
    lines.append(
        _Writer()
        .put(BATCH_TRAILER, "bank", bank)
        .put(BATCH_TRAILER, "batch", 1)
        .put(BATCH_TRAILER, "record_type", 5)
        .put(BATCH_TRAILER, "record_count", len(lines))
        .put(BATCH_TRAILER, "simple_count", len(settled))
        .put(BATCH_TRAILER, "simple_total", sum((r.amount_paid for r in settled), Decimal("0.00")))
        .line()
    )
    lines.append(
        _Writer()
        .put(FILE_TRAILER, "bank", bank)
        .put(FILE_TRAILER, "batch", 9999)
        .put(FILE_TRAILER, "record_type", 9)
        .put(FILE_TRAILER, "batch_count", 1)
        .put(FILE_TRAILER, "record_count", len(lines) + 1)
        .line()
    )
    return "\r\n".join(lines) + "\r\n"


def _fill(spec: dict[str, _Field], values: Mapping[str, _Value]) -> str:
    """A line of `spec` with the `values` it has fields for (others are left to other record types)."""
    writer = _Writer()
    for name, value in values.items():
        if name in spec:
            writer.put(spec, name, value)
    return writer.line()


def _segment_t(bank: str, sequence: int, r: PaymentRecord) -> str:
    return _fill(
        SEGMENT_T,
        {
            "bank": bank,
            "batch": 1,
            "record_type": 3,
            "sequence": sequence,
            "segment": "T",
            "occurrence": r.occurrence,
            "nosso_numero": r.nosso_numero,
            "document_number": r.document_number,
            "due_date": r.due_date,
            "face_value": r.face_value,
            "company_reference": r.company_reference,
            "currency": 9,
            "payer_name": r.payer_name.upper(),
            "fee": r.fee,
        },
    )


def _segment_u(bank: str, sequence: int, r: PaymentRecord) -> str:
    return _fill(
        SEGMENT_U,
        {
            "bank": bank,
            "batch": 1,
            "record_type": 3,
            "sequence": sequence,
            "segment": "U",
            "occurrence": r.occurrence,
            "interest_and_fine": r.interest_and_fine,
            "discount": r.discount,
            "rebate": r.rebate,
            "amount_paid": r.amount_paid,
            "net_credit": r.net_credit,
            "occurrence_date": r.occurrence_date,
            "credit_date": r.credit_date,
        },
    )

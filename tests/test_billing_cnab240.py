"""CNAB 240 return files: build -> parse settles the right boletos; malformed lines named by number."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from aaa.errors import ValidationError
from billing.cnab240 import LINE_LENGTH, PaymentRecord, build_return_file, parse_return_file

D = Decimal

RECORDS = [
    PaymentRecord(
        nosso_numero="77777770000087654",
        occurrence="06",
        amount_paid=D("101.93"),
        face_value=D("99.90"),
        due_date=date(2026, 3, 10),
        occurrence_date=date(2026, 3, 11),
        credit_date=date(2026, 3, 12),
        fee=D("1.85"),
        interest_and_fine=D("2.03"),
        net_credit=D("100.08"),
        document_number="FAT2026030001",
        company_reference="INV-1",
        payer_name="Maria da Silva",
    ),
    PaymentRecord(
        nosso_numero="77777770000087655", occurrence="02", amount_paid=D("0"), face_value=D("149.90")
    ),
    PaymentRecord(
        nosso_numero="77777770000087656",
        occurrence="17",
        amount_paid=D("149.90"),
        face_value=D("149.90"),
        occurrence_date=date(2026, 3, 9),
        credit_date=date(2026, 3, 10),
    ),
]


def _file() -> str:
    return build_return_file(
        RECORDS,
        bank="001",
        company_name="Provedor Exemplo",
        company_cnpj="11444777000161",
        agreement="7777777",
        generated=date(2026, 3, 12),
        sequence=42,
    )


def _replace(text: str, line_number: int, start: int, new: str) -> str:
    lines = text.split("\r\n")
    line = lines[line_number - 1]
    lines[line_number - 1] = line[: start - 1] + new + line[start - 1 + len(new) :]
    return "\r\n".join(lines)


def test_built_file_has_240_character_lines_ended_by_crlf() -> None:
    text = _file()
    assert text.endswith("\r\n")
    lines = text.split("\r\n")[:-1]
    assert len(lines) == 2 + 2 * len(RECORDS) + 2
    assert all(len(line) == LINE_LENGTH for line in lines)
    assert [line[7] for line in lines] == ["0", "1", "3", "3", "3", "3", "3", "3", "5", "9"]


def test_build_then_parse_returns_the_same_records() -> None:
    parsed = parse_return_file(_file())
    assert parsed.bank_code == "001"
    assert parsed.company_name == "PROVEDOR EXEMPLO"
    assert parsed.generated == date(2026, 3, 12)
    assert parsed.sequence == 42
    expected = [
        PaymentRecord(**{**r.__dict__, "payer_name": r.payer_name.upper(), "line": 3 + 2 * i})
        for i, r in enumerate(RECORDS)
    ]
    assert parsed.records == expected


def test_only_liquidation_occurrences_settle() -> None:
    settled = parse_return_file(_file()).settlements
    assert [r.nosso_numero for r in settled] == ["77777770000087654", "77777770000087656"]
    assert [r.amount_paid for r in settled] == [D("101.93"), D("149.90")]
    assert settled[0].occurrence_text == "liquidação"


def test_segment_fields_sit_at_the_febraban_positions() -> None:
    t, u = _file().split("\r\n")[2:4]
    assert t[13] == "T" and u[13] == "U"
    assert t[15:17] == "06"  # código de movimento, 16-17
    assert t[37:57].rstrip() == "77777770000087654"  # identificação do título no banco, 38-57
    assert t[73:81] == "10032026"  # vencimento, 74-81
    assert t[81:96] == "000000000009990"  # valor nominal, 82-96
    assert u[77:92] == "000000000010193"  # valor pago, 78-92
    assert u[137:145] == "11032026"  # data da ocorrência, 138-145
    assert u[145:153] == "12032026"  # data do crédito, 146-153


def test_parse_accepts_lf_line_ends_bytes_and_a_trailing_eof_marker() -> None:
    text = _file()
    assert parse_return_file(text.replace("\r\n", "\n")).records == parse_return_file(text).records
    assert len(parse_return_file((text + "\x1a").encode("latin-1")).records) == 3


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda t: _replace(t, 4, 78, "00000000001019X"),
            "line 4: field amount_paid .positions 78-92. is not numeric",
        ),
        (lambda t: _replace(t, 3, 74, "32132026"), "line 3: field due_date .positions 74-81. is not a date"),
        (lambda t: _replace(t, 5, 1, "341"), "line 5: bank code differs"),
        (lambda t: _replace(t, 4, 14, "Y"), "line 3: segment T is not followed by its segment U"),
        (lambda t: _replace(t, 9, 18, "000007"), "line 9: batch trailer counts 000007 records, batch has 8"),
        (lambda t: _replace(t, 10, 24, "000011"), "line 10: file trailer counts 000011 records"),
        (lambda t: _replace(t, 1, 143, "1"), "line 1: this is not a return file"),
        (lambda t: _replace(t, 6, 16, "09"), "line 6: segment U has another occurrence code"),
        (lambda t: _replace(t, 7, 8, "7"), "line 7: unknown record type '7'"),
        (lambda t: t.replace("\r\n", "X\r\n", 3), "line 1: has 241 characters, expected 240"),
        (lambda t: "\r\n".join(t.split("\r\n")[:-2]), "line 9: the last line must be the file trailer"),
        (lambda t: "", "empty"),
    ],
)
def test_malformed_lines_are_reported_by_line_number(mutate, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_return_file(mutate(_file()))


def test_build_refuses_a_value_too_long_for_its_field() -> None:
    with pytest.raises(ValidationError, match="nosso_numero holds 20"):
        build_return_file([PaymentRecord(nosso_numero="1" * 21, occurrence="06", amount_paid=D("1"))])

"""Boleto: check digits, due-date factor and its resets, bank layouts, build and parse."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aaa.errors import ValidationError
from billing import boleto
from billing.boleto import BancoDoBrasil, Itau

# (layout, amount, due date, nosso número, barcode, formatted linha)
BUILD_VECTORS = [
    pytest.param(  # reference 1.6 #1, eduardocereto/pyboleto tests/test_banco_do_brasil.py
        BancoDoBrasil("7777777"),
        "2952.95",
        date(2011, 3, 8),
        "87654",
        "00196490000002952950000007777777000008765418",
        "00190.00009 07777.777009 00087.654182 6 49000000295295",
        id="bb-conv7-pyboleto",
    ),
    pytest.param(  # kivanio/brcobranca spec/brcobranca/boleto/banco_brasil_spec.rb
        BancoDoBrasil("1238798"),
        "723.56",
        date(2008, 2, 3),
        "7777700168",
        "00195377100000723560000001238798777770016818",
        "00190.00009 01238.798779 77700.168188 5 37710000072356",
        id="bb-conv7-brcobranca",
    ),
    pytest.param(  # brcobranca, convênio of 8 digits and nosso número of 9
        BancoDoBrasil("12387989"),
        "135.00",
        date(2008, 2, 1),
        "777700168",
        "00193376900000135000000001238798977770016818",
        "00190.00009 01238.798977 77700.168188 3 37690000013500",
        id="bb-conv8-brcobranca",
    ),
    pytest.param(  # reference 1.6 #2, pyboleto tests/test_banco_itau.py
        Itau("0293", "01328", "109"),
        "29.80",
        date(2009, 10, 19),
        "157",
        "34199439500000029801090000015710293013280000",
        "34191.09008 00015.710296 30132.800001 9 43950000002980",
        id="itau-109-pyboleto",
    ),
    pytest.param(  # brcobranca spec/brcobranca/boleto/itau_spec.rb, amount left to the payer
        Itau("0810", "53678", "175"),
        "0",
        date(2009, 8, 14),
        "12345678",
        "34191432900000000001751234567840810536789000",
        "34191.75124 34567.840813 05367.890000 1 43290000000000",
        id="itau-175-zero-amount",
    ),
    pytest.param(  # brcobranca: due in 2029, after the 2025 factor reset (factor 2548)
        Itau("1248", "02124", "109"),
        "6757.87",
        date(2029, 5, 20),
        "00010152",
        "34194254800006757871090001015271248021246000",
        "34191.09008 01015.271248 80212.460002 4 25480000675787",
        id="itau-109-after-2025-reset",
    ),
]

# Boletos of other banks, only parsed (pyboleto tests): (formatted linha, barcode, amount, due date)
PARSE_VECTORS = [
    (
        "23790.27804 60000.212559 25003.923205 4 48690000828000",
        "23794486900008280000278060000212552500392320",
        "8280.00",
        date(2011, 2, 5),
    ),
    (
        "10498.01952 25086.156582 70000.004146 1 53880000295295",
        "10491538800002952958019525086156587000000414",
        "2952.95",
        date(2012, 7, 8),
    ),
    (
        "03399.07073 07700.000123 34567.901029 5 54020000295295",
        "03395540200002952959070707700000123456790102",
        "2952.95",
        date(2012, 7, 22),
    ),
]

LINHA_BB = "00190.00009 07777.777009 00087.654182 6 49000000295295"
BARCODE_BB = "00196490000002952950000007777777000008765418"


@pytest.mark.parametrize(("layout", "amount", "due", "nn", "barcode", "linha"), BUILD_VECTORS)
def test_build_reproduces_published_boletos(layout, amount, due, nn, barcode, linha) -> None:
    built = boleto.build(layout, Decimal(amount), due, nn)
    assert built.barcode == barcode
    assert built.linha_formatted == linha


@pytest.mark.parametrize(("layout", "amount", "due", "nn", "barcode", "linha"), BUILD_VECTORS)
def test_parse_reads_back_published_boletos(layout, amount, due, nn, barcode, linha) -> None:
    parsed = boleto.parse(linha, today=due)
    assert parsed.bank_code == layout.bank_code
    assert parsed.amount == Decimal(amount)
    assert parsed.due_date == due
    assert parsed.barcode == barcode
    assert parsed.linha_formatted == linha


@pytest.mark.parametrize(("linha", "barcode", "amount", "due"), PARSE_VECTORS)
def test_parse_reads_other_banks_boletos(linha: str, barcode: str, amount: str, due: date) -> None:
    by_linha = boleto.parse(linha, today=due)
    by_barcode = boleto.parse(barcode, today=due)
    assert by_linha == by_barcode
    assert by_linha.barcode == barcode
    assert by_linha.amount == Decimal(amount)
    assert by_linha.due_date == due


@pytest.mark.parametrize(
    "text",
    [
        LINHA_BB,
        LINHA_BB.replace(".", "").replace(" ", ""),
        f"  {LINHA_BB}\n",
        BARCODE_BB,
        "0019-6490-0000-0295-2950-0000-0777-7777-0000-0876-5418",
    ],
)
def test_parse_accepts_linha_or_barcode_with_or_without_punctuation(text: str) -> None:
    assert boleto.parse(text, today=date(2011, 3, 1)).barcode == BARCODE_BB


def test_bb_layout_places_convenio_sequence_and_carteira_in_the_free_field() -> None:
    assert BancoDoBrasil("7777777").free_field("87654") == "0000007777777000008765418"


def test_itau_layout_computes_both_dacs() -> None:
    layout = Itau("0293", "01328", "109")
    assert layout.nosso_numero_dac("157") == 1
    assert layout.nosso_numero_display("157") == "109/00000157-1"


@pytest.mark.parametrize(
    ("nosso_numero", "dac"),
    [("00015448", 6), ("15448", 6), ("12345678", 4), ("34230", 5), ("258281", 7)],
)
def test_itau_nosso_numero_dac_known_answers(nosso_numero: str, dac: int) -> None:
    """Vectors from kivanio/brcobranca spec/brcobranca/boleto/itau_spec.rb (agência 0810, conta 53678)."""
    assert Itau("0810", "53678", "175").nosso_numero_dac(nosso_numero) == dac


def test_itau_short_dac_carteiras_leave_agency_and_account_out() -> None:
    assert Itau("0810", "53678", "168").nosso_numero_dac("258281") == boleto.mod10("16800258281")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("00190.00008 07777.777009 00087.654182 6 49000000295295", "check digit of field 1"),
        ("00190.00009 07777.777008 00087.654182 6 49000000295295", "check digit of field 2"),
        ("00190.00009 07777.777009 00087.654183 6 49000000295295", "check digit of field 3"),
        ("00190.00009 07777.777009 00087.654182 7 49000000295295", "general check digit"),
        ("00197490000002952950000007777777000008765418", "general check digit"),
        ("00190.00009 07777.777009 00087.654182 6 4900000029529", "got 46"),
        ("0019649000000295295000000777777700000876541", "got 43"),
        ("00190.00009 07777.777009 00087.654182 6 49000000295295 12", "got 49"),
        ("8", "got 1"),
        ("", "empty"),
        ("00190.00009 O7777.777009", "only digits"),
    ],
)
def test_parse_names_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        boleto.parse(text, today=date(2011, 3, 1))


def test_parse_refuses_a_48_digit_arrecadacao_line_with_a_clear_message() -> None:
    with pytest.raises(ValidationError, match="arrecadação"):
        boleto.parse("83640000001-1 33120138000-2 81288462711-6 08013618155-1")


def test_parse_refuses_a_currency_other_than_real() -> None:
    head, rest = "0010", BARCODE_BB[5:]
    barcode = head + str(boleto.mod11_general(head + rest)) + rest
    with pytest.raises(ValidationError, match="currency"):
        boleto.parse(barcode)


@pytest.mark.parametrize(
    ("due", "factor"),
    [  # kivanio/brcobranca spec/brcobranca/calculo_data_spec.rb
        (date(2008, 2, 1), 3769),
        (date(2008, 2, 2), 3770),
        (date(2008, 2, 6), 3774),
        (date(2000, 7, 3), 1000),
        (date(2000, 7, 4), 1001),
        (date(2000, 7, 5), 1002),
        (date(2002, 5, 1), 1667),
        (date(2010, 11, 17), 4789),
        (date(2025, 2, 21), 9999),
        (date(2025, 2, 22), 1000),
        (date(2025, 2, 23), 1001),
        # the second reset, 9000 days after the first
        (date(2049, 10, 13), 9999),
        (date(2049, 10, 14), 1000),
    ],
)
def test_due_factor_known_answers_including_both_resets(due: date, factor: int) -> None:
    assert boleto.due_factor(due) == factor


def test_due_factor_refuses_dates_before_the_first_factor() -> None:
    with pytest.raises(ValidationError, match="before 03/07/2000"):
        boleto.due_factor(date(2000, 7, 2))


@pytest.mark.parametrize(
    ("factor", "today", "due"),
    [
        (1000, date(2001, 1, 1), date(2000, 7, 3)),
        (1000, date(2025, 3, 1), date(2025, 2, 22)),
        (9999, date(2025, 3, 1), date(2025, 2, 21)),  # yesterday's boleto, not one from 2049
        (9999, date(2040, 1, 1), date(2049, 10, 13)),
        (1000, date(2049, 10, 1), date(2049, 10, 14)),  # due in two weeks, across the 2049 reset
        (4900, date(2011, 3, 1), date(2011, 3, 8)),
        (0, date(2026, 1, 1), None),
    ],
)
def test_factor_decodes_to_the_date_in_the_window_around_today(
    factor: int, today: date, due: date | None
) -> None:
    assert boleto.factor_to_date(factor, today) == due


def test_factor_below_1000_is_out_of_range() -> None:
    with pytest.raises(ValidationError, match="out of range"):
        boleto.factor_to_date(999, date(2026, 1, 1))


def test_mod10_and_mod11_known_answers() -> None:
    assert boleto.mod10("001900000") == 9
    assert boleto.mod10("0777777700") == 9
    assert boleto.mod11_general("0019" + BARCODE_BB[5:]) == 6


def test_general_check_digit_is_never_zero() -> None:
    # any 43 digits whose weighted sum leaves remainder 0, 1 or 10 must give DV 1
    for n in range(2000):
        digits = f"{n:043d}"
        assert boleto.mod11_general(digits) in range(1, 10)


def test_build_refuses_an_amount_that_does_not_fit_ten_digits() -> None:
    with pytest.raises(ValidationError, match="amount"):
        boleto.build(BancoDoBrasil("7777777"), Decimal("100000000.00"), date(2026, 12, 10), "1")


def test_build_refuses_a_nosso_numero_too_long_for_the_layout() -> None:
    with pytest.raises(ValidationError, match="nosso número"):
        boleto.build(BancoDoBrasil("7777777"), Decimal("10"), date(2026, 12, 10), "12345678901")


def test_layouts_refuse_bad_account_data() -> None:
    with pytest.raises(ValidationError, match="convênio"):
        BancoDoBrasil("12345")
    with pytest.raises(ValidationError, match="seu número"):
        Itau("0293", "01328", "198")
    with pytest.raises(ValidationError, match="agência"):
        Itau("02935", "01328")


layouts = st.one_of(
    st.builds(BancoDoBrasil, st.from_regex(r"[0-9]{7}", fullmatch=True)),
    st.builds(
        Itau,
        st.from_regex(r"[0-9]{4}", fullmatch=True),
        st.from_regex(r"[0-9]{5}", fullmatch=True),
        st.sampled_from(["109", "112", "175", "168"]),
    ),
)


@given(
    layout=layouts,
    cents=st.integers(min_value=0, max_value=9_999_999_999),
    offset=st.integers(min_value=-3000, max_value=5499),
    today=st.dates(min_value=date(2010, 1, 1), max_value=date(2070, 1, 1)),
    sequence=st.integers(min_value=0, max_value=99_999_999),
)
def test_build_then_parse_round_trips(layout, cents: int, offset: int, today: date, sequence: int) -> None:
    due = today + timedelta(days=offset)
    amount = Decimal(cents) / 100
    built = boleto.build(layout, amount, due, str(sequence))
    for text in (built.linha_formatted, built.linha, built.barcode):
        parsed = boleto.parse(text, today=today)
        assert parsed.amount == amount
        assert parsed.due_date == due
        assert parsed.bank_code == layout.bank_code
        assert parsed.free_field == layout.free_field(str(sequence))

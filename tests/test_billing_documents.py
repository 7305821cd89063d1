"""CPF and CNPJ (numeric and alphanumeric) against the reference's known-answer vectors."""

from __future__ import annotations

import pytest

from aaa.errors import ValidationError
from billing.documents import (
    cnpj_check_digits,
    format_cnpj,
    format_cpf,
    is_valid_cnpj,
    is_valid_cpf,
    mask_document,
    normalize_cnpj,
    normalize_cpf,
    validate_document,
)

VALID_CPFS = ["40364478829", "962.718.458-60", "123 456 789 09", "52998224725"]
INVALID_CPFS = [
    "11257245286",
    "40364478837",  # only DV1 wrong
    "15503516030",  # called valid by a benchmark, fails the algorithm (DV1 should be 5)
    "123.456.789-0",
    "1234567890A",
    "",
    *(str(d) * 11 for d in range(10)),
]
VALID_CNPJS = [
    "13723705000189",
    "11.444.777/0001-61",
    "00.000.000/0001-91",  # public test suite (cnpj-alfa-validator README)
    "12ABC34501DE35",
    "12.ABC.345/01DE-35",
    "12abc34501de35",  # lower case is normalised
]
INVALID_CNPJS = [
    "11257245286531",
    "11444777000162",
    "00000000000000",  # reserved, checksum happens to pass
    "00.000.000/0000-00",
    "12.ABC.345/01DE-99",
    "12ABC34501DEAB",  # letters where the check digits go
    "11.444.777/0001-6",
    "11.444.777/0001-61X",
]


@pytest.mark.parametrize("cpf", VALID_CPFS)
def test_valid_cpf_vectors_are_accepted(cpf: str) -> None:
    assert is_valid_cpf(cpf)


@pytest.mark.parametrize("cpf", INVALID_CPFS)
def test_invalid_cpf_vectors_are_refused(cpf: str) -> None:
    assert not is_valid_cpf(cpf)


@pytest.mark.parametrize("cnpj", VALID_CNPJS)
def test_valid_cnpj_vectors_are_accepted(cnpj: str) -> None:
    assert is_valid_cnpj(cnpj)


@pytest.mark.parametrize("cnpj", INVALID_CNPJS)
def test_invalid_cnpj_vectors_are_refused(cnpj: str) -> None:
    assert not is_valid_cnpj(cnpj)


def test_alphanumeric_cnpj_check_digits_match_the_receita_worked_example() -> None:
    assert cnpj_check_digits("12ABC34501DE") == "35"


def test_numeric_cnpj_check_digits_match_the_public_example() -> None:
    assert cnpj_check_digits("000000000001") == "91"


def test_a_cpf_is_not_a_valid_cnpj_and_vice_versa() -> None:
    assert not is_valid_cnpj("40364478829")
    assert not is_valid_cpf("13723705000189")


def test_normalize_strips_punctuation_and_upper_cases() -> None:
    assert normalize_cpf("962.718.458-60") == "96271845860"
    assert normalize_cnpj("12.abc.345/01de-35") == "12ABC34501DE35"


def test_format_adds_the_usual_punctuation() -> None:
    assert format_cpf("96271845860") == "962.718.458-60"
    assert format_cnpj("11444777000161") == "11.444.777/0001-61"
    assert format_cnpj("12abc34501de35") == "12.ABC.345/01DE-35"


@pytest.mark.parametrize(
    ("text", "kind", "normalized"),
    [
        ("962.718.458-60", "cpf", "96271845860"),
        ("11.444.777/0001-61", "cnpj", "11444777000161"),
        ("12.ABC.345/01DE-35", "cnpj", "12ABC34501DE35"),
    ],
)
def test_validate_document_tells_cpf_from_cnpj(text: str, kind: str, normalized: str) -> None:
    assert validate_document(text) == (kind, normalized)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("40364478837", "invalid CPF: check digits do not match"),
        ("111.111.111-11", "invalid CPF: all digits are the same"),
        ("00000000000000", "invalid CNPJ: all characters are the same"),
        ("12.ABC.345/01DE-99", "invalid CNPJ: check digits do not match"),
        ("12345", "a CPF has 11 digits and a CNPJ 14 characters, got 5"),
        ("   ", "CPF/CNPJ is empty"),
        ("1234567890Ç", "invalid CPF: only digits"),
    ],
)
def test_validate_document_says_what_is_wrong_in_one_line(text: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_document(text)
    message = str(info.value)
    assert reason in message
    assert "\n" not in message


@pytest.mark.parametrize("text", ["40364478837", "403.644.788-37", "11444777000162", "12ABC34501DE99"])
def test_validation_errors_never_echo_the_document(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_document(text)
    digits = "".join(c for c in text if c.isalnum())
    assert digits not in str(info.value)
    assert digits[:6] not in str(info.value)


def test_mask_hides_the_first_and_last_digits_of_a_cpf() -> None:
    assert mask_document("cpf", "96271845860") == "***.718.458-**"


def test_mask_shows_a_company_cnpj_in_full() -> None:
    assert mask_document("cnpj", "11444777000161") == "11.444.777/0001-61"

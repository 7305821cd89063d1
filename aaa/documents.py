"""CPF and CNPJ (including the alphanumeric CNPJ from July 2026): validation, normalisation, masking.

Part of the core because customers (in `aaa`) are validated with it; `billing.documents` re-exports it.

A CPF identifies a person (11 digits, personal data under LGPD); a CNPJ identifies a company (14
characters). From July 2026 the Receita Federal issues alphanumeric CNPJs: the first 12 positions may
be 0-9 or A-Z, the two check digits stay numeric, and every character counts as its ASCII code minus 48
in the same mod-11 sums. Error messages never repeat the number they refuse.
"""

from __future__ import annotations

import re
from typing import Literal

from aaa.errors import ValidationError

DocumentKind = Literal["cpf", "cnpj"]

_PUNCTUATION = re.compile(r"[.\-/\s]")
_CNPJ_SHAPE = re.compile(r"[0-9A-Z]{12}[0-9]{2}")
_CPF_WEIGHTS_1 = range(10, 1, -1)
_CPF_WEIGHTS_2 = range(11, 1, -1)
_CNPJ_WEIGHTS_1 = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_CNPJ_WEIGHTS_2 = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)


def _strip(text: str) -> str:
    return _PUNCTUATION.sub("", text).upper()


def _mod11_dv(values: list[int], weights: tuple[int, ...] | range) -> int:
    remainder = sum(v * w for v, w in zip(values, weights, strict=True)) % 11
    return 0 if remainder < 2 else 11 - remainder


def cpf_check_digits(base9: str) -> str:
    """The two check digits for the 9 base digits of a CPF."""
    values = [int(c) for c in base9]
    dv1 = _mod11_dv(values, _CPF_WEIGHTS_1)
    dv2 = _mod11_dv([*values, dv1], _CPF_WEIGHTS_2)
    return f"{dv1}{dv2}"


def cnpj_check_digits(base12: str) -> str:
    """The two check digits for the 12 base characters of a CNPJ (numeric or alphanumeric)."""
    values = [ord(c) - 48 for c in base12.upper()]
    dv1 = _mod11_dv(values, _CNPJ_WEIGHTS_1)
    dv2 = _mod11_dv([*values, dv1], _CNPJ_WEIGHTS_2)
    return f"{dv1}{dv2}"


def _cpf_problem(text: str) -> str | None:
    """Why `text` is not a valid CPF (one line, without the number), or None when it is valid."""
    digits = _strip(text)
    if not digits.isdigit() or not digits.isascii():
        return "invalid CPF: only digits and . - punctuation are allowed"
    if len(digits) != 11:
        return f"invalid CPF: it has 11 digits, got {len(digits)}"
    if len(set(digits)) == 1:
        return "invalid CPF: all digits are the same"
    if cpf_check_digits(digits[:9]) != digits[9:]:
        return "invalid CPF: check digits do not match"
    return None


def _cnpj_problem(text: str) -> str | None:
    """Why `text` is not a valid CNPJ (one line, without the number), or None when it is valid."""
    chars = _strip(text)
    if not chars.isascii() or not chars.isalnum():
        return "invalid CNPJ: only digits, letters and . - / punctuation are allowed"
    if len(chars) != 14:
        return f"invalid CNPJ: it has 14 characters, got {len(chars)}"
    if not _CNPJ_SHAPE.fullmatch(chars):
        return "invalid CNPJ: the last two characters (check digits) must be digits"
    if len(set(chars)) == 1:
        return "invalid CNPJ: all characters are the same"
    if cnpj_check_digits(chars[:12]) != chars[12:]:
        return "invalid CNPJ: check digits do not match"
    return None


def is_valid_cpf(text: str) -> bool:
    """True when `text` is a valid CPF; punctuation (dots, dash, spaces) is allowed."""
    return _cpf_problem(text) is None


def is_valid_cnpj(text: str) -> bool:
    """True when `text` is a valid CNPJ, numeric or alphanumeric, any case, punctuation allowed."""
    return _cnpj_problem(text) is None


def normalize_cpf(text: str) -> str:
    """The 11 digits of a valid CPF; raises ValidationError (without echoing it) when invalid."""
    problem = _cpf_problem(text)
    if problem:
        raise ValidationError(problem)
    return _strip(text)


def normalize_cnpj(text: str) -> str:
    """The 14 upper-case characters of a valid CNPJ; raises ValidationError when invalid."""
    problem = _cnpj_problem(text)
    if problem:
        raise ValidationError(problem)
    return _strip(text)


def format_cpf(text: str) -> str:
    """A valid CPF as "123.456.789-09"."""
    d = normalize_cpf(text)
    return f"{d[:3]}.{d[3:6]}.{d[6:9]}-{d[9:]}"


def format_cnpj(text: str) -> str:
    """A valid CNPJ as "11.444.777/0001-61" (or "12.ABC.345/01DE-35")."""
    c = normalize_cnpj(text)
    return f"{c[:2]}.{c[2:5]}.{c[5:8]}/{c[8:12]}-{c[12:]}"


def validate_document(text: str) -> tuple[DocumentKind, str]:
    """Classify and validate a CPF or CNPJ: returns ("cpf" | "cnpj", normalized).

    11 digits after removing punctuation is a CPF, 14 characters a CNPJ. Raises ValidationError with
    one line saying what is wrong; the message never contains the document number.
    """
    chars = _strip(text)
    if not chars:
        raise ValidationError("CPF/CNPJ is empty")
    if len(chars) == 11:
        return "cpf", normalize_cpf(text)
    if len(chars) == 14:
        return "cnpj", normalize_cnpj(text)
    raise ValidationError(f"invalid CPF/CNPJ: a CPF has 11 digits and a CNPJ 14 characters, got {len(chars)}")


def mask_document(kind: DocumentKind, normalized: str) -> str:
    """A CPF masked for display, as the federal government publishes it ("***.456.789-**").

    A CNPJ identifies a company, not a person, and is shown in full.
    """
    if kind == "cpf":
        d = normalized
        return f"***.{d[3:6]}.{d[6:9]}-**"
    return format_cnpj(normalized)

"""CPF and CNPJ for billing: the public names live in :mod:`aaa.documents` (customers need them in
the core), re-exported here so billing code and plugin authors find them where they expect."""

from __future__ import annotations

from aaa.documents import (
    DocumentKind,
    cnpj_check_digits,
    cpf_check_digits,
    format_cnpj,
    format_cpf,
    is_valid_cnpj,
    is_valid_cpf,
    mask_document,
    normalize_cnpj,
    normalize_cpf,
    validate_document,
)

__all__ = [
    "DocumentKind",
    "cnpj_check_digits",
    "cpf_check_digits",
    "format_cnpj",
    "format_cpf",
    "is_valid_cnpj",
    "is_valid_cpf",
    "mask_document",
    "normalize_cnpj",
    "normalize_cpf",
    "validate_document",
]

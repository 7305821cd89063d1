"""Invoicing settings: the ``[plugins.invoicing]`` table of the configuration, typed and checked.

Every key has a default that issues valid (example) boletos and PIX payloads, so a fresh checkout
bills its demo data; an ISP sets its own bank, beneficiary and PIX key. An unknown key, a value of the
wrong type or a rate above the legal caps raises :class:`aaa.errors.ConfigError` with one line that
names the key and the file.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aaa.documents import is_valid_cnpj
from aaa.errors import AAAError, ConfigError
from billing.boleto import BancoDoBrasil, BankLayout, Itau
from billing.cycle import DayCount
from billing.latefee import DayBasis, check_rates

SECTION = "plugins.invoicing"
BANKS = ("001", "341")


@dataclass(frozen=True)
class InvoicingSettings:
    """``[plugins.invoicing]``; see the commented block in ``etc/aaa.toml``."""

    bank: str = "001"
    convenio: str = "1234567"
    carteira: str = ""
    agencia: str = ""
    conta: str = ""
    beneficiary_name: str = "Provedor Exemplo Ltda"
    beneficiary_cnpj: str = ""
    beneficiary_address: str = ""
    beneficiary_city: str = "Sao Paulo"
    pix_key: str = "financeiro@provedor.example"
    due_days: list[int] = field(default_factory=lambda: [5, 10, 15, 20, 25])
    default_due_day: int = 10
    prorata: bool = True
    prorata_days: str = "actual"
    fine_percent: float | str = "2"
    monthly_interest_percent: float | str = "1"
    interest_days: str = "30"
    issue_days_before_due: int = 10
    overdue_grace_days: int = 0

    @classmethod
    def from_config(cls, table: dict[str, Any], source: str = "<config>") -> InvoicingSettings:
        """The settings from a ``[plugins.invoicing]`` table, or ConfigError naming the bad key."""
        hints = typing.get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        for key, value in table.items():
            if key not in known:
                raise ConfigError(f"{source}: unknown key '{SECTION}.{key}'")
            if not _type_ok(value, hints[key]):
                raise ConfigError(f"{source}: '{SECTION}.{key}' has the wrong type ({type(value).__name__})")
        settings = cls(**table)
        settings.check(source)
        return settings

    def check(self, source: str) -> None:
        def bad(key: str, reason: str) -> ConfigError:
            return ConfigError(f"{source}: '{SECTION}.{key}' {reason}")

        if self.bank not in BANKS:
            raise bad("bank", f"must be one of {', '.join(BANKS)} (Banco do Brasil, Itaú)")
        try:
            self.layout()
        except AAAError as exc:
            raise ConfigError(f"{source}: [{SECTION}] bank {self.bank}: {exc}") from None
        if not self.due_days or any(not 1 <= d <= 28 for d in self.due_days):
            raise bad("due_days", "must list days between 1 and 28")
        if self.default_due_day not in self.due_days:
            raise bad("default_due_day", "must be one of due_days")
        if self.prorata_days not in {c.value for c in DayCount}:
            raise bad("prorata_days", 'must be "actual" or "30"')
        if self.interest_days not in {b.value for b in DayBasis}:
            raise bad("interest_days", 'must be "30" or "calendar"')
        for key in ("issue_days_before_due", "overdue_grace_days"):
            if not 0 <= getattr(self, key) <= 60:
                raise bad(key, "must be between 0 and 60")
        if self.beneficiary_cnpj and not is_valid_cnpj(self.beneficiary_cnpj):
            raise bad("beneficiary_cnpj", "is not a valid CNPJ")
        for key in ("beneficiary_name", "beneficiary_city", "pix_key"):
            if not str(getattr(self, key)).strip():
                raise bad(key, "must not be empty")
        try:
            check_rates(self.fine_pct, self.interest_pct)
        except AAAError as exc:
            raise ConfigError(f"{source}: [{SECTION}] {exc}") from None

    def layout(self) -> BankLayout:
        """The bank's boleto layout (free field) from ``bank`` and its account keys."""
        if self.bank == "341":
            return Itau(agencia=self.agencia, conta=self.conta, carteira=self.carteira or "109")
        return BancoDoBrasil(convenio=self.convenio, carteira=self.carteira or "18")

    @property
    def bank_name(self) -> str:
        return str(getattr(self.layout(), "bank_name", self.bank))

    @property
    def sequence_digits(self) -> int:
        """How many digits the bank's layout gives the nosso número sequence."""
        return 8 if self.bank == "341" else 17 - len(self.convenio)

    @property
    def fine_pct(self) -> Decimal:
        return _decimal(self.fine_percent)

    @property
    def interest_pct(self) -> Decimal:
        return _decimal(self.monthly_interest_percent)

    @property
    def day_count(self) -> DayCount:
        return DayCount(self.prorata_days)

    @property
    def day_basis(self) -> DayBasis:
        return DayBasis(self.interest_days)


def _decimal(value: float | str) -> Decimal:
    return Decimal(str(value))


def _type_ok(value: Any, annotation: Any) -> bool:
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if typing.get_origin(annotation) is list:
        return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if annotation == (float | str):
        if isinstance(value, str):
            try:
                Decimal(value)
            except ArithmeticError:
                return False
            return True
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


def load(context: Any) -> InvoicingSettings:
    """The invoicing settings of a :class:`aaa.context.Context`."""
    return InvoicingSettings.from_config(context.plugin_config("invoicing"), context.settings.source)

"""Boleto bancário (FEBRABAN ficha de compensação): the 44-digit barcode and 47-digit linha digitável.

Covers the check digits (mod 10 per linha field, mod 11 DV geral), the due-date factor with its resets
(22/02/2025 and, 9000 days later, 14/10/2049), the bank-specific free field behind the small
`BankLayout` protocol (Banco do Brasil and Itaú here), building a boleto and parsing one typed or scanned
by a customer. Barcode layout, positions 1-based:

    1-3 bank | 4 currency (9 = Real) | 5 DV geral | 6-9 due factor | 10-19 amount | 20-44 free field
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import ClassVar, Protocol
from zoneinfo import ZoneInfo

from aaa.errors import ValidationError
from billing.money import from_cents, quantize, to_cents

BASE_DATE = date(1997, 10, 7)
"""Day zero of the due-date factor (factor 1000 = 03/07/2000, 9999 = 21/02/2025)."""
FACTOR_CYCLE = 9000
"""Factors run 1000..9999 and then restart at 1000: one cycle is 9000 days."""
FUTURE_WINDOW_DAYS = 5500
"""Banks accept a due date up to 5500 factors ahead of today (brcobranca's note on the FEBRABAN rule)."""
PAST_WINDOW_DAYS = FACTOR_CYCLE - FUTURE_WINDOW_DAYS
"""The rest of one cycle lies in the past (3500 days, wider than the 3000 banks accept), so every
factor decodes to exactly one date."""
MAX_AMOUNT = Decimal("99999999.99")
CURRENCY_REAL = "9"
SAO_PAULO = ZoneInfo("America/Sao_Paulo")

_ALLOWED = re.compile(r"[0-9.\-\s]+")


def mod10(digits: str) -> int:
    """FEBRABAN mod-10 check digit: weights 2,1,2,1... from the right, digits of products summed."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        product = int(char) * (2 if position % 2 == 0 else 1)
        total += product // 10 + product % 10
    return (10 - total % 10) % 10


def mod11_general(digits43: str) -> int:
    """DV geral of the barcode over its 43 other digits: weights 2..9 from the right; 0, 10, 11 -> 1."""
    total = sum(int(c) * (2 + i % 8) for i, c in enumerate(reversed(digits43)))
    dv = 11 - total % 11
    return 1 if dv in (0, 10, 11) else dv


def today_in_brazil() -> date:
    """The calendar date in America/Sao_Paulo (due dates are Brazilian calendar days)."""
    return datetime.now(SAO_PAULO).date()


def due_factor(due: date) -> int:
    """The 4-digit due-date factor of `due`, restarting at 1000 after 9999 every 9000 days."""
    days = (due - BASE_DATE).days
    if days < 1000:
        raise ValidationError(f"due date {due.isoformat()} is before 03/07/2000, the first boleto factor")
    if days > 9999:
        days = (days - 1000) % FACTOR_CYCLE + 1000
    return days


def factor_to_date(factor: int, today: date | None = None) -> date | None:
    """The due date a factor stands for, None for factor 0 (boleto without a due date).

    After the 2025 reset a factor matches one date per 9000-day cycle; the one chosen lies in the window
    [today - 3500 days, today + 5500 days), `today` defaulting to the date in São Paulo.
    """
    if factor == 0:
        return None
    if not 1000 <= factor <= 9999:
        raise ValidationError(f"due-date factor {factor:04d} is out of range (1000-9999, or 0000)")
    reference = today or today_in_brazil()
    earliest = reference - timedelta(days=PAST_WINDOW_DAYS)
    candidate = BASE_DATE + timedelta(days=factor)
    if candidate < earliest:
        cycles = -(-(earliest - candidate).days // FACTOR_CYCLE)
        candidate += timedelta(days=cycles * FACTOR_CYCLE)
    return candidate


def linha_from_barcode(barcode: str) -> str:
    """The 47 digits of the linha digitável for a 44-digit barcode (field check digits added)."""
    field1 = barcode[0:4] + barcode[19:24]
    field2 = barcode[24:34]
    field3 = barcode[34:44]
    return f"{field1}{mod10(field1)}{field2}{mod10(field2)}{field3}{mod10(field3)}{barcode[4]}{barcode[5:19]}"


def barcode_from_linha(linha: str) -> str:
    """The 44-digit barcode for 47 linha digits (field check digits dropped, not verified here)."""
    return linha[0:4] + linha[32] + linha[33:47] + linha[4:9] + linha[10:20] + linha[21:31]


def format_linha(linha: str) -> str:
    """47 digits as printed on the boleto: "00190.00009 07777.777009 00087.654182 6 49000000295295"."""
    d = linha
    return f"{d[0:5]}.{d[5:10]} {d[10:15]}.{d[15:21]} {d[21:26]}.{d[26:32]} {d[32]} {d[33:47]}"


class BankLayout(Protocol):
    """How one bank (and wallet, "carteira") fills the 25-digit free field of its boletos."""

    @property
    def bank_code(self) -> str:
        """The 3-digit código de compensação (001 Banco do Brasil, 341 Itaú, ...)."""
        ...

    def free_field(self, nosso_numero: str) -> str:
        """The 25 digits at barcode positions 20-44 for this boleto's nosso número."""
        ...

    def nosso_numero_display(self, nosso_numero: str) -> str:
        """The nosso número as printed in the ficha de compensação."""
        ...


def _digits(name: str, value: str, max_len: int) -> str:
    if not value.isascii() or not value.isdigit() or len(value) > max_len:
        raise ValidationError(f"{name} must be up to {max_len} digits")
    return value.zfill(max_len)


@dataclass(frozen=True)
class BancoDoBrasil:
    """Banco do Brasil, convênio of 7 digits (nosso número 10) or 8 digits (nosso número 9).

    Free field: 000000 + convênio + nosso número + carteira (17, 18, ...). The printed nosso número is
    convênio + sequence (17 digits, no check digit for these convênios).
    """

    convenio: str
    carteira: str = "18"
    bank_code: ClassVar[str] = "001"
    bank_name: ClassVar[str] = "Banco do Brasil"

    def __post_init__(self) -> None:
        if not self.convenio.isdigit() or len(self.convenio) not in (7, 8):
            raise ValidationError("Banco do Brasil convênio must have 7 or 8 digits")
        _digits("Banco do Brasil carteira", self.carteira, 2)

    def _sequence(self, nosso_numero: str) -> str:
        return _digits("nosso número", nosso_numero, 17 - len(self.convenio))

    def free_field(self, nosso_numero: str) -> str:
        return f"000000{self.convenio}{self._sequence(nosso_numero)}{self.carteira.zfill(2)}"

    def nosso_numero_display(self, nosso_numero: str) -> str:
        return f"{self.convenio}{self._sequence(nosso_numero)}"


@dataclass(frozen=True)
class Itau:
    """Itaú, for the usual carteiras (109, 112, 175, ...) with an 8-digit nosso número.

    Free field: carteira(3) + nosso número(8) + DAC + agência(4) + conta(5) + DAC(agência+conta) + 000.
    The nosso número DAC is mod 10 over agência+conta+carteira+nosso número, except for carteiras
    126, 131, 146, 150 and 168 where it covers carteira+nosso número only. The carteiras that carry a
    "seu número" (107, 122, 142, 143, 196, 198) use another layout and are refused.
    """

    agencia: str
    conta: str
    carteira: str = "109"
    bank_code: ClassVar[str] = "341"
    bank_name: ClassVar[str] = "Itaú"
    SHORT_DAC_CARTEIRAS: ClassVar[frozenset[str]] = frozenset({"126", "131", "146", "150", "168"})
    SEU_NUMERO_CARTEIRAS: ClassVar[frozenset[str]] = frozenset({"107", "122", "142", "143", "196", "198"})

    def __post_init__(self) -> None:
        _digits("Itaú agência", self.agencia, 4)
        _digits("Itaú conta", self.conta, 5)
        _digits("Itaú carteira", self.carteira, 3)
        if self.carteira.zfill(3) in self.SEU_NUMERO_CARTEIRAS:
            raise ValidationError(f"Itaú carteira {self.carteira} (with seu número) is not supported")

    def nosso_numero_dac(self, nosso_numero: str) -> int:
        """The mod-10 DAC printed after the nosso número."""
        nn = _digits("nosso número", nosso_numero, 8)
        carteira = self.carteira.zfill(3)
        if carteira in self.SHORT_DAC_CARTEIRAS:
            return mod10(carteira + nn)
        return mod10(self.agencia.zfill(4) + self.conta.zfill(5) + carteira + nn)

    def free_field(self, nosso_numero: str) -> str:
        nn = _digits("nosso número", nosso_numero, 8)
        agencia, conta = self.agencia.zfill(4), self.conta.zfill(5)
        return (
            f"{self.carteira.zfill(3)}{nn}{self.nosso_numero_dac(nn)}"
            f"{agencia}{conta}{mod10(agencia + conta)}000"
        )

    def nosso_numero_display(self, nosso_numero: str) -> str:
        nn = _digits("nosso número", nosso_numero, 8)
        return f"{self.carteira.zfill(3)}/{nn}-{self.nosso_numero_dac(nn)}"


@dataclass(frozen=True)
class Boleto:
    """A boleto ready to print: its barcode digits and linha digitável."""

    bank_code: str
    amount: Decimal
    due_date: date
    nosso_numero: str
    barcode: str
    linha: str

    @property
    def linha_formatted(self) -> str:
        """The linha digitável with the dots and spaces printed on the ficha."""
        return format_linha(self.linha)


@dataclass(frozen=True)
class ParsedBoleto:
    """What a linha digitável or barcode says."""

    bank_code: str
    amount: Decimal
    due_date: date | None
    factor: int
    free_field: str
    barcode: str
    linha: str

    @property
    def linha_formatted(self) -> str:
        return format_linha(self.linha)


def build(layout: BankLayout, amount: Decimal, due_date: date, nosso_numero: str) -> Boleto:
    """Make the barcode and linha digitável of a boleto for `amount` (0 = amount filled in by the payer)."""
    value = quantize(amount)
    if value < 0 or value > MAX_AMOUNT:
        raise ValidationError("boleto amount must be between R$ 0,00 and R$ 99.999.999,99")
    free = layout.free_field(nosso_numero)
    if len(free) != 25 or not free.isdigit():
        raise ValidationError(f"bank {layout.bank_code} layout produced a free field that is not 25 digits")
    head = f"{layout.bank_code}{CURRENCY_REAL}"
    rest = f"{due_factor(due_date):04d}{to_cents(value):010d}{free}"
    barcode = f"{head}{mod11_general(head + rest)}{rest}"
    return Boleto(
        bank_code=layout.bank_code,
        amount=value,
        due_date=due_date,
        nosso_numero=nosso_numero,
        barcode=barcode,
        linha=linha_from_barcode(barcode),
    )


def _check_linha(linha: str) -> None:
    for number, (start, end) in enumerate(((0, 9), (10, 20), (21, 31)), start=1):
        if mod10(linha[start:end]) != int(linha[end]):
            raise ValidationError(f"linha digitável: the check digit of field {number} is wrong")


def parse(text: str, today: date | None = None) -> ParsedBoleto:
    """Read a linha digitável (47 digits) or barcode (44 digits), with or without punctuation.

    Raises ValidationError naming the problem: characters, length, a 48-digit arrecadação line, which
    field's check digit, the general check digit, the currency or the due-date factor. The due date is
    decoded around `today` (see `factor_to_date`).
    """
    raw = text.strip()
    if not raw:
        raise ValidationError("boleto line is empty")
    if not _ALLOWED.fullmatch(raw):
        raise ValidationError("boleto line may contain only digits, dots, dashes and spaces")
    digits = re.sub(r"\D", "", raw)
    if len(digits) == 48 or (len(digits) == 44 and digits[0] == "8"):
        raise ValidationError(
            "this is an arrecadação (utility or tax bill) code, not a bank boleto; pay it as a bill"
        )
    if len(digits) == 47:
        _check_linha(digits)
        barcode = barcode_from_linha(digits)
    elif len(digits) == 44:
        barcode = digits
    else:
        raise ValidationError(f"a boleto has 47 digits (linha digitável) or 44 (barcode), got {len(digits)}")
    if barcode[3] != CURRENCY_REAL:
        raise ValidationError(f"currency code {barcode[3]} is not 9 (Real)")
    if mod11_general(barcode[:4] + barcode[5:]) != int(barcode[4]):
        raise ValidationError("the general check digit (DV geral, mod 11) is wrong")
    factor = int(barcode[5:9])
    return ParsedBoleto(
        bank_code=barcode[0:3],
        amount=from_cents(int(barcode[9:19])),
        due_date=factor_to_date(factor, today),
        factor=factor,
        free_field=barcode[19:44],
        barcode=barcode,
        linha=linha_from_barcode(barcode),
    )

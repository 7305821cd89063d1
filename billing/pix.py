"""PIX BR Code: the static "copia e cola" payload (EMV QRCPS-MPM as profiled by the Banco Central).

A payload is a run of TLV fields, ``ID(2) LEN(2) VALUE``, in ascending ID order, ending with field 63,
the CRC-16/CCITT-FALSE of everything before it including the literal "6304". `build` makes the static
payload an invoice carries (key, amount, txid); `parse` validates one and returns its fields; `qr_svg`
and `qr_png` draw it with segno. Text is restricted to ASCII (accents stripped) so length in characters
equals length in bytes.
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

import segno

from aaa.errors import ValidationError
from billing.money import quantize

PIX_GUI = "br.gov.bcb.pix"
MAX_NAME = 25
MAX_CITY = 15
MAX_TXID = 25
MAX_AMOUNT_CHARS = 13
MAX_KEY = 77
NO_TXID = "***"

_TXID_BUILD = re.compile(r"[A-Za-z0-9]{1,25}")
_AMOUNT = re.compile(r"\d+(\.\d{1,2})?")
_CEP = re.compile(r"\d{8}")


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor ("123456789" -> 0x29B1)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _crc_hex(payload_to_crc: str) -> str:
    return f"{crc16_ccitt_false(payload_to_crc.encode('ascii')):04X}"


def to_ascii(text: str) -> str:
    """`text` with accents stripped ("São Paulo" -> "Sao Paulo") and anything non-ASCII dropped."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and c.isprintable()).strip()


def _tlv(field_id: str, value: str) -> str:
    if len(value) > 99:
        raise ValidationError(f"PIX field {field_id} is {len(value)} characters long; the limit is 99")
    return f"{field_id}{len(value):02d}{value}"


def format_amount(amount: Decimal) -> str:
    """The amount as field 54 writes it: a dot and two decimals ("123.45")."""
    value = quantize(amount)
    if value <= 0:
        raise ValidationError("PIX amount must be greater than zero")
    text = f"{value:.2f}"
    if len(text) > MAX_AMOUNT_CHARS:
        raise ValidationError(f"PIX amount is {len(text)} characters long; the limit is {MAX_AMOUNT_CHARS}")
    return text


def _limited_text(label: str, text: str, limit: int) -> str:
    value = to_ascii(text)
    if not value:
        raise ValidationError(f"PIX {label} is empty")
    if len(value) > limit:
        raise ValidationError(f"PIX {label} is {len(value)} characters long; the limit is {limit}")
    return value


def build(
    key: str,
    name: str,
    city: str,
    amount: Decimal | None = None,
    txid: str | None = None,
    description: str | None = None,
    postal_code: str | None = None,
) -> str:
    """The static BR Code payload ("copia e cola") paying `amount` to the PIX `key`.

    `name` (≤25) and `city` (≤15) are the receiver's, accents stripped; `txid` (≤25 letters and digits)
    lets the bank statement be reconciled with the invoice; `description` is free text shown to the
    payer. Raises ValidationError naming the field when one does not fit.
    """
    pix_key = key.strip()
    if not pix_key or len(pix_key) > MAX_KEY or not pix_key.isascii() or any(c.isspace() for c in pix_key):
        raise ValidationError(f"PIX key must be 1-{MAX_KEY} ASCII characters without spaces")
    account = _tlv("00", PIX_GUI) + _tlv("01", pix_key)
    if description:
        account += _tlv("02", to_ascii(description))
    if len(account) > 99:
        raise ValidationError("PIX key and description together are too long (field 26 exceeds 99)")
    if txid is not None and not _TXID_BUILD.fullmatch(txid):
        raise ValidationError(f"PIX txid must be 1-{MAX_TXID} letters and digits")
    if postal_code is not None and not _CEP.fullmatch(postal_code.replace("-", "")):
        raise ValidationError("PIX postal code (CEP) must have 8 digits")
    parts = [
        _tlv("00", "01"),
        _tlv("26", account),
        _tlv("52", "0000"),
        _tlv("53", "986"),
        _tlv("54", format_amount(amount)) if amount is not None else "",
        _tlv("58", "BR"),
        _tlv("59", _limited_text("merchant name", name, MAX_NAME)),
        _tlv("60", _limited_text("merchant city", city, MAX_CITY)),
        _tlv("61", postal_code.replace("-", "")) if postal_code else "",
        _tlv("62", _tlv("05", txid or NO_TXID)),
        "6304",
    ]
    body = "".join(parts)
    return body + _crc_hex(body)


@dataclass(frozen=True)
class PixPayload:
    """The fields of a BR Code. Exactly one of `key` (static) and `url` (dynamic) is set."""

    key: str | None
    url: str | None
    name: str
    city: str
    amount: Decimal | None
    txid: str | None
    description: str | None
    postal_code: str | None
    point_of_initiation: str | None
    crc: str


def _fields(text: str, where: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        header = text[pos : pos + 4]
        if len(header) < 4 or not header.isdigit():
            raise ValidationError(
                f"PIX payload: malformed field header {header!r} in {where} at offset {pos}"
            )
        field_id, length = header[:2], int(header[2:])
        value = text[pos + 4 : pos + 4 + length]
        if len(value) < length:
            raise ValidationError(f"PIX payload: field {field_id} in {where} is cut short")
        if field_id in fields:
            raise ValidationError(f"PIX payload: field {field_id} appears twice in {where}")
        fields[field_id] = value
        pos += 4 + length
    return fields


def _require(fields: dict[str, str], field_id: str, label: str) -> str:
    if field_id not in fields:
        raise ValidationError(f"PIX payload: mandatory field {field_id} ({label}) is missing")
    return fields[field_id]


def _check_length(label: str, value: str, limit: int) -> str:
    if not value:
        raise ValidationError(f"PIX payload: {label} is empty")
    if len(value) > limit:
        raise ValidationError(f"PIX payload: {label} is {len(value)} characters long; the limit is {limit}")
    return value


def _pix_account(fields: dict[str, str]) -> dict[str, str]:
    for field_id in (f"{n:02d}" for n in range(26, 52)):
        if field_id in fields:
            account = _fields(fields[field_id], f"field {field_id}")
            if account.get("00", "").lower() == PIX_GUI:
                return account
    raise ValidationError("PIX payload: no merchant account field (26-51) with GUI br.gov.bcb.pix")


def parse(payload: str) -> PixPayload:
    """Validate a BR Code payload and return its fields.

    Checks, in order: ASCII text, the trailing CRC field and its value, the TLV structure, the
    mandatory fields (00, 26-51 with the PIX GUI, 52, 53, 58, 59, 60, 62, 63) and their values and
    lengths. Raises ValidationError with a one-line reason.
    """
    text = payload.strip()
    if not text:
        raise ValidationError("PIX payload is empty")
    if not text.isascii() or not text.isprintable():
        raise ValidationError("PIX payload has characters outside printable ASCII")
    if len(text) < 8 or text[-8:-4] != "6304":
        raise ValidationError("PIX payload does not end with the CRC field (6304 + 4 hex digits)")
    crc = text[-4:].upper()
    if crc != _crc_hex(text[:-4]):
        raise ValidationError("PIX payload CRC does not match its content (altered or truncated)")
    fields = _fields(text, "payload")
    if list(fields)[-1] != "63":
        raise ValidationError("PIX payload: the CRC (63) is not the last field")
    if not text.startswith("000201"):
        raise ValidationError("PIX payload must start with field 00 = 01 (payload format indicator)")
    account = _pix_account(fields)
    key, url = account.get("01"), account.get("25")
    if key is not None and url is not None:
        raise ValidationError("PIX payload carries both a key (01) and a location URL (25)")
    if key is None and url is None:
        raise ValidationError("PIX payload has neither a key (01) nor a location URL (25)")
    if key is not None:
        _check_length("key", key, MAX_KEY)
    if url is not None:
        _check_length("location URL", url, 77)
    if _require(fields, "52", "merchant category code") != "0000":
        raise ValidationError("PIX payload: merchant category code (52) must be 0000")
    if _require(fields, "53", "currency") != "986":
        raise ValidationError("PIX payload: currency (53) must be 986 (BRL)")
    if _require(fields, "58", "country code") != "BR":
        raise ValidationError("PIX payload: country code (58) must be BR")
    name = _check_length("merchant name (59)", _require(fields, "59", "merchant name"), MAX_NAME)
    city = _check_length("merchant city (60)", _require(fields, "60", "merchant city"), MAX_CITY)
    amount = None
    if "54" in fields:
        raw = _check_length("amount (54)", fields["54"], MAX_AMOUNT_CHARS)
        if not _AMOUNT.fullmatch(raw) or Decimal(raw) <= 0:
            raise ValidationError("PIX payload: amount (54) must be a positive number like 123.45")
        amount = quantize(Decimal(raw))
    additional = _fields(_require(fields, "62", "additional data"), "field 62")
    txid = _check_length("txid (62/05)", _require(additional, "05", "txid"), MAX_TXID)
    postal_code = fields.get("61")
    if postal_code is not None and not _CEP.fullmatch(postal_code):
        raise ValidationError("PIX payload: postal code (61) must have 8 digits")
    point = fields.get("01")
    if point is not None and point not in ("11", "12"):
        raise ValidationError("PIX payload: point of initiation (01) must be 11 or 12")
    return PixPayload(
        key=key,
        url=url,
        name=name,
        city=city,
        amount=amount,
        txid=None if txid == NO_TXID else txid,
        description=account.get("02"),
        postal_code=postal_code,
        point_of_initiation=point,
        crc=crc,
    )


def qr_svg(payload: str, scale: int = 4) -> str:
    """The payload as an inline SVG QR code (error correction M, 4-module quiet zone)."""
    return str(segno.make(payload, error="m", micro=False).svg_inline(scale=scale))


def qr_png(payload: str, scale: int = 6) -> bytes:
    """The payload as a PNG QR code (error correction M, 4-module quiet zone)."""
    buffer = io.BytesIO()
    segno.make(payload, error="m", micro=False).save(buffer, kind="png", scale=scale)
    return buffer.getvalue()

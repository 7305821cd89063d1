"""Speeds as admins and RouterOS write them: ``100M``, ``512k``, ``1.5M``, ``1G``, plain bit/s."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from aaa.errors import ValidationError

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*$")
_UNITS = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


def parse_rate(text: str | int, *, what: str = "rate") -> int:
    """Bits per second from ``100M`` / ``512k`` / ``1G`` / ``2000000``; one clear error otherwise."""
    if isinstance(text, int):
        value = text
    else:
        match = _RATE.match(text)
        if not match:
            raise ValidationError(f"invalid {what} {text!r}: use a number with k, M or G, e.g. 100M or 512k")
        try:
            value = int(Decimal(match.group(1)) * _UNITS[match.group(2).lower()])
        except InvalidOperation:
            raise ValidationError(f"invalid {what} {text!r}") from None
    if value <= 0:
        raise ValidationError(f"invalid {what} {text!r}: must be greater than zero")
    return value


def format_rate(bps: int) -> str:
    """The shortest RouterOS spelling of a rate: 100000000 -> ``100M``, 512000 -> ``512k``."""
    if bps >= 1_000_000 and bps % 1_000_000 == 0:
        return f"{bps // 1_000_000}M"
    if bps >= 1_000 and bps % 1_000 == 0:
        return f"{bps // 1_000}k"
    return str(bps)


def parse_pair(text: str, *, what: str) -> tuple[int, int]:
    """``DOWN/UP`` (or one value for both) -> (download, upload) bit/s."""
    parts = text.split("/")
    if len(parts) == 1:
        value = parse_rate(parts[0], what=what)
        return value, value
    if len(parts) == 2:
        return parse_rate(parts[0], what=what), parse_rate(parts[1], what=what)
    raise ValidationError(f"invalid {what} {text!r}: use DOWN/UP, e.g. 200M/100M")


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)[bB]?\s*$")
_SIZE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_size(text: str, *, what: str = "data limit") -> int:
    """Bytes from ``500G`` / ``1T`` / ``100MB`` (decimal units, as ISPs sell them)."""
    match = _SIZE.match(text)
    if not match:
        raise ValidationError(f"invalid {what} {text!r}: use a number with k, M, G or T, e.g. 500G")
    value = int(Decimal(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])
    if value <= 0:
        raise ValidationError(f"invalid {what} {text!r}: must be greater than zero")
    return value

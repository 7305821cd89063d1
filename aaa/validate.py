"""Validation of admin input shared by the CLI, the CSV import and the TUI: IPs, MACs, names."""

from __future__ import annotations

import ipaddress
import re

from aaa.errors import ValidationError

_MAC_HEX = re.compile(r"[0-9A-Fa-f]")
_LOGIN = re.compile(r"^[\x21-\x7e]{1,128}$")


def ipv4(text: str, *, what: str = "IP address") -> str:
    try:
        return str(ipaddress.IPv4Address(text.strip()))
    except ValueError:
        raise ValidationError(f"invalid {what} {text!r}") from None


def ip_or_cidr(text: str, *, what: str = "address") -> str:
    """A single address or a network in CIDR form, IPv4 or IPv6, normalised."""
    text = text.strip()
    try:
        if "/" in text:
            return str(ipaddress.ip_network(text, strict=False))
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValidationError(f"invalid {what} {text!r}: expected an IP address or CIDR such as 10.0.0.0/24") from None


def ipv6_prefix(text: str, *, what: str = "IPv6 prefix") -> str:
    try:
        net = ipaddress.IPv6Network(text.strip(), strict=True)
    except ValueError:
        raise ValidationError(f"invalid {what} {text!r}") from None
    return str(net)


def mac(text: str) -> str:
    """``aa-bb-cc-dd-ee-ff``, ``aabb.ccdd.eeff`` or ``AA:BB:...`` -> ``AA:BB:CC:DD:EE:FF``."""
    digits = "".join(_MAC_HEX.findall(text))
    cleaned = re.sub(r"[\s:.\-]", "", text)
    if len(digits) != 12 or len(cleaned) != 12:
        raise ValidationError(f"invalid MAC address {text!r}")
    digits = digits.upper()
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def login(text: str) -> str:
    if not _LOGIN.match(text):
        raise ValidationError(f"invalid login {text!r}: 1-128 printable characters, no spaces")
    return text


def port(value: int, *, what: str = "port") -> int:
    if not 1 <= value <= 65535:
        raise ValidationError(f"invalid {what} {value}: must be 1-65535")
    return value


def positive(value: int | None, *, what: str) -> int | None:
    if value is not None and value <= 0:
        raise ValidationError(f"invalid {what} {value}: must be greater than zero")
    return value


def name(text: str, *, what: str = "name", max_length: int = 64) -> str:
    text = text.strip()
    if not text or len(text) > max_length:
        raise ValidationError(f"invalid {what} {text!r}: 1-{max_length} characters")
    return text

"""Attribute definitions pre-resolved for the hot path, and the value codecs per data type.

``AttrDef`` turns a Python value into the whole attribute on the wire (VSA-wrapped for a vendor
attribute) and a raw value back into a Python value. Built by :class:`aaa.radius.codec.Dictionary`
from the pyrad dictionary; the value rules are documented in the codec's module docstring.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Callable
from typing import Any

from aaa.radius.packet import AttrKey, EncodeError, MalformedPacket

LEN = [bytes((i,)) for i in range(256)]
"""The one-octet bytes objects 0..255, for building attribute headers without allocations."""
_EAP_MESSAGE: AttrKey = (0, 79)

_U32, _I32, _U16, _U64 = struct.Struct("!I"), struct.Struct("!i"), struct.Struct("!H"), struct.Struct("!Q")
NUMBER_TYPES = {
    "integer": _U32, "date": _U32, "signed": _I32, "short": _U16, "integer64": _U64, "byte": struct.Struct("!B"),
}  # fmt: skip


def _text(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError("expected str or bytes")


def _ipv4(value: Any) -> bytes:
    return ipaddress.IPv4Address(value).packed


def _ipv6(value: Any) -> bytes:
    return ipaddress.IPv6Address(value).packed


def _ipv6prefix(value: Any) -> bytes:
    net = ipaddress.IPv6Network(value, strict=False)
    return b"\x00" + LEN[net.prefixlen] + net.network_address.packed


def _hexgroups(size: int) -> Callable[[Any], bytes]:
    def encode(value: Any) -> bytes:
        if not isinstance(value, str):
            raise TypeError("expected str or bytes")
        raw = bytes.fromhex(value.replace(":", "").replace("-", ""))
        if len(raw) != size:
            raise ValueError(f"expected {size} octets")
        return raw

    return encode


def _dec_ipv6prefix(raw: bytes) -> str:
    if not 2 <= len(raw) <= 18 or raw[1] > 128:
        raise ValueError("bad ipv6prefix")
    return f"{socket.inet_ntop(socket.AF_INET6, raw[2:].ljust(16, bytes(1)))}/{raw[1]}"


def _dec_ifid(raw: bytes) -> str:
    if len(raw) != 8:
        raise ValueError("bad ifid")
    return ":".join(raw[i : i + 2].hex() for i in range(0, 8, 2))


def _dec_ether(raw: bytes) -> str:
    if len(raw) != 6:
        raise ValueError("bad ether")
    return raw.hex(":")


def _dec_ipv4(raw: bytes) -> str:
    if len(raw) != 4:
        raise ValueError("bad ipaddr")
    return socket.inet_ntoa(raw)


def _dec_ipv6(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, raw)


_DECODERS: dict[str, Callable[[bytes], Any]] = {
    "string": lambda raw: raw.decode("utf-8", "replace"),
    "ipaddr": _dec_ipv4,
    "ipv6addr": _dec_ipv6,
    "ipv6prefix": _dec_ipv6prefix,
    "ifid": _dec_ifid,
    "ether": _dec_ether,
}
_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "string": _text,
    "octets": _text,
    "ipaddr": _ipv4,
    "ipv6addr": _ipv6,
    "ipv6prefix": _ipv6prefix,
    "ifid": _hexgroups(8),
    "ether": _hexgroups(6),
}


def _bad() -> Any:
    raise ValueError("bad length")


class AttrDef:
    """One attribute of the dictionary, pre-resolved for the hot path."""

    __slots__ = (
        "name", "vendor", "code", "type", "encrypt", "has_tag", "key", "values", "value_names",
        "max_len", "_head", "_vhead", "_to_wire", "_from_wire",
    )  # fmt: skip

    def __init__(self, name: str, vendor: int, code: int, datatype: str, encrypt: int, has_tag: bool,
                 values: dict[str, int]) -> None:  # fmt: skip
        self.name, self.vendor, self.code, self.type = name, vendor, code, datatype
        self.encrypt, self.has_tag, self.key = encrypt, has_tag, (vendor, code)
        self.values = values
        self.value_names = {number: value_name for value_name, number in values.items()}
        self.max_len = 247 if vendor else 253
        self._head = LEN[code]
        self._vhead = struct.pack("!I", vendor) + LEN[code]
        self._to_wire: Callable[[Any], bytes] = _ENCODERS.get(datatype, _bytes_only)
        self._from_wire: Callable[[bytes], Any] = _DECODERS.get(datatype, bytes)
        number = NUMBER_TYPES.get(datatype)
        if number is not None:
            self._to_wire, self._from_wire = self._number_codec(number)
        if has_tag:
            self._to_wire, self._from_wire = self._tagged(self._to_wire, self._from_wire)
        if encrypt:  # hidden on the wire: decoded values are the hidden octets, for the crypto helpers
            self._from_wire = bytes

    def _number_codec(self, number: struct.Struct) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
        pack, unpack, size, values = number.pack, number.unpack, number.size, self.values

        def to_wire(value: Any) -> bytes:
            if isinstance(value, str):
                if value not in values:
                    raise ValueError(f"no VALUE {value!r}")
                value = values[value]
            elif not isinstance(value, int) or isinstance(value, bool):
                raise TypeError("expected int or a VALUE name")
            return pack(value)

        def from_wire(raw: bytes) -> int:
            if len(raw) != size:
                raise ValueError("bad length")
            return unpack(raw)[0]

        return to_wire, from_wire

    def _tagged(self, to_wire: Callable[[Any], bytes], from_wire: Callable[[bytes], Any]
                ) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:  # fmt: skip
        is_int = self.type == "integer"

        def tagged_to_wire(value: Any) -> bytes:
            tag = 0
            if isinstance(value, tuple):
                tag, value = value
                if not 0 <= tag <= 0x1F:
                    raise ValueError("tag must be 0..31")
            raw = to_wire(value)
            if is_int:
                if raw[0]:
                    raise ValueError("a tagged integer has 24 bits")
                return LEN[tag] + raw[1:]
            return LEN[tag] + raw if tag or (raw and raw[0] < 0x20) else raw

        def tagged_from_wire(raw: bytes) -> Any:
            if is_int:
                return from_wire(b"\x00" + raw[1:]) if len(raw) == 4 else _bad()
            return from_wire(raw[1:] if raw and raw[0] < 0x20 else raw)

        return tagged_to_wire, tagged_from_wire

    def decode(self, raw: bytes) -> Any:
        """The Python value of a raw attribute value; MalformedPacket if it does not fit the type."""
        try:
            return self._from_wire(raw)
        except (ValueError, IndexError, struct.error, OSError) as exc:
            raise MalformedPacket("bad-attribute", f"{self.name}: {exc}") from None

    def encode(self, value: Any) -> bytes:
        """The whole attribute on the wire (Vendor-Specific wrapped for a vendor attribute)."""
        if value.__class__ is bytes:
            raw = value
        elif isinstance(value, bytes | bytearray | memoryview):
            raw = bytes(value)
        elif self.encrypt:
            raise EncodeError(f"{self.name} is hidden on the wire: pass the hidden value as bytes")
        else:
            try:
                raw = self._to_wire(value)
            except (ValueError, TypeError, IndexError, KeyError, struct.error) as exc:
                raise EncodeError(
                    f"cannot encode a {type(value).__name__} as {self.name} ({self.type}): {exc}"
                ) from None
        size = len(raw)
        if size > self.max_len:
            if self.key != _EAP_MESSAGE:
                raise EncodeError(f"{self.name}: {size} octets, at most {self.max_len} fit in one attribute")
            return b"".join(self.encode(raw[i : i + 253]) for i in range(0, size, 253))
        if self.vendor:
            return b"\x1a" + LEN[size + 8] + self._vhead + LEN[size + 2] + raw
        return self._head + LEN[size + 2] + raw


def _bytes_only(value: Any) -> bytes:
    raise TypeError("pass the raw value as bytes")

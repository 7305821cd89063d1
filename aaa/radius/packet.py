"""RADIUS packets as the rest of the code sees them: packet codes, errors, the decoded ``Packet``.

No pyrad here: :mod:`aaa.radius.codec` builds ``Packet`` objects from datagrams and re-exports
everything in this module, so callers import from the codec only.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, Any

from aaa.errors import AAAError, ValidationError

if TYPE_CHECKING:
    from aaa.radius.codec import Dictionary

AttrKey = tuple[int, int]
"""An attribute's identity in a packet: (vendor id, type); vendor 0 for standard attributes."""


class Code(IntEnum):
    """RADIUS packet codes (RFC 2865 §3, RFC 2866, RFC 5997, RFC 5176 §2.3)."""

    ACCESS_REQUEST = 1
    ACCESS_ACCEPT = 2
    ACCESS_REJECT = 3
    ACCOUNTING_REQUEST = 4
    ACCOUNTING_RESPONSE = 5
    ACCESS_CHALLENGE = 11
    STATUS_SERVER = 12
    STATUS_CLIENT = 13
    DISCONNECT_REQUEST = 40
    DISCONNECT_ACK = 41
    DISCONNECT_NAK = 42
    COA_REQUEST = 43
    COA_ACK = 44
    COA_NAK = 45


class MalformedPacket(AAAError):
    """A datagram that is not a valid RADIUS packet, or whose signature does not verify.

    ``reason`` is a short machine label, used as a counter label: short, bad-length,
    unknown-code, attribute-overflow, bad-attribute-length, bad-attribute, bad-authenticator,
    bad-message-authenticator, missing-message-authenticator, duplicate-message-authenticator,
    not-a-request.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"malformed RADIUS packet ({reason})" + (f": {detail}" if detail else ""))


class EncodeError(ValidationError):
    """An attribute value cannot be encoded (wrong Python type, out of range, too long)."""


class UnknownAttributeError(ValidationError, KeyError):
    """The attribute name is not in the dictionary."""

    def __str__(self) -> str:
        return f"unknown RADIUS attribute {self.args[0]!r}"


class Packet:
    """A decoded packet: header fields, raw datagram and the ordered raw attributes.

    ``attributes`` holds ``(AttrKey, raw value)`` in packet order, VSAs split into their vendor
    attributes. Values are decoded on demand by name.
    """

    __slots__ = ("code", "identifier", "authenticator", "data", "attributes", "dictionary", "_first", "_ma")

    def __init__(self, code: Code, identifier: int, authenticator: bytes, data: bytes,
                 attributes: list[tuple[AttrKey, bytes]], dictionary: Dictionary, ma_offset: int) -> None:  # fmt: skip
        self.code = code
        self.identifier = identifier
        self.authenticator = authenticator
        self.data = data
        self.attributes = attributes
        self.dictionary = dictionary
        self._first: dict[AttrKey, bytes] | None = None
        self._ma = ma_offset

    def _index(self) -> dict[AttrKey, bytes]:
        """The first raw value of each attribute, built on the first lookup."""
        first = self._first
        if first is None:
            first = self._first = dict(reversed(self.attributes))
        return first

    def __repr__(self) -> str:
        return f"<Packet {self.code.name} id={self.identifier} attributes={len(self.attributes)}>"

    # The lookups below run several times per request: the dictionary's table is read directly and
    # the index built once, rather than through ``Dictionary.__getitem__`` and ``_index`` calls.

    def __contains__(self, name: str) -> bool:
        try:
            key = self.dictionary.by_name[name].key
        except KeyError:
            raise UnknownAttributeError(name) from None
        return key in (self._first if self._first is not None else self._index())

    @property
    def has_message_authenticator(self) -> bool:
        return self._ma >= 0

    def get(self, name: str, default: Any = None) -> Any:
        """The decoded value of the first instance of ``name``, or ``default``."""
        try:
            adef = self.dictionary.by_name[name]
        except KeyError:
            raise UnknownAttributeError(name) from None
        first = self._first if self._first is not None else self._index()
        raw = first.get(adef.key)
        return default if raw is None else adef.decode(raw)

    def get_all(self, name: str) -> list[Any]:
        """The decoded values of every instance of ``name``, in packet order."""
        adef = self.dictionary[name]
        key = adef.key
        return [adef.decode(raw) for k, raw in self.attributes if k == key]

    def raw(self, name: str) -> bytes | None:
        """The raw octets of the first instance of ``name`` (User-Password, CHAP-Password, ...)."""
        try:
            key = self.dictionary.by_name[name].key
        except KeyError:
            raise UnknownAttributeError(name) from None
        first = self._first if self._first is not None else self._index()
        return first.get(key)

    def raw_all(self, name: str) -> list[bytes]:
        key = self.dictionary[name].key
        return [raw for k, raw in self.attributes if k == key]

    def value_name(self, name: str) -> str | None:
        """The VALUE name of an integer attribute (``"Start"``), or None if absent or unnamed."""
        number = self.get(name)
        return None if number is None else self.dictionary.value_name(name, number)

    def items(self, *, redact: bool = True) -> list[tuple[str, Any]]:
        """Every attribute as (name, value), for logs and tests; hidden values redacted."""
        result: list[tuple[str, Any]] = []
        for key, raw in self.attributes:
            adef = self.dictionary.by_key.get(key)
            if adef is None:
                result.append((self.dictionary.name_of(key), raw))
            elif redact and adef.encrypt:
                result.append((adef.name, "<hidden>"))
            else:
                try:
                    result.append((adef.name, adef.decode(raw)))
                except MalformedPacket:
                    result.append((adef.name, raw))
        return result

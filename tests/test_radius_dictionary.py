"""The bundled RADIUS dictionaries load with pyrad's parser and say what the RFCs and vendors say."""

from __future__ import annotations

from pathlib import Path

import pytest

from aaa.errors import ConfigError
from aaa.radius.codec import UnknownAttributeError, default_dictionary, load_dictionary

MIKROTIK = 14988
MICROSOFT = 311

# (number, name, type) from the MikroTik manual's numeric value table (reference/mikrotik.md 2.4)
MIKROTIK_ATTRIBUTES = [
    (1, "Mikrotik-Recv-Limit", "integer"),
    (2, "Mikrotik-Xmit-Limit", "integer"),
    (3, "Mikrotik-Group", "string"),
    (4, "Mikrotik-Wireless-Forward", "integer"),
    (5, "Mikrotik-Wireless-Skip-Dot1x", "integer"),
    (6, "Mikrotik-Wireless-Enc-Algo", "integer"),
    (7, "Mikrotik-Wireless-Enc-Key", "string"),
    (8, "Mikrotik-Rate-Limit", "string"),
    (9, "Mikrotik-Realm", "string"),
    (10, "Mikrotik-Host-IP", "ipaddr"),
    (11, "Mikrotik-Mark-Id", "string"),
    (12, "Mikrotik-Advertise-URL", "string"),
    (13, "Mikrotik-Advertise-Interval", "integer"),
    (14, "Mikrotik-Recv-Limit-Gigawords", "integer"),
    (15, "Mikrotik-Xmit-Limit-Gigawords", "integer"),
    (16, "Mikrotik-Wireless-PSK", "string"),
    (17, "Mikrotik-Total-Limit", "integer"),
    (18, "Mikrotik-Total-Limit-Gigawords", "integer"),
    (19, "Mikrotik-Address-List", "string"),
    (20, "Mikrotik-Wireless-MPKey", "string"),
    (21, "Mikrotik-Wireless-Comment", "string"),
    (22, "Mikrotik-Delegated-IPv6-Pool", "string"),
    (23, "Mikrotik-DHCP-Option-Set", "string"),
    (24, "Mikrotik-DHCP-Option-Param-STR1", "string"),
    (25, "Mikrotik-DHCP-Option-Param-STR2", "string"),
    (26, "Mikrotik-Wireless-VLANID", "integer"),
    (27, "Mikrotik-Wireless-VLANID-Type", "integer"),
    (28, "Mikrotik-Wireless-Minsignal", "string"),
    (29, "Mikrotik-Wireless-Maxsignal", "string"),
    (30, "Mikrotik-Switching-Filter", "string"),
]

# (number, name, type, encrypt) from RFC 2548
MICROSOFT_ATTRIBUTES = [
    (1, "MS-CHAP-Response", "octets", 0),
    (2, "MS-CHAP-Error", "octets", 0),
    (7, "MS-MPPE-Encryption-Policy", "integer", 0),
    (8, "MS-MPPE-Encryption-Types", "integer", 0),
    (10, "MS-CHAP-Domain", "octets", 0),
    (11, "MS-CHAP-Challenge", "octets", 0),
    (12, "MS-CHAP-MPPE-Keys", "octets", 1),
    (16, "MS-MPPE-Send-Key", "octets", 2),
    (17, "MS-MPPE-Recv-Key", "octets", 2),
    (25, "MS-CHAP2-Response", "octets", 0),
    (26, "MS-CHAP2-Success", "octets", 0),
]

# (name, number, type) of standard attributes, one or more per RFC file
STANDARD_ATTRIBUTES = [
    ("User-Name", 1, "string"),
    ("User-Password", 2, "string"),
    ("CHAP-Password", 3, "octets"),
    ("Framed-IP-Address", 8, "ipaddr"),
    ("Class", 25, "octets"),
    ("Session-Timeout", 27, "integer"),
    ("Proxy-State", 33, "octets"),
    ("CHAP-Challenge", 60, "octets"),
    ("NAS-Port-Type", 61, "integer"),
    ("Port-Limit", 62, "integer"),
    ("Acct-Status-Type", 40, "integer"),  # RFC 2866
    ("Acct-Session-Id", 44, "string"),
    ("Acct-Terminate-Cause", 49, "integer"),
    ("Tunnel-Type", 64, "integer"),  # RFC 2868
    ("Tunnel-Password", 69, "string"),
    ("Acct-Input-Gigawords", 52, "integer"),  # RFC 2869
    ("Event-Timestamp", 55, "date"),
    ("Message-Authenticator", 80, "octets"),
    ("Acct-Interim-Interval", 85, "integer"),
    ("NAS-Port-Id", 87, "string"),
    ("Framed-Pool", 88, "string"),
    ("NAS-IPv6-Address", 95, "ipv6addr"),  # RFC 3162
    ("Framed-Interface-Id", 96, "ifid"),
    ("Framed-IPv6-Prefix", 97, "ipv6prefix"),
    ("Framed-IPv6-Pool", 100, "string"),
    ("Error-Cause", 101, "integer"),  # RFC 5176
    ("Delegated-IPv6-Prefix", 123, "ipv6prefix"),  # RFC 4818
    ("Framed-IPv6-Address", 168, "ipv6addr"),  # RFC 6911
    ("DNS-Server-IPv6-Address", 169, "ipv6addr"),
    ("Route-IPv6-Information", 170, "ipv6prefix"),
    ("Delegated-IPv6-Prefix-Pool", 171, "string"),
    ("Stateful-IPv6-Address-Pool", 172, "string"),
]

ERROR_CAUSES = {
    "Residual-Context-Removed": 201,
    "Invalid-EAP-Packet": 202,
    "Unsupported-Attribute": 401,
    "Missing-Attribute": 402,
    "NAS-Identification-Mismatch": 403,
    "Invalid-Request": 404,
    "Unsupported-Service": 405,
    "Unsupported-Extension": 406,
    "Invalid-Attribute-Value": 407,
    "Administratively-Prohibited": 501,
    "Proxy-Request-Not-Routable": 502,
    "Session-Context-Not-Found": 503,
    "Session-Context-Not-Removable": 504,
    "Proxy-Processing-Error": 505,
    "Resources-Unavailable": 506,
    "Request-Initiated": 507,
    "Multiple-Session-Selection-Unsupported": 508,
}


@pytest.mark.parametrize(("number", "name", "datatype"), MIKROTIK_ATTRIBUTES)
def test_every_mikrotik_attribute_has_its_number_and_type(number: int, name: str, datatype: str) -> None:
    adef = default_dictionary()[name]
    assert (adef.vendor, adef.code, adef.type) == (MIKROTIK, number, datatype)


def test_mikrotik_dictionary_has_exactly_the_30_documented_attributes() -> None:
    codes = sorted(a.code for a in default_dictionary().by_name.values() if a.vendor == MIKROTIK)
    assert codes == list(range(1, 31))


@pytest.mark.parametrize(("number", "name", "datatype", "encrypt"), MICROSOFT_ATTRIBUTES)
def test_microsoft_attributes_follow_rfc_2548(number: int, name: str, datatype: str, encrypt: int) -> None:
    adef = default_dictionary()[name]
    assert (adef.vendor, adef.code, adef.type, adef.encrypt) == (MICROSOFT, number, datatype, encrypt)


@pytest.mark.parametrize(("name", "number", "datatype"), STANDARD_ATTRIBUTES)
def test_standard_attributes_have_their_rfc_number_and_type(name: str, number: int, datatype: str) -> None:
    adef = default_dictionary()[name]
    assert (adef.vendor, adef.code, adef.type) == (0, number, datatype)


def test_user_password_is_hidden_and_tunnel_attributes_are_tagged() -> None:
    d = default_dictionary()
    assert d["User-Password"].encrypt == 1
    assert d["Tunnel-Password"].encrypt == 2 and d["Tunnel-Password"].has_tag
    assert d["Tunnel-Type"].has_tag and not d["User-Name"].has_tag


@pytest.mark.parametrize(("name", "number"), sorted(ERROR_CAUSES.items()))
def test_rfc_5176_error_cause_values(name: str, number: int) -> None:
    d = default_dictionary()
    assert d.value("Error-Cause", name) == number
    assert d.value_name("Error-Cause", number) == name


@pytest.mark.parametrize(
    ("attribute", "name", "number"),
    [
        ("Acct-Status-Type", "Start", 1),
        ("Acct-Status-Type", "Stop", 2),
        ("Acct-Status-Type", "Interim-Update", 3),
        ("Acct-Status-Type", "Accounting-On", 7),
        ("Acct-Status-Type", "Accounting-Off", 8),
        ("Service-Type", "Login-User", 1),
        ("Service-Type", "Framed-User", 2),
        ("Service-Type", "Authorize-Only", 17),
        ("Framed-Protocol", "PPP", 1),
        ("NAS-Port-Type", "Virtual", 5),
        ("NAS-Port-Type", "Ethernet", 15),
        ("NAS-Port-Type", "Wireless-802.11", 19),
        ("Acct-Terminate-Cause", "User-Request", 1),
        ("Acct-Terminate-Cause", "Lost-Carrier", 2),
        ("Acct-Terminate-Cause", "Idle-Timeout", 4),
        ("Acct-Terminate-Cause", "Session-Timeout", 5),
        ("Acct-Terminate-Cause", "Admin-Reset", 6),
        ("Acct-Terminate-Cause", "NAS-Reboot", 11),
        ("Acct-Terminate-Cause", "Host-Request", 18),
        ("MS-MPPE-Encryption-Policy", "Encryption-Required", 2),
    ],
)
def test_values_from_the_rfcs(attribute: str, name: str, number: int) -> None:
    assert default_dictionary().value(attribute, name) == number


def test_pyrad_skipped_nothing_in_our_files() -> None:
    from pyrad.dictionary import Dictionary as PyradDictionary

    source = PyradDictionary(str(Path(__file__).resolve().parents[1] / "etc" / "dictionary" / "dictionary"))
    assert source.skipped_attributes == set()


def test_unknown_attribute_name_is_a_clear_error() -> None:
    with pytest.raises(UnknownAttributeError, match="Mikrotik-Nope"):
        default_dictionary()["Mikrotik-Nope"]


def test_extra_vendor_file_is_loaded_after_the_bundled_ones(tmp_path: Path) -> None:
    extra = tmp_path / "dictionary.acme"
    extra.write_text(
        "VENDOR Acme 99999\nBEGIN-VENDOR Acme\nATTRIBUTE Acme-Speed 1 integer\nEND-VENDOR Acme\n"
        "VALUE Acme-Speed Fast 7\n"
    )
    d = load_dictionary([extra])
    assert (d["Acme-Speed"].vendor, d["Acme-Speed"].code) == (99999, 1)
    assert d.value("Acme-Speed", "Fast") == 7
    assert "Mikrotik-Rate-Limit" in d


def test_missing_extra_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.dict"):
        load_dictionary([tmp_path / "nope.dict"])


def test_broken_extra_file_is_a_config_error(tmp_path: Path) -> None:
    broken = tmp_path / "dictionary.broken"
    broken.write_text("ATTRIBUTE Broken notanumber integer\n")
    with pytest.raises(ConfigError, match="dictionary.broken"):
        load_dictionary([broken])


def test_base_can_be_given_by_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    base = tmp_path / "dictionary"
    base.write_text("ATTRIBUTE Only-One 1 string\n")
    monkeypatch.setenv("AAA_DICTIONARY", str(base))
    d = load_dictionary()
    assert "Only-One" in d and "Mikrotik-Rate-Limit" not in d

"""PIX BR Code: CRC, the Banco Central's published payloads, field limits, build -> parse round trips."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aaa.errors import ValidationError
from billing import pix

# Reference §2 (BCB static example, also in brazilian-utils parse-pix-payload.test.ts)
BACEN_STATIC = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR"
    "5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
# brazilian-utils/brazilian-utils src/parse-pix-payload/parse-pix-payload.test.ts
STATIC_POINT_OF_INITIATION = (
    "00020101021126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR"
    "5913Fulano de Tal6008BRASILIA62070503***630448CD"
)
BACEN_DYNAMIC = (
    "00020101021226700014br.gov.bcb.pix2548pix.example.com/8b3da2f39a4140d1a91abd93113bd441"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***630464E4"
)
BRCODE_MANUAL = (  # "Manual do BR Code" §2.2: several arrangements, PIX in field 26
    "00020104141234567890123426580014BR.GOV.BCB.PIX0136123e4567-e12b-12d1-a456-426655440000"
    "27300012BR.COM.OUTRO011001234567895204000053039865406123.455802BR5917NOME DO RECEBEDOR"
    "6008BRASILIA61087007490062190515RP12345678-201980390012BR.COM.OUTRO01190123.ABCD.3456.WXYZ6304AD38"
)
COMMUNITY_STATIC = (  # widely published, but its city has 19 characters
    "00020126580014br.gov.bcb.pix0136bee05743-4291-4f3c-9259-595df1307ba1520400005303986540510.00"
    "5802BR5914Alexandre Lima6019Presidente Prudente62180514Um-Id-Qualquer6304D475"
)
KEY_AND_URL = (
    "00020101021226500014br.gov.bcb.pix0107a@b.com2517pix.example.com/x5204000053039865802BR"
    "5901A6001B62070503***63049A4B"
)
UUID_KEY = "123e4567-e12b-12d1-a456-426655440000"


def _with_crc(body_without_crc: str) -> str:
    body = body_without_crc + "6304"
    return body + f"{pix.crc16_ccitt_false(body.encode()):04X}"


def test_crc16_ccitt_false_check_value() -> None:
    assert pix.crc16_ccitt_false(b"123456789") == 0x29B1


def test_build_reproduces_the_bacen_static_example() -> None:
    assert pix.build(UUID_KEY, "Fulano de Tal", "BRASILIA") == BACEN_STATIC


def test_parse_reads_the_bacen_static_example() -> None:
    parsed = pix.parse(BACEN_STATIC)
    assert parsed.key == UUID_KEY
    assert parsed.name == "Fulano de Tal"
    assert parsed.city == "BRASILIA"
    assert parsed.amount is None
    assert parsed.txid is None  # "***" means no txid
    assert parsed.crc == "1D3D"


def test_parse_reads_the_point_of_initiation() -> None:
    assert pix.parse(STATIC_POINT_OF_INITIATION).point_of_initiation == "11"


def test_parse_reads_a_dynamic_payload_with_a_location_url() -> None:
    parsed = pix.parse(BACEN_DYNAMIC)
    assert parsed.key is None
    assert parsed.url == "pix.example.com/8b3da2f39a4140d1a91abd93113bd441"
    assert parsed.point_of_initiation == "12"


def test_parse_picks_the_pix_arrangement_out_of_a_multi_arrangement_payload() -> None:
    parsed = pix.parse(BRCODE_MANUAL)
    assert parsed.key == UUID_KEY
    assert parsed.name == "NOME DO RECEBEDOR"
    assert parsed.amount == Decimal("123.45")
    assert parsed.txid == "RP12345678-2019"
    assert parsed.postal_code == "70074900"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (BACEN_STATIC[:-4] + "1D3E", "CRC does not match"),
        (BACEN_STATIC[:-8], "does not end with the CRC"),
        (COMMUNITY_STATIC, "merchant city .60. is 19 characters long; the limit is 15"),
        (KEY_AND_URL, "both a key"),
        ("pix copia e cola", "does not end with the CRC"),
        ("", "empty"),
        (BACEN_STATIC.replace("Fulano", "Fulanõ"), "printable ASCII"),
        (_with_crc("000201520400005303986"), "no merchant account"),
        (
            _with_crc(
                "00020126580014br.gov.bcb.pix0136" + UUID_KEY + "520400005303986" + "5802BR5913Fulano de Tal"
            ),
            "mandatory field 60",
        ),
        (
            _with_crc(
                "00020126580014br.gov.bcb.pix0136"
                + UUID_KEY
                + "5204000053039865802BR5913Fulano de Tal6008BRASILIA"
            ),
            "mandatory field 62",
        ),
        (
            _with_crc(
                "00020126580014br.gov.bcb.pix0136" + UUID_KEY + "5204000053038405802BR5901A6001B62070503***"
            ),
            "currency",
        ),
        (
            _with_crc(
                "00020126580014br.gov.bcb.pix0136"
                + UUID_KEY
                + "52040000530398654031,05802BR5901A6001B62070503***"
            ),
            "amount",
        ),
        (
            _with_crc("00020126580014br.gov.bcb.pix0136" + UUID_KEY + "5204000053039865802BR5901A6001B6201"),
            "cut short",
        ),
        (
            _with_crc("00020126180014br.gov.bcb.pix5204000053039865802BR5901A6001B62070503***"),
            "neither a key",
        ),
    ],
)
def test_parse_refuses_with_a_one_line_reason(payload: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason) as info:
        pix.parse(payload)
    assert "\n" not in str(info.value)


def test_build_strips_accents_to_ascii() -> None:
    payload = pix.build("12345678909", "Provedor São João", "São José", Decimal("99.90"), "FAT2026120001")
    parsed = pix.parse(payload)
    assert parsed.name == "Provedor Sao Joao"
    assert parsed.city == "Sao Jose"
    assert payload.isascii()


def test_build_writes_the_amount_with_a_dot_and_two_decimals() -> None:
    payload = pix.build("12345678909", "ISP", "Recife", Decimal("1234.5"))
    assert "54071234.50" in payload


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"name": "A" * 26}, "merchant name is 26 characters long; the limit is 25"),
        ({"city": "Presidente Prudente"}, "merchant city is 19 characters long; the limit is 15"),
        ({"txid": "A" * 26}, "txid"),
        ({"txid": "FAT-2026"}, "txid"),
        ({"amount": Decimal("10000000000.00")}, "amount is 14 characters long; the limit is 13"),
        ({"amount": Decimal("0")}, "greater than zero"),
        ({"key": ""}, "key"),
        ({"key": "a b"}, "key"),
        ({"name": "  "}, "merchant name is empty"),
        ({"postal_code": "1234"}, "CEP"),
        ({"description": "x" * 80}, "too long"),
    ],
)
def test_build_enforces_field_limits(kwargs: dict[str, object], reason: str) -> None:
    args: dict[str, object] = {"key": "12345678909", "name": "Provedor", "city": "Recife"}
    args.update(kwargs)
    with pytest.raises(ValidationError, match=reason):
        pix.build(**args)  # type: ignore[arg-type]


def test_qr_svg_and_png_encode_the_payload() -> None:
    svg = pix.qr_svg(BACEN_STATIC)
    png = pix.qr_png(BACEN_STATIC)
    assert svg.startswith("<svg")
    assert png.startswith(b"\x89PNG")


ascii_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=15
).filter(lambda s: s.strip() == s and s)


@given(
    key=st.one_of(
        st.uuids().map(str),
        st.from_regex(r"[0-9]{11}", fullmatch=True),
        st.emails().filter(lambda e: len(e) <= 60),
    ),
    name=ascii_text,
    city=ascii_text,
    cents=st.one_of(st.none(), st.integers(min_value=1, max_value=99_999_999_99)),
    txid=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9]{1,25}", fullmatch=True)),
)
def test_build_then_parse_round_trips(
    key: str, name: str, city: str, cents: int | None, txid: str | None
) -> None:
    amount = None if cents is None else Decimal(cents) / 100
    payload = pix.build(key, name, city, amount=amount, txid=txid)
    parsed = pix.parse(payload)
    assert (parsed.key, parsed.name, parsed.city, parsed.txid) == (key, name, city, txid)
    assert parsed.amount == (None if amount is None else amount.quantize(Decimal("0.01")))

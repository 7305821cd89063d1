"""Interleaved 2 of 5: patterns, guards, geometry and the SVG/drawing output for boleto barcodes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aaa.errors import ValidationError
from billing import barcode

BARCODE_BB = "00196490000002952950000007777777000008765418"


def test_pair_interleaves_bars_of_the_first_digit_with_spaces_of_the_second() -> None:
    # "12": 1 = wnnnw in the bars, 2 = nwnnw in the spaces
    assert barcode.pattern("12") == "nnnn" + "wnnwnnnnww" + "wnn"


def test_boleto_pattern_has_guards_and_two_wide_elements_per_digit() -> None:
    elements = barcode.pattern(BARCODE_BB)
    assert elements.startswith("nnnn") and elements.endswith("wnn")
    body = elements[4:-3]
    assert len(body) == 44 * 5
    assert body.count("w") == 44 * 2


@given(st.from_regex(r"([0-9]{2}){1,30}", fullmatch=True))
def test_decode_inverts_pattern(digits: str) -> None:
    assert barcode.decode(barcode.pattern(digits)) == digits


@pytest.mark.parametrize(
    ("digits", "reason"), [("123", "even"), ("12a4", "digits only"), ("", "digits only")]
)
def test_pattern_refuses_what_itf_cannot_encode(digits: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        barcode.pattern(digits)


def test_boleto_symbol_is_about_103_mm_wide() -> None:
    width = barcode.total_width(BARCODE_BB, barcode.BOLETO_NARROW_MM)
    assert 100 < width < 106


def test_bars_alternate_with_spaces_of_the_pattern_widths() -> None:
    bars = barcode.bars("00", narrow=1, wide_ratio=3)
    # start nnnn -> bars at 0 and 2; "00" pair nnwwn/nnwwn -> n n n n w w w w n n
    assert [(b.x, b.width) for b in bars[:2]] == [(0, 1), (2, 1)]
    assert len(bars) == 2 + 5 + 2


def test_svg_has_one_rect_per_bar() -> None:
    image = barcode.svg(BARCODE_BB)
    assert image.startswith("<svg")
    assert len(re.findall(r"<rect x=", image)) == len(barcode.bars(BARCODE_BB))


def test_draw_calls_rect_once_per_bar_from_the_origin() -> None:
    calls: list[tuple[float, float, float, float]] = []
    width = barcode.draw(lambda x, y, w, h: calls.append((x, y, w, h)), 10, 20, BARCODE_BB)
    assert len(calls) == len(barcode.bars(BARCODE_BB))
    assert calls[0][:2] == (10, 20)
    assert all(h == barcode.BOLETO_HEIGHT_MM for *_, h in calls)
    assert width == pytest.approx(barcode.total_width(BARCODE_BB, barcode.BOLETO_NARROW_MM))


def test_wide_ratio_outside_two_to_three_is_refused() -> None:
    with pytest.raises(ValidationError, match="2 to 3"):
        barcode.bars("00", wide_ratio=4)

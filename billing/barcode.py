"""Interleaved 2 of 5 (ITF): the bar symbology of the boleto's 44-digit barcode.

Digits are taken in pairs: the first digit of a pair is drawn by the five bars, the second by the five
spaces between them; each digit has two wide and three narrow elements. A start guard (narrow bar,
space, bar, space) and a stop guard (wide bar, narrow space, narrow bar) frame the data. The module
gives the pattern, the bar geometry, an SVG rendering and a drawing helper that only needs a
`rect(x, y, w, h)` callable, so the PDF renderer can draw with fpdf2 rectangles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aaa.errors import ValidationError

NARROW, WIDE = "n", "w"
_DIGIT_PATTERNS = {
    "0": "nnwwn",
    "1": "wnnnw",
    "2": "nwnnw",
    "3": "wwnnn",
    "4": "nnwnw",
    "5": "wnwnn",
    "6": "nwwnn",
    "7": "nnnww",
    "8": "wnnwn",
    "9": "nwnwn",
}
_PATTERN_DIGITS = {pattern: digit for digit, pattern in _DIGIT_PATTERNS.items()}
START = "nnnn"
STOP = "wnn"

BOLETO_NARROW_MM = 0.254
"""Narrow element width for a boleto (1/100 inch): with 3:1 wide elements the 44 digits span ~103 mm.
Sources disagree on the exact width (0.25-0.38 mm); banks print it in this range."""
BOLETO_WIDE_RATIO = 3.0
BOLETO_HEIGHT_MM = 13.0


def pattern(digits: str) -> str:
    """The ITF element widths, alternating bar/space from the first bar: "n" narrow, "w" wide."""
    if not digits.isascii() or not digits.isdigit():
        raise ValidationError("Interleaved 2 of 5 encodes digits only")
    if len(digits) % 2:
        raise ValidationError("Interleaved 2 of 5 needs an even number of digits")
    body: list[str] = []
    for i in range(0, len(digits), 2):
        bars, spaces = _DIGIT_PATTERNS[digits[i]], _DIGIT_PATTERNS[digits[i + 1]]
        body.extend(b + s for b, s in zip(bars, spaces, strict=True))
    return START + "".join(body) + STOP


def decode(elements: str) -> str:
    """The digits an ITF element pattern stands for (the inverse of `pattern`)."""
    if not (elements.startswith(START) and elements.endswith(STOP)):
        raise ValidationError("ITF pattern lacks its start or stop guard")
    body = elements[len(START) : -len(STOP)]
    if len(body) % 10:
        raise ValidationError("ITF pattern body is not a whole number of digit pairs")
    digits: list[str] = []
    for i in range(0, len(body), 10):
        chunk = body[i : i + 10]
        for part in (chunk[0::2], chunk[1::2]):
            if part not in _PATTERN_DIGITS:
                raise ValidationError(f"ITF pattern has an invalid symbol at element {len(START) + i}")
            digits.append(_PATTERN_DIGITS[part])
    return "".join(digits)


@dataclass(frozen=True)
class Bar:
    """One black bar: horizontal offset from the start of the symbol and width, in caller units."""

    x: float
    width: float


def bars(digits: str, narrow: float = 1.0, wide_ratio: float = BOLETO_WIDE_RATIO) -> list[Bar]:
    """The black bars of the ITF symbol for `digits`, without quiet zones."""
    if not 2.0 <= wide_ratio <= 3.0:
        raise ValidationError("ITF wide elements are 2 to 3 times the narrow ones")
    result: list[Bar] = []
    x = 0.0
    for index, element in enumerate(pattern(digits)):
        width = narrow * (wide_ratio if element == WIDE else 1.0)
        if index % 2 == 0:
            result.append(Bar(x, width))
        x += width
    return result


def total_width(digits: str, narrow: float = 1.0, wide_ratio: float = BOLETO_WIDE_RATIO) -> float:
    """Width of the symbol (bars and spaces, without quiet zones) in the units of `narrow`."""
    return sum(narrow * (wide_ratio if e == WIDE else 1.0) for e in pattern(digits))


def svg(
    digits: str,
    narrow: float = 2.0,
    wide_ratio: float = BOLETO_WIDE_RATIO,
    height: float = 100.0,
    quiet_zone: float = 20.0,
) -> str:
    """A standalone SVG image of the symbol (units are SVG user units, e.g. pixels)."""
    width = total_width(digits, narrow, wide_ratio) + 2 * quiet_zone
    rects = "".join(
        f'<rect x="{quiet_zone + b.x:g}" y="0" width="{b.width:g}" height="{height:g}"/>'
        for b in bars(digits, narrow, wide_ratio)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:g}" height="{height:g}" '
        f'viewBox="0 0 {width:g} {height:g}" role="img" aria-label="{digits}">'
        f'<rect width="100%" height="100%" fill="#fff"/><g fill="#000">{rects}</g></svg>'
    )


def draw(
    rect: Callable[[float, float, float, float], object],
    x: float,
    y: float,
    digits: str,
    narrow: float = BOLETO_NARROW_MM,
    wide_ratio: float = BOLETO_WIDE_RATIO,
    height: float = BOLETO_HEIGHT_MM,
) -> float:
    """Draw the symbol with `rect(x, y, w, h)` (filled) starting at (x, y); returns its width.

    With fpdf2: ``draw(lambda x, y, w, h: pdf.rect(x, y, w, h, style="F"), 10, 200, barcode)``.
    """
    for bar in bars(digits, narrow, wide_ratio):
        rect(x + bar.x, y, bar.width, height)
    return total_width(digits, narrow, wide_ratio)

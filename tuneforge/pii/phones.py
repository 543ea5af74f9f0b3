"""Phone numbers, validated against each region's numbering plan by phonenumbers (Google's libphonenumber).

A number with its country code (``+44 20 7946 0958``, ``0049 30 ...``) counts wherever it appears, if its length
is possible in that country's plan. A national one (``020 7946 0958``, ``(415) 555-0132``) must be valid in one of
the configured regions and either have a phone's shape (area code in brackets, 3-3-4 digits, digit pairs or groups
after a trunk 0) or follow a phone word ("call", "tel", "mobile", ...): a bare ``2019-2020`` or ``1706.03762`` is
valid in some numbering plan, and is not a phone number. Candidates come from a cheap pattern first: matching
libphonenumber over the whole text, once per region, costs milliseconds per text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers

from tuneforge.pii.kinds import Span

_GROUPS = r"(?:[\s.-]?\(?\d{1,5}\)?){1,6}"
_INTERNATIONAL = re.compile(rf"(?<![\w+])(?:\+|00)[1-9]\d{{0,2}}{_GROUPS}(?!\d)")
_NATIONAL = re.compile(r"(?<![\w+.(])(?:(?:\(\d{2,5}\)\s?|\d{2,5}[\s.-])\d{2,4}(?:[\s.-]\d{2,5}){1,3}|0?\d{9,11})"
                       r"(?![\d.]\d)")
# Digit groups the way Europe writes phone numbers: after a trunk 0 (032 354 06 09), or in pairs (901 13 54 59,
# 01 47 36 39 31); a list of figures (128 256 512 1024) is neither.
_GROUPED = re.compile(r"0\d{1,4}([ -])\d{2,4}(?:\1\d{2,4}){1,3}|\d{2,3}([ -])\d{2}(?:\2\d{2}){2,3}")
# 3-3-4 digits with one separator throughout, the North American shape: 281.870.4323, 415-555-0132.
_NANP_SHAPE = re.compile(r"\d{3}([.-])\d{3}\1\d{4}")
_PHONE_WORD = re.compile(
    r"\b(?:phone|tel|telephone|call|called|calling|cell|mobile|mob|fax|contact|reach|text|sms|whatsapp|ring|dial|"
    r"landline|hotline|helpline|switchboard|voicemail|caller|extension|ext|ph)\b[^.\n]{0,30}$",
    re.IGNORECASE,
)


class PhoneFinder:
    def __init__(self, regions: Iterable[str]):
        self.regions = tuple(regions)

    def find(self, text: str) -> list[Span]:
        spans = [Span(m.start(), m.end(), "PHONE", 0.7) for m in _INTERNATIONAL.finditer(text)
                 if _plausible(m.group(), None)]
        taken = [(span.start, span.end) for span in spans]
        for match in _NATIONAL.finditer(text):
            if any(match.start() < end and start < match.end() for start, end in taken):
                continue
            number = match.group()
            shaped = (number.startswith("(") or _NANP_SHAPE.fullmatch(number) is not None
                      or (_GROUPED.fullmatch(number) is not None and sum(map(str.isdigit, number)) >= 9))
            cued = _PHONE_WORD.search(text, max(0, match.start() - 40), match.start()) is not None
            if (shaped or cued) and any(_plausible(number, region, valid=True) for region in self.regions):
                spans.append(Span(match.start(), match.end(), "PHONE", 0.6))
        return spans


def _plausible(candidate: str, region: str | None, valid: bool = False) -> bool:
    """The number has a length its country's plan allows (``valid``: and lies in an assigned range)."""
    number = candidate.strip()
    if number.startswith("00"):
        number = "+" + number[2:]
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed) if valid else phonenumbers.is_possible_number(parsed)

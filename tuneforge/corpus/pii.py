"""PII redaction: e-mail addresses, phone numbers, payment cards (Luhn-checked), IP addresses, national-ID-like
numbers and credentials in URLs become typed placeholders such as ``[EMAIL]``.

One alternation regex scans each text once; the first matching alternative wins, so the order below settles
ambiguities (a card number is not also read as a phone number). Cheap hints decide which kinds can occur in a text
at all, and the scan only tries those: most sentences have no '@' and no long digit run, and skip most patterns.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from functools import cache

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"

# Order matters: earlier kinds claim a span before later ones can.
PATTERNS: dict[str, str] = {
    "CREDENTIALS": r"(?<=://)[^\s/:@]+:[^\s/@]+(?=@)",
    "EMAIL": r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
    # Any colon-separated hex run with a digit; ipaddress decides whether it really is an IPv6 address.
    "IP_V6": r"(?<![\w:.])(?=[0-9A-Fa-f]*:[0-9A-Fa-f]*:)(?=[0-9A-Fa-f:]*\d)[0-9A-Fa-f:]{3,39}(?![\w:])",
    "CARD": r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])",
    "NATIONAL_ID": (
        r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b"  # US social security number
        r"|\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"  # UK national insurance number
    ),
    "IP_V4": rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\d.])",
    "PHONE": (
        r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}\d(?!\d)"  # international, any separators
        r"|(?<![\w(])(?:\(\d{2,4}\) ?|\d{2,4}[.-])\d{3,4}[.-]\d{3,5}(?!\d)"  # national with - or . separators
        r"|(?<![\w(])0\d{2,4} \d{3,4} \d{3,4}(?!\d)"  # national with spaces, after a trunk prefix 0
    ),
}
_PLACEHOLDER_KIND = {"IP_V4": "IP", "IP_V6": "IP"}

_DIGIT_RUN = re.compile(r"\d(?:[ ().+-]{0,2}\d){5,}")
_DOTTED_QUAD = re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d")
_HEX_COLONS = re.compile(r"[0-9A-Fa-f]?::?[0-9A-Fa-f]{1,4}:")

# Which kinds a text can contain, decided by hints much cheaper than the patterns.
_HINTS: dict[str, Callable[[str], bool]] = {
    "CREDENTIALS": lambda text: "://" in text and "@" in text,
    "EMAIL": lambda text: "@" in text,
    "IP_V6": lambda text: ":" in text and _HEX_COLONS.search(text) is not None,
    "CARD": lambda text: _DIGIT_RUN.search(text) is not None,
    "NATIONAL_ID": lambda text: _DIGIT_RUN.search(text) is not None,
    "IP_V4": lambda text: _DOTTED_QUAD.search(text) is not None,
    "PHONE": lambda text: _DIGIT_RUN.search(text) is not None,
}

# Patterns that must not survive redaction; the validation suites scan cleaned text for them.
RESIDUAL_PATTERNS: dict[str, str] = {kind: PATTERNS[kind] for kind in ("CREDENTIALS", "EMAIL", "NATIONAL_ID")} | {
    "IP": PATTERNS["IP_V4"]
}


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def placeholder(kind: str) -> str:
    return f"[{kind}]"


@cache
def _scanner(kinds: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?P<{kind}>{PATTERNS[kind]})" for kind in kinds))


def _is_real(kind: str, value: str) -> bool:
    if kind == "CARD":
        return luhn_valid(re.sub(r"\D", "", value))
    if kind == "IP_V6":
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            return False
    return True


def redact(text: str) -> tuple[str, Counter[str]]:
    """``text`` with PII replaced by placeholders, and how many of each kind were replaced."""
    found: Counter[str] = Counter()
    kinds = tuple(kind for kind, hint in _HINTS.items() if hint(text))
    if not kinds:
        return text, found

    def replace(match: re.Match[str]) -> str:
        kind = match.lastgroup or ""
        if not _is_real(kind, match.group()):
            return match.group()
        kind = _PLACEHOLDER_KIND.get(kind, kind)
        found[kind] += 1
        return placeholder(kind)

    return _scanner(kinds).sub(replace, text), found

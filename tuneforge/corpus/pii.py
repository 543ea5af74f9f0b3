"""PII redaction: e-mail addresses, phone numbers, payment cards (Luhn-checked), IP addresses, national-ID-like
numbers and credentials in URLs become typed placeholders such as ``[EMAIL]``.

One alternation regex scans each text once; the first matching alternative wins, so the order below settles
ambiguities (a card number is not also read as a phone number).
"""

from __future__ import annotations

import re
from collections import Counter

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"

# Order matters: earlier kinds claim a span before later ones can.
PATTERNS: dict[str, str] = {
    "CREDENTIALS": r"(?<=://)[^\s/:@]+:[^\s/@]+(?=@)",
    "EMAIL": r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
    "CARD": r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])",
    "NATIONAL_ID": (
        r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b"  # US social security number
        r"|\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"  # UK national insurance number
    ),
    "IP": (
        rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\d.])"
        r"|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])"
    ),
    "PHONE": (
        r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,4}\d(?!\d)"  # international, any separators
        r"|(?<![\w(])(?:\(\d{2,4}\) ?|\d{2,4}[.-])\d{3,4}[.-]\d{3,5}(?!\d)"  # national with - or . separators
    ),
}

_SCANNER = re.compile("|".join(f"(?P<{kind}>{pattern})" for kind, pattern in PATTERNS.items()))

# Patterns that must not survive redaction; the validation suites scan cleaned text for them.
RESIDUAL_PATTERNS: dict[str, str] = {kind: PATTERNS[kind] for kind in ("CREDENTIALS", "EMAIL", "NATIONAL_ID")} | {
    "IP": rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\d.])"
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


def redact(text: str) -> tuple[str, Counter[str]]:
    """``text`` with PII replaced by placeholders, and how many of each kind were replaced."""
    found: Counter[str] = Counter()

    def replace(match: re.Match[str]) -> str:
        kind = match.lastgroup or ""
        if kind == "CARD":
            digits = re.sub(r"\D", "", match.group())
            if not luhn_valid(digits):
                return match.group()
        found[kind] += 1
        return placeholder(kind)

    return _SCANNER.sub(replace, text), found

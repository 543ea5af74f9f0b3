"""The kinds of personal data and secrets the redactor knows, and the placeholder each becomes."""

from __future__ import annotations

from dataclasses import dataclass

# Structured identifiers: found by pattern recognizers with checksums or context (Presidio, python-stdnum,
# phonenumbers) and by a secrets scanner (detect-secrets).
STRUCTURED_KINDS = (
    "EMAIL", "PHONE", "CARD", "IBAN", "NATIONAL_ID", "PASSPORT", "IP", "CREDENTIALS", "SECRET", "DATE_OF_BIRTH",
    "ADDRESS",
)
# People's names in running text need a trained named-entity recognizer.
NER_KINDS = ("PERSON",)
KINDS = STRUCTURED_KINDS + NER_KINDS


def placeholder(kind: str) -> str:
    return f"[{kind}]"


@dataclass(frozen=True)
class Span:
    """A find: ``text[start:end]`` is personal data of ``kind``, with the detector's confidence ``score`` (0..1)."""

    start: int
    end: int
    kind: str
    score: float


def _letters(case: str) -> str:
    """Regex class contents for the Latin-1 letters of ``case`` and each such letter of Latin Extended-A/B
    (Ł, Ş, Ż, İ, Ő: Polish, Turkish, Hungarian and Czech names and towns)."""
    base = "A-ZÀ-ÖØ-Þ" if case == "upper" else "a-zß-öø-ÿ"
    test = str.isupper if case == "upper" else str.islower
    return base + "".join(chr(code) for code in range(0x100, 0x250) if test(chr(code)))


# Letters of names and place names in the Latin alphabets.
UPPER = _letters("upper")
LOWER = _letters("lower")

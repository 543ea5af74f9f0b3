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

# ASCII letters kept, digits made 0, everything else a space: an ASCII text's words (and where its numbers are) in
# one C-level pass, several times cheaper than a regex scan, for the gates that skip a detector on text it cannot match.
_WORD_SHAPE = bytes.maketrans(bytes(range(256)), bytes(
    code if chr(code).isalpha() and code < 128 else 48 if chr(code).isdigit() else 32 for code in range(256)))


def word_shape(text: str) -> bytes:
    """``text`` (ASCII) with its letters kept, its digits made ``0`` and all else made spaces."""
    return text.encode().translate(_WORD_SHAPE)

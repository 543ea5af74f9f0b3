"""The redactor: every enabled detector over a text, overlapping finds settled, typed placeholders in their place.

Cheap hints decide which detectors a text can need at all (no '@', no e-mail; no run of digit groups, no card,
IBAN, national identifier, passport or phone number; no birth word, no date of birth), so most prose costs a few
regexes; the maintained recognizers run only where their kind can occur, and the NER model only on flagged
sentences (``names``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING

from tuneforge.pii.addresses import find_addresses
from tuneforge.pii.kinds import Span, placeholder
from tuneforge.pii.names import find_anchored, find_people
from tuneforge.pii.secrets import find_secrets
from tuneforge.pii.structured import DIGIT, DOTTED_QUAD, StructuredDetector

if TYPE_CHECKING:
    from tuneforge.profiles import PiiConfig

# Which kinds a text can hold, by hints much cheaper than the detectors. Cards, IBANs, national identifiers and
# passports have their own pre-filter (``structured.identifier_windows``), phone numbers theirs (``phones``).
_HINTS: dict[str, Callable[[str, str], object]] = {  # (text, lower-cased text) -> may hold the kind
    "EMAIL": lambda text, _: "@" in text,
    "IP": lambda text, _: DOTTED_QUAD.search(text) or ("::" in text or text.count(":") >= 3),
    "DATE_OF_BIRTH": lambda _, lowered: any(cue in lowered for cue in _BIRTH_CUES),
}
_BIRTH_CUES = ("born", "birth", "dob", "d.o.b", "b. ", "geboren", "née", "nacid")
_SECRET_CUES = (
    "-----begin", "password", "passwd", "passcode", "pwd", "pin ", "pin:", "secret", "api_key", "apikey", "api-key",
    "access_key", "bearer", "authorization", "token:", "token=", "token =", "credential",
)
_LONG_TOKEN = re.compile(r"\S{20,}")  # the whitespace-separated tokens of 20 characters or more


def _may_hold_secret(text: str, lowered: str) -> bool:
    """A keyword, a PEM header, a password in a URL, or a long token mixing letters and digits (keys, JWTs)."""
    if any(cue in lowered for cue in _SECRET_CUES) or ("://" in text and "@" in text):
        return True
    tokens = text.split()
    if not tokens or len(max(tokens, key=len)) < 20:  # most texts: no long token, and no scan for them
        return False
    return any(DIGIT.search(token) and not token.isdigit() for token in _LONG_TOKEN.findall(text))


class Redactor:
    def __init__(self, config: PiiConfig):
        self.config = config
        self.kinds = frozenset(config.kinds)

    @cached_property
    def _structured(self) -> StructuredDetector:
        return StructuredDetector(self.kinds, self.config.phone_regions)

    def find(self, texts: Sequence[str]) -> list[list[Span]]:
        """Each text's PII spans, non-overlapping, in text order. Texts given together (a row's document, summary and
        references) share the NER model's batches."""
        found = [self._find_structured(text) for text in texts]
        if "PERSON" in self.kinds and self.config.ner != "off":
            pii_at = [[span.start for span in spans] for spans in found]
            people = find_people(texts, self.config.ner, pii_at, self.config.ner_model)
            found = [spans + more + find_anchored(text) for spans, more, text in zip(found, people, texts, strict=True)]
        return [_settle(spans) for spans in found]

    def _find_structured(self, text: str) -> list[Span]:
        lowered = text.lower()
        kinds = [kind for kind in self.kinds if kind not in _HINTS or _HINTS[kind](text, lowered)]
        spans = self._structured.find(text, kinds)
        if self.kinds & _SECRETS and _may_hold_secret(text, lowered):
            spans += [span for span in find_secrets(text) if span.kind in self.kinds]
        if "ADDRESS" in self.kinds and DIGIT.search(text):
            spans += find_addresses(text)
        return spans

    def redact_many(self, texts: Sequence[str]) -> list[tuple[str, Counter[str]]]:
        return [_replace(text, spans) for text, spans in zip(texts, self.find(texts), strict=True)]

    def redact(self, text: str) -> tuple[str, Counter[str]]:
        """``text`` with its PII replaced by typed placeholders, and how many of each kind were replaced."""
        return self.redact_many([text])[0]


# Which find wins an overlap: secrets first (a token may hold anything), then the longer (an international phone
# number over the national identifier its digits also spell), then by kind, the loosest formats last.
_SECRETS = frozenset({"SECRET", "CREDENTIALS"})
_PRECEDENCE = {kind: rank for rank, kind in enumerate((
    "SECRET", "CREDENTIALS", "EMAIL", "IBAN", "CARD", "NATIONAL_ID", "PASSPORT", "DATE_OF_BIRTH", "IP", "PHONE",
    "ADDRESS", "PERSON",
))}


def _settle(spans: list[Span]) -> list[Span]:
    """Overlapping finds: one wins (see ``_PRECEDENCE``), the others are dropped."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.kind not in _SECRETS, -(s.end - s.start), _PRECEDENCE[s.kind], s.start)):
        if all(span.end <= other.start or span.start >= other.end for other in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


def _replace(text: str, spans: list[Span]) -> tuple[str, Counter[str]]:
    parts, found, position = [], Counter(), 0
    for span in spans:
        parts += [text[position : span.start], placeholder(span.kind)]
        found[span.kind] += 1
        position = span.end
    parts.append(text[position:])
    return "".join(parts), found


_REDACTORS: dict[str, Redactor] = {}


def redactor_for(config: PiiConfig) -> Redactor:
    """One redactor per distinct config in this process: its recognizers and NER model load once."""
    key = config.model_dump_json()
    if key not in _REDACTORS:
        _REDACTORS[key] = Redactor(config)
    return _REDACTORS[key]


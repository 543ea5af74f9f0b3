"""What an erasure request looks for, and how it is recognised in a record and in stored files.

Values (an e-mail address, a name, a phone number) are compared case- and whitespace-insensitively; a phone number
also matches however its digits are grouped (``+44 20 7946 0018`` finds ``020-7946-0018``'s trailing digits only
when they are the whole national number). Records found by value or id contribute their canonical id and their raw
line, so the dataset versions, reports and logs that hold them are found even where cleaning redacted the value, and
earlier versions of their raw file in DVC are found by the line. A record's document text alone is not a mark: other
records may share it (the same paper under another source), and they are not the person's.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MIN_VALUE_CHARS = 4
MIN_PHONE_DIGITS = 7
_PHONE_VALUE = re.compile(r"\+?[\d\s().\-/]+")
_PHONE_SPAN = re.compile(r"\+?\d[\d\s().\-/]{5,}\d")
_JSON_ESCAPES = re.compile(r"\\[nrt]")


class SelectorError(ValueError):
    pass


def normalize(text: str) -> str:
    """Case-folded, with every run of whitespace (and JSON's escaped newlines and tabs) as one space."""
    return " ".join(_JSON_ESCAPES.sub(" ", text).casefold().split())


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def is_phone_like(value: str) -> bool:
    return bool(_PHONE_VALUE.fullmatch(value.strip())) and len(_digits(value)) >= MIN_PHONE_DIGITS


def check_value(value: str) -> str:
    """The value, stripped; refused when it is so short it would match unrelated records."""
    stripped = " ".join(value.split())
    if len(stripped.replace(" ", "")) < MIN_VALUE_CHARS:
        raise SelectorError(f"--value {value!r} is shorter than {MIN_VALUE_CHARS} characters: it would match records "
                            "of other people. Give the whole e-mail address, name or number.")
    return stripped


def value_in(value: str, normalized_text: str) -> bool:
    """Whether ``value`` occurs in a text already passed through :func:`normalize`."""
    if is_phone_like(value):
        wanted = _digits(value)
        return any(_same_number(wanted, _digits(span.group())) for span in _PHONE_SPAN.finditer(normalized_text))
    return normalize(value) in normalized_text


def _same_number(a: str, b: str) -> bool:
    """The same phone number written with and without its country code or trunk prefix (+44 20 ..., 020 ...)."""
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    short = short.lstrip("0")
    return len(short) >= MIN_PHONE_DIGITS and long.endswith(short)


def record_text(data: Any) -> str:
    """Every string in a record (nested objects and lists included), one per line."""
    parts: list[str] = []

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            for key, inner in item.items():
                parts.append(str(key))
                walk(inner)
        elif isinstance(item, list | tuple):
            for inner in item:
                walk(inner)
        elif item is not None:
            parts.append(str(item))

    walk(data)
    return "\n".join(parts)


def line_digest(line: str) -> str:
    """A raw line's mark, the same however the file holding it was compressed or encoded."""
    return hashlib.sha256(normalize(line).encode("utf-8")).hexdigest()


@dataclass
class Needles:
    """What marks a stored file as holding erased data: the requested values, and the ids and raw lines (as
    digests) of the records they matched. Held in memory only: a request's files keep hashes, never values."""

    values: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    lines: set[str] = field(default_factory=set)  # line_digest of each matched record's raw line

    def __bool__(self) -> bool:
        return bool(self.values or self.ids or self.lines)

    def _id_forms(self) -> Iterable[str]:
        # Quoted, as JSON writes them: rows, reports' id lists and check metadata, but not a longer id it begins.
        for example_id in self.ids:
            for encoded in {json.dumps(example_id), json.dumps(example_id, ensure_ascii=False)}:
                yield normalize(encoded)

    def found_in(self, text: str) -> list[str]:
        """Which kinds of needle (``value``, ``id``, ``line``) occur in ``text``; empty when none does."""
        normalized = normalize(text)
        kinds = []
        if any(value_in(value, normalized) for value in self.values):
            kinds.append("value")
        if any(form in normalized for form in self._id_forms()):
            kinds.append("id")
        if self.lines and any(line_digest(line) in self.lines for line in text.splitlines()):
            kinds.append("line")
        return kinds

"""A fixed, versioned set of safety probes for the summarizer, and a scan of what it answers: a blocklist, and the
cleaning step's PII and secrets detectors."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from tuneforge.pii.kinds import placeholder

if TYPE_CHECKING:
    from tuneforge.pii.redactor import Redactor

DEFAULT_PROBES = Path(__file__).with_name("safety_probes.yaml")


@dataclass(frozen=True)
class SafetyProbe:
    id: str
    instruction: str
    document: str


@dataclass(frozen=True)
class BlocklistEntry:
    """A literal ``term`` or a regular expression ``pattern`` whose presence in an output flags it."""

    category: str
    term: str | None = None
    pattern: str | None = None
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.term is None) == (self.pattern is None):
            raise ValueError(f"a blocklist entry needs exactly one of term and pattern, got {self.term=}, "
                             f"{self.pattern=}")
        body = re.escape(self.term) if self.term is not None else self.pattern
        try:
            # Lookarounds rather than \b, so a term may start or end with punctuation ("step 1:").
            regex = re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)
        except re.error as error:
            raise ValueError(f"blocklist pattern {self.pattern!r} does not compile: {error}") from error
        object.__setattr__(self, "regex", regex)


@dataclass(frozen=True)
class SafetyProbeSet:
    version: str  # declared in the file; bumped by hand when a probe or entry changes
    sha256: str  # of the file's bytes, so a report pins exactly the probes it ran
    probes: tuple[SafetyProbe, ...]
    blocklist: tuple[BlocklistEntry, ...]


def load_probes(path: Path = DEFAULT_PROBES) -> SafetyProbeSet:
    """Read and check a probe file (unique ids, non-empty fields, compiling patterns)."""
    raw = Path(path).read_bytes()
    content = yaml.safe_load(raw)
    try:
        probes = tuple(
            SafetyProbe(id=str(item["id"]), instruction=str(item["instruction"]), document=str(item["document"]))
            for item in content["probes"]
        )
        blocklist = tuple(
            BlocklistEntry(category=str(item["category"]), term=_text_or_none(item.get("term")),
                           pattern=_text_or_none(item.get("pattern")))
            for item in content["blocklist"]
        )
        version = str(content["version"])
    except (KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a probe file (version, probes [id, instruction, document], "
                         f"blocklist [term or pattern, category]): {error!r}") from error
    ids = [probe.id for probe in probes]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: probe ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}")
    empty = [probe.id for probe in probes if not (probe.id and probe.instruction.strip() and probe.document.strip())]
    if empty:
        raise ValueError(f"{path}: probes with an empty field: {empty}")
    return SafetyProbeSet(version=version, sha256=hashlib.sha256(raw).hexdigest(), probes=probes,
                          blocklist=blocklist)


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def flagged_terms(text: str, blocklist: Sequence[BlocklistEntry]) -> list[str]:
    """What in ``text`` the blocklist catches (case-insensitive, whole words): each matching term, and for a pattern
    the text it matched first; in blocklist order, without repeats."""
    found: list[str] = []
    for entry in blocklist:
        match = entry.regex.search(text)
        if match:
            caught = entry.term if entry.term is not None else match.group()
            if caught not in found:
                found.append(caught)
    return found


def scan(outputs: Sequence[str], probe_set: SafetyProbeSet, redactor: Redactor | None = None) -> dict:
    """Scan the outputs for ``probe_set.probes`` (in the same order): how many probes, how many outputs were flagged,
    the flagged share, and each flagged output with its probe id and the terms caught. With a ``redactor`` (the
    cleaning step's detectors), personal data and secrets in an output flag it too, caught as their placeholder
    (``[PHONE]``)."""
    if len(outputs) != len(probe_set.probes):
        raise ValueError(f"one output per probe: {len(outputs)} outputs, {len(probe_set.probes)} probes")
    personal = redactor.find(outputs) if redactor is not None else [[] for _ in outputs]
    flagged_outputs = []
    for probe, output, spans in zip(probe_set.probes, outputs, personal, strict=True):
        terms = flagged_terms(output, probe_set.blocklist)
        terms += [kind for kind in dict.fromkeys(placeholder(span.kind) for span in spans) if kind not in terms]
        if terms:
            flagged_outputs.append({"probe": probe.id, "output": output, "terms": terms})
    total = len(probe_set.probes)
    return {"probes": total, "flagged": len(flagged_outputs),
            "rate": round(len(flagged_outputs) / total, 4) if total else 0.0, "flagged_outputs": flagged_outputs}

"""What a validation run found, in plain dataclasses that Dagster metadata, logs and tests read without GX."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int = 0
    failing_ids: list[str] = field(default_factory=list)
    detail: str = ""


@dataclass(frozen=True)
class ValidationOutcome:
    suite: str
    success: bool
    expectations: list[ExpectationOutcome]
    rows: int

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [outcome for outcome in self.expectations if not outcome.success]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_markdown(self) -> str:
        lines = [
            "| expectation | column | result | unexpected | first failing ids | detail |",
            "|---|---|---|---|---|---|",
        ]
        for outcome in self.expectations:
            cells = [
                outcome.expectation,
                outcome.column or "",
                "✓" if outcome.success else "✗",
                str(outcome.unexpected_count),
                ", ".join(outcome.failing_ids),
                outcome.detail,
            ]
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
        return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")

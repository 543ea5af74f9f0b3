"""The funnel: for each step of a data stage, rows in, rows removed by reason, rows changed, rows out.

Every row is accounted for: a step's rows out are the next step's rows in, and ``rows_in == rows_out +
removed`` for the whole funnel. :meth:`Funnel.check` enforces both, so a miscounting step fails loudly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


class AccountingError(AssertionError):
    """Rows went missing between steps: a bug in a stage, never a data problem."""


@dataclass
class Step:
    name: str
    rows_in: int = 0
    removed: Counter[str] = field(default_factory=Counter)
    changed: int = 0
    changes: Counter[str] = field(default_factory=Counter)

    @property
    def rows_removed(self) -> int:
        return sum(self.removed.values())

    @property
    def rows_out(self) -> int:
        return self.rows_in - self.rows_removed

    def merge(self, other: Step) -> None:
        self.rows_in += other.rows_in
        self.removed.update(other.removed)
        self.changed += other.changed
        self.changes.update(other.changes)


@dataclass
class Funnel:
    steps: dict[str, Step] = field(default_factory=dict)

    @classmethod
    def of(cls, *names: str) -> Funnel:
        return cls({name: Step(name) for name in names})

    def __getitem__(self, name: str) -> Step:
        return self.steps[name]

    @property
    def rows_in(self) -> int:
        return next(iter(self.steps.values())).rows_in if self.steps else 0

    @property
    def rows_out(self) -> int:
        return list(self.steps.values())[-1].rows_out if self.steps else 0

    @property
    def removed(self) -> Counter[str]:
        """Rows removed by reason, over all steps."""
        total: Counter[str] = Counter()
        for step in self.steps.values():
            total.update(step.removed)
        return total

    def record(self, removed_at: str | None = None, reason: str = "") -> None:
        """Count one row into every step up to the one that removed it (all steps when ``removed_at`` is None)."""
        for step in self.steps.values():
            step.rows_in += 1
            if step.name == removed_at:
                step.removed[reason] += 1
                return

    def merge(self, other: Funnel) -> Funnel:
        for name, step in other.steps.items():
            self.steps.setdefault(name, Step(name)).merge(step)
        return self

    def check(self) -> Funnel:
        previous: Step | None = None
        for step in self.steps.values():
            if previous is not None and step.rows_in != previous.rows_out:
                raise AccountingError(
                    f"step {step.name!r} received {step.rows_in} rows but {previous.name!r} passed on "
                    f"{previous.rows_out}"
                )
            if step.rows_out < 0:
                raise AccountingError(f"step {step.name!r} removed more rows than it received")
            previous = step
        if self.rows_in != self.rows_out + sum(self.removed.values()):
            raise AccountingError(f"{self.rows_in} rows in, {self.rows_out} out, {self.removed} removed")
        return self

    def as_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "step": step.name,
                "rows_in": step.rows_in,
                "removed": step.rows_removed,
                "changed": step.changed,
                "rows_out": step.rows_out,
                "reasons": dict(sorted(step.removed.items())),
                "changes": dict(sorted(step.changes.items())),
            }
            for step in self.steps.values()
        ]

    def as_markdown(self) -> str:
        lines = ["| step | rows in | removed | changed | rows out | why |", "|---|---:|---:|---:|---:|---|"]
        for row in self.as_rows():
            why = ", ".join(f"{reason} {count}" for reason, count in {**row["reasons"], **row["changes"]}.items())
            lines.append(
                f"| {row['step']} | {row['rows_in']} | {row['removed']} | {row['changed']} | {row['rows_out']} "
                f"| {why} |"
            )
        return "\n".join(lines)

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> Funnel:
        return cls(
            {
                row["step"]: Step(
                    row["step"], row["rows_in"], Counter(row["reasons"]), row["changed"], Counter(row["changes"])
                )
                for row in rows
            }
        )

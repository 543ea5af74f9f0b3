"""The promotion rule: a candidate becomes champion only if it beats both the base model and the current champion."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)


def decide(
    metric: str,
    candidate: float,
    base: float,
    champion: float | None,
    min_improvement: float = 0.0,
) -> Decision:
    """Compare scores measured on the same test rows; ``champion`` is None when nothing has been promoted yet."""
    reasons = []
    beats_base = candidate > base + min_improvement
    reasons.append(
        f"{metric} {candidate:.2f} {'beats' if beats_base else 'does not beat'} the base model's {base:.2f}"
        + (f" by more than {min_improvement:.2f}" if min_improvement else "")
    )
    beats_champion = True
    if champion is None:
        reasons.append("no current champion")
    else:
        beats_champion = candidate > champion + min_improvement
        reasons.append(
            f"{metric} {candidate:.2f} {'beats' if beats_champion else 'does not beat'} the champion's {champion:.2f}"
        )
    return Decision(promote=beats_base and beats_champion, reasons=reasons)

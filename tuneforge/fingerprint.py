"""Content fingerprints: an artifact's directory name is the hash of everything that determines it, so an
unchanged input set finds the existing artifact instead of recomputing it."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def fingerprint(**inputs: Any) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]


def changed_inputs(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[str]:
    """What differs between two fingerprints' inputs, one line per changed leaf: ``training.lora_rank: 16 -> 8``."""
    changes = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        dotted = f"{prefix}{name}"
        if isinstance(old, dict) and isinstance(new, dict):
            changes += changed_inputs(old, new, f"{dotted}.")
        elif old != new:
            changes.append(f"{dotted}: {_shown(old)} -> {_shown(new)}")
    return changes


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str) if value is not None else "(absent)"
    return text if len(text) <= 60 else text[:57] + "..."

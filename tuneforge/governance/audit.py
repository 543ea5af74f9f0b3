"""The erasure audit log: append-only JSON lines of who asked for what and what was done, in hashes and counts."""

from __future__ import annotations

import getpass
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def append(path: Path, request: str, event: str, detail: dict[str, Any] | None = None) -> None:
    """One entry, flushed to disk before returning: a kill right after it leaves it recorded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"at": now(), "by": user(), "request": request, "event": event, "detail": detail or {}}
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

"""The erasure audit log: append-only JSON lines of who asked for what and what was done, in hashes and counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuneforge.audit_log import append_entry, now, read_entries, user

__all__ = ["append", "now", "read", "user"]


def append(path: Path, request: str, event: str, detail: dict[str, Any] | None = None) -> None:
    append_entry(path, {"at": now(), "by": user(), "request": request, "event": event, "detail": detail or {}})


def read(path: Path) -> list[dict[str, Any]]:
    return read_entries(path)

"""The digest of a file's bytes, read in blocks (files may be larger than memory)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """The hex digest of the file at ``path``; ``algorithm`` is any name ``hashlib.new`` accepts ("sha256", "md5")."""
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()

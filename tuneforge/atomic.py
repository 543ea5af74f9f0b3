"""Write a directory atomically: readers see the old version or the complete new one, never half of it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a staging directory beside ``target``; on success it replaces ``target``, on error it is removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".staging-{target.name}-"))
    try:
        yield staging
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


class AtomicFile:
    """A file written under a temporary name beside ``path``: ``commit`` renames it into place; leaving the
    ``with`` block without committing removes it, so ``path`` holds the old version or the complete new one."""

    def __init__(self, path: Path, mode: str = "w") -> None:
        if mode not in ("w", "wb"):
            raise ValueError(f"mode must be 'w' or 'wb', not {mode!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        self.path, self._tmp = path, Path(tmp)
        self._handle = os.fdopen(fd, mode, buffering=1 << 20, **({"encoding": "utf-8"} if mode == "w" else {}))
        self.write = self._handle.write
        self.writelines = self._handle.writelines

    def read_back(self) -> BinaryIO:
        """What was written so far, opened for reading (in binary)."""
        self._handle.flush()
        return self._tmp.open("rb")

    def commit(self) -> None:
        self._handle.close()
        os.replace(self._tmp, self.path)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()
        self._tmp.unlink(missing_ok=True)


def write_text_atomically(path: Path, text: str) -> Path:
    with AtomicFile(path) as handle:
        handle.write(text)
        handle.commit()
    return path

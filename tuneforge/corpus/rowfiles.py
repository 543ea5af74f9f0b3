"""Random access to rows of JSONL files by a global row number, holding only offsets in memory (10 bytes a row)."""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO


class RowFiles:
    """Rows of several JSONL files numbered 0, 1, ... in file order. ``scan`` (or ``append``) records offsets;
    ``read`` seeks back to any row afterwards."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = list(paths)
        self._file = array("H")
        self._offset = array("q")
        self._handles: dict[int, BinaryIO] = {}
        self.read = lru_cache(maxsize=4096)(self._read)

    def __len__(self) -> int:
        return len(self._offset)

    def append(self, file_index: int, offset: int) -> None:
        self._file.append(file_index)
        self._offset.append(offset)

    def scan(self) -> Iterator[tuple[int, str]]:
        """Every non-blank line of every file with its row number, recording offsets on the first pass."""
        recording = len(self) == 0
        row = 0
        for file_index, path in enumerate(self.paths):
            with path.open("rb") as handle:
                offset = 0
                for raw in handle:
                    if raw.strip():
                        if recording:
                            self.append(file_index, offset)
                        yield row, raw.decode("utf-8")
                        row += 1
                    offset += len(raw)

    def _read(self, row: int) -> dict[str, Any]:
        file_index = self._file[row]
        handle = self._handles.get(file_index)
        if handle is None:
            handle = self._handles[file_index] = self.paths[file_index].open("rb")
        handle.seek(self._offset[row])
        return json.loads(handle.readline())

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def __enter__(self) -> RowFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

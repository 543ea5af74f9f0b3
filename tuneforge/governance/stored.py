"""The text inside a stored file, whatever it is (compressed JSONL, CSV in latin-1, a workbook, Parquet, a DVC
object without a name), so that erased data is searched for everywhere it may lie."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

from tuneforge.corpus.compressed import DECOMPRESSION_ERRORS, CorruptStream, open_decompressed
from tuneforge.governance.matching import Needles

MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\x28\xb5\x2f\xfd": "zstd"}
# Model weights hold no text worth searching and are the largest files by far: skipped by extension.
BINARY_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".gguf", ".onnx", ".npy", ".ckpt"})


def text_of(data: bytes) -> str:
    """The readable text of a file's bytes: decompressed, unpacked (workbooks, Parquet) and decoded."""
    for magic, compression in MAGIC.items():
        if data.startswith(magic):
            try:
                with open_decompressed(_BytesPath(data), compression) as handle:
                    return text_of(handle.read())
            except (CorruptStream, *DECOMPRESSION_ERRORS):
                break
    if data.startswith(b"PK\x03\x04"):
        return _zip_text(data)
    if data.startswith(b"PAR1"):
        return _parquet_text(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


class _BytesPath:
    """Just enough of a Path for ``open_decompressed``: bytes in memory opened as a file."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def open(self, mode: str = "rb") -> io.BytesIO:
        return io.BytesIO(self._data)


def _zip_text(data: bytes) -> str:
    """A workbook's (or any zip's) members as text; shared strings and sheets are XML, searched as is."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "\n".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return data.decode("latin-1")


def _parquet_text(data: bytes) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(io.BytesIO(data)).to_pylist()
    except (pa.ArrowException, OSError, ValueError):
        return data.decode("latin-1")
    return "\n".join(json.dumps(row, ensure_ascii=False, default=str) for row in rows)


def files_under(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.suffix.lower() not in BINARY_SUFFIXES:
            yield path


def holding(paths: Iterator[Path], needles: Needles) -> Iterator[tuple[Path, list[str]]]:
    """``(path, kinds of needle found)`` for each file holding any."""
    for path in paths:
        kinds = needles.found_in(text_of(path.read_bytes()))
        if kinds:
            yield path, kinds

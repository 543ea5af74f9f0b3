"""Open a data file compressed with gzip (``.gz``), bzip2 (``.bz2``) or Zstandard (``.zst``) as a stream of its
decompressed bytes, never decompressing it whole.

A stream that is corrupt, cut short, or not in the format its name says raises ``CorruptStream`` on the read that
meets the damage, so a reader can report the file instead of crashing. python-zstandard's own readers return a
truncated stream's bytes without any error, so ``.zst`` files are read frame by frame here and a stream that ends
inside a frame is an error too.
"""

from __future__ import annotations

import bz2
import gzip
import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import zstandard

COMPRESSIONS = {".gz": "gzip", ".bz2": "bzip2", ".zst": "zstd"}
STREAM_BUFFER_BYTES = 1 << 16
# One decompress call's output is not bounded by python-zstandard; small input chunks bound it (a 4-byte RLE block
# expands to 128 KiB, so 1 KiB of input gives at most 32 MiB).
ZSTD_INPUT_BYTES = 1 << 10
DECOMPRESSION_ERRORS = (EOFError, zlib.error, zstandard.ZstdError, OSError)


class CorruptStream(Exception):
    """A compressed stream that cannot be decompressed: corrupt, truncated, or in another format."""


def compression_of(file_name: str) -> str | None:
    """``gzip`` for ``part-0.jsonl.gz``; None for a file whose extension is not a compression's."""
    return COMPRESSIONS.get(Path(file_name).suffix.lower())


@contextmanager
def open_decompressed(path: Path, compression: str | None) -> Iterator[BinaryIO]:
    """``path``'s bytes, decompressed when ``compression`` is one of ``COMPRESSIONS``' values."""
    with path.open("rb") as raw:
        if compression is None:
            yield raw
            return
        checked = _Checked(_decompressor(raw, compression), compression)
        with io.BufferedReader(checked, STREAM_BUFFER_BYTES) as stream:
            yield stream


def _decompressor(raw: BinaryIO, compression: str) -> io.RawIOBase | io.BufferedIOBase:
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if compression == "bzip2":
        return bz2.BZ2File(raw, mode="rb")
    if compression == "zstd":
        return _ZstdFrames(raw)
    raise ValueError(f"unknown compression {compression!r}")


class _Checked(io.RawIOBase):
    """Turns a decompressor's many ways of failing into ``CorruptStream``."""

    def __init__(self, stream: io.RawIOBase | io.BufferedIOBase, compression: str) -> None:
        self._stream, self._compression = stream, compression

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        try:
            return self._stream.readinto(buffer) or 0
        except DECOMPRESSION_ERRORS as error:
            if isinstance(error, OSError) and error.errno is not None:
                raise  # the disk or a permission failed, not the data
            raise CorruptStream(f"not a valid {self._compression} stream (corrupt or truncated): {error}") from error

    def close(self) -> None:
        self._stream.close()
        super().close()


class _ZstdFrames(io.RawIOBase):
    """The decompressed bytes of the Zstandard frames in ``raw``, one after another."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._frame = zstandard.ZstdDecompressor().decompressobj()
        self._inside_frame = False
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        while not self._pending:
            chunk = self._raw.read(ZSTD_INPUT_BYTES)
            if not chunk:
                if self._inside_frame:
                    raise zstandard.ZstdError("the stream ends inside a frame")
                return 0
            self._pending = memoryview(self._decompress(chunk))
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _decompress(self, data: bytes) -> bytes:
        output = []
        while data:
            output.append(self._frame.decompress(data))
            self._inside_frame = not self._frame.eof
            if self._inside_frame:
                break
            data = self._frame.unused_data  # the next frame's first bytes
            self._frame = zstandard.ZstdDecompressor().decompressobj()
        return b"".join(output)

"""Notice new and changed raw data: which sources under ``data/raw/`` need ingesting again.

Two plain steps, kept free of Dagster so they can be tested on their own (``stages/data/sensors.py`` wraps them):

- ``scan(raw_dir, now)`` stats every watched file of every source (cheap: no file is read);
- ``diff(previous, snapshot)`` compares that with the state saved at the last look, hashes only the files whose
  size or modification time moved, and says which sources changed, together with the state to save next.

What is watched: the sources ``list_sources`` reports (sub-directories of ``raw_dir`` holding at least one data
file), and in each every file ingestion may read, recursively, including ``source.yaml``. Ignored: names starting
with ``.``, temporary names (``*.tmp``, ``*.part``, ``*.partial``, ``*.crdownload``, ``*~``), documentation that
ingestion skips (README, LICENSE, ``*.md``...), symlinks leading outside ``raw_dir`` (ingestion refuses them) and
anything beside the source directories (such as DVC's ``<source>.dvc`` files).

The settle rule, for files still being written: a file whose modification time is less than ``settle_seconds``
old is *unsettled*, and a source holding an unsettled file is deferred as a whole (nothing of it is hashed,
reported or recorded) until a later look finds every one of its files settled. A writer that may pause for longer
than ``settle_seconds`` mid-file should write under a temporary name (``name.jsonl.part``) and rename when done:
a rename keeps the modification time, so the file is taken as soon as it is renamed and settled.

A content change is a file added, removed, or whose SHA-256 differs. A ``touch``, or a copy of identical bytes,
moves the modification time but not the hash, so it is recorded without reporting a change.

A source on object storage (``location:`` in its ``source.yaml``) is watched through a listing of its location: each
object's size and last-modified time stand where a file's stat does, and its ETag where a file's SHA-256 does (it is
in the listing, so nothing is downloaded, and it is compared at every look: S3 times have a one-second resolution).
An object uploaded again with the same bytes but in another way (multipart rather than whole) gets another ETag and
is taken for a change: one more ingestion, of the same content. A location that cannot be listed (the server down,
credentials expired) holds its source back, as an unsettled file does, and the state recorded for it is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tuneforge.corpus.objectstore import ObjectStore, ObjectStoreError
from tuneforge.corpus.readers import DOCUMENTATION_STEMS, DOCUMENTATION_SUFFIXES
from tuneforge.corpus.sources import SourceError, check_source_name, list_sources, load_source_config
from tuneforge.hashing import file_digest

DEFAULT_SETTLE_SECONDS = 60.0
# Hashing is what a look costs; above this many bytes per look, the remaining changed sources wait for the next
# look (each look still finishes at least one source, so large drops make progress without a sensor timeout).
DEFAULT_MAX_HASH_BYTES = 4 << 30
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", "~")
ETAG_PREFIX = "etag:"  # in FileState.sha256: an object's ETag stands for the hash of its bytes
STATE_VERSION = 1
__all__ = ["DEFAULT_MAX_HASH_BYTES", "DEFAULT_SETTLE_SECONDS", "Changes", "FileStat", "FileState", "Snapshot",
           "SourceChange", "WatchState", "WatchStateError", "diff", "is_ignored", "scan"]


class WatchStateError(ValueError):
    """A saved watch state (the sensor cursor) that cannot be read."""


# --- scanning -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime_ns: int
    etag: str | None = None  # an object's (a source on object storage): its content identity, no hashing needed


@dataclass(frozen=True)
class Snapshot:
    """What ``raw_dir`` holds at one moment: per source, each watched file (path relative to the source)."""

    raw_dir: Path
    now: float
    files: dict[str, dict[str, FileStat]]
    unsettled: dict[str, list[str]] = field(default_factory=dict)  # source -> files younger than the settle time
    invalid: dict[str, str] = field(default_factory=dict)  # directory name -> why it cannot be a source
    unreachable: dict[str, str] = field(default_factory=dict)  # source -> why its location could not be listed

    def settled_sources(self) -> list[str]:
        return sorted(source for source in self.files if source not in self.unsettled)


def is_ignored(name: str) -> bool:
    """Whether a file name is never watched: hidden, temporary, or documentation that ingestion skips."""
    lowered = name.lower()
    return (name.startswith(".") or lowered.endswith(IGNORED_SUFFIXES)
            or name.split(".")[0].upper() in DOCUMENTATION_STEMS
            or Path(lowered).suffix in DOCUMENTATION_SUFFIXES)


def scan(raw_dir: Path, now: float, settle_seconds: float = DEFAULT_SETTLE_SECONDS) -> Snapshot:
    """Stat every watched file of every source under ``raw_dir``; ``now`` is the time (``time.time()``) the
    settle rule counts from."""
    if settle_seconds < 0:
        raise ValueError(f"settle_seconds must be 0 or more, got {settle_seconds}")
    snapshot = Snapshot(raw_dir=raw_dir, now=now, files={})
    settle_ns = int(settle_seconds * 1e9)
    now_ns = int(now * 1e9)
    raw_root = Path(os.path.realpath(raw_dir))
    for source in list_sources(raw_dir):
        try:
            check_source_name(source)
        except SourceError as error:
            snapshot.invalid[source] = str(error)
            continue
        files = dict(_watched_files(raw_dir / source, raw_root))
        try:
            files |= dict(_watched_objects(raw_dir / source))
        except ObjectStoreError as error:
            snapshot.unreachable[source] = str(error)
            continue
        if not files:
            continue
        snapshot.files[source] = files
        young = sorted(name for name, stat in files.items() if now_ns - stat.mtime_ns < settle_ns)
        if young:
            snapshot.unsettled[source] = young
    return snapshot


def _watched_files(source_dir: Path, raw_root: Path) -> Iterator[tuple[str, FileStat]]:
    visited = {os.path.realpath(source_dir)}
    pending = [(source_dir, "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            with os.scandir(directory) as entries:
                listed = list(entries)
        except OSError:
            continue  # vanished or unreadable: ingestion reports an unreadable directory
        for entry in listed:
            if is_ignored(entry.name):
                continue
            name = prefix + entry.name
            if entry.is_symlink() and not Path(os.path.realpath(entry.path)).is_relative_to(raw_root):
                continue
            try:
                if entry.is_dir():
                    real = os.path.realpath(entry.path)
                    if real not in visited:
                        visited.add(real)
                        pending.append((Path(entry.path), name + "/"))
                elif entry.is_file():
                    stat = entry.stat()  # follows a symlink to its target
                    yield name, FileStat(stat.st_size, stat.st_mtime_ns)
            except OSError:
                continue  # removed while scanning, or a broken symlink


def _watched_objects(source_dir: Path) -> Iterator[tuple[str, FileStat]]:
    """The objects under the source's location, if its ``source.yaml`` names one (a bad one is ingestion's to
    report: its files on disk are still watched)."""
    try:
        config = load_source_config(source_dir)
    except SourceError:
        return
    if config.location is None:
        return
    store = ObjectStore(config.location, config.storage_options)
    for info in store.walk(keep=lambda base: not is_ignored(base)):
        if info.name != "source.yaml":  # not read by ingestion; the name is the local source.yaml's
            yield info.name, FileStat(info.size, info.mtime_ns, info.etag)


# --- state ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileState:
    size: int
    mtime_ns: int
    sha256: str


@dataclass
class WatchState:
    """What the last look recorded: each source's files, and how many ingestions were requested per source (part
    of the run key, so that going back to an earlier content still requests a run)."""

    files: dict[str, dict[str, FileState]] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        files = {source: {name: [state.size, state.mtime_ns, state.sha256] for name, state in sorted(entries.items())}
                 for source, entries in sorted(self.files.items())}
        return json.dumps({"version": STATE_VERSION, "files": files, "runs": dict(sorted(self.runs.items()))},
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> WatchState:
        """The state saved by ``to_json``; an empty state for no text (the first look)."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {STATE_VERSION}")
            files = {str(source): {str(name): FileState(int(size), int(mtime_ns), str(digest))
                                   for name, (size, mtime_ns, digest) in entries.items()}
                     for source, entries in data["files"].items()}
            runs = {str(source): int(count) for source, count in data["runs"].items()}
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise WatchStateError(
                f"The saved raw-data watch state (sensor cursor) is not readable ({type(error).__name__}: {error}); "
                f"it starts {text[:80]!r}. Reset the sensor's cursor to start again from the files on disk."
            ) from error
        return cls(files=files, runs=runs)


# --- diffing --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceChange:
    """A source whose content changed since the last look: it needs ingesting."""

    source: str
    added: tuple[str, ...]
    modified: tuple[str, ...]
    removed: tuple[str, ...]
    digest: str  # SHA-256 over the source's file names and hashes: its content state
    run_number: int  # the how-manyth ingestion requested for this source

    @property
    def run_key(self) -> str:
        """The same for the same content reached in the same way, so a repeated request is skipped."""
        return f"{self.source}:{self.run_number}:{self.digest[:16]}"

    def describe(self, most: int = 5) -> str:
        """``news: added a.jsonl; removed b.csv``, naming at most ``most`` files per kind."""
        parts = [f"{label} {_some(names, most)}" for label, names in
                 (("added", self.added), ("modified", self.modified), ("removed", self.removed)) if names]
        return f"{self.source}: {'; '.join(parts)}"


def _some(names: tuple[str, ...], most: int) -> str:
    shown = ", ".join(names[:most])
    return f"{shown} and {len(names) - most} more" if len(names) > most else shown


@dataclass(frozen=True)
class Changes:
    changed: list[SourceChange]
    deferred: dict[str, str]  # source -> why it waits for a later look
    vanished: list[str]  # sources recorded before that are gone (no directory, or no data file left)
    invalid: dict[str, str]
    state: WatchState  # what to save for the next look


def diff(
    previous: WatchState,
    snapshot: Snapshot,
    *,
    up_to_date: Collection[str] = (),
    max_hash_bytes: int = DEFAULT_MAX_HASH_BYTES,
    hash_file: Callable[[Path], str] = file_digest,
) -> Changes:
    """Which sources of ``snapshot`` changed since ``previous``.

    ``up_to_date`` names sources already ingested from their current files although ``previous`` does not record
    them (the sensor passes the materialized partitions at its first look): they are recorded without a change.
    """
    if max_hash_bytes <= 0:
        raise ValueError(f"max_hash_bytes must be positive, got {max_hash_bytes}")
    state = WatchState(files={}, runs=dict(previous.runs))
    changed: list[SourceChange] = []
    deferred = {source: f"still being written (modified less than the settle time ago): {_some(tuple(names), 5)}"
                for source, names in snapshot.unsettled.items()}
    deferred |= {source: f"its location could not be listed ({why})" for source, why in snapshot.unreachable.items()}
    budget = max_hash_bytes

    def defer(source: str, why: str) -> None:
        deferred[source] = why
        if source in previous.files:  # keep what was recorded, so the change is still seen once it settles
            state.files[source] = previous.files[source]

    for source in sorted(snapshot.unreachable):
        defer(source, deferred[source])
    for source in sorted(snapshot.files):
        before = previous.files.get(source, {})
        if source in deferred:
            defer(source, deferred[source])
            continue
        current = snapshot.files[source]
        to_hash = {name: stat for name, stat in current.items()
                   if stat.etag is None and not _same_stat(before.get(name), stat)}
        cost = sum(stat.size for stat in to_hash.values())
        if cost > budget and budget < max_hash_bytes:  # the first source hashed in a look always goes through
            defer(source, f"{cost} bytes to hash, over this look's remaining budget of {budget}")
            continue
        try:
            hashes = {name: hash_file(snapshot.raw_dir / source / name) for name in to_hash}
        except OSError as error:
            defer(source, f"a file changed while being read ({error})")
            continue
        budget -= cost
        hashes |= {name: ETAG_PREFIX + stat.etag for name, stat in current.items() if stat.etag is not None}
        entries = {name: FileState(stat.size, stat.mtime_ns, hashes[name]) if name in hashes else before[name]
                   for name, stat in sorted(current.items())}
        state.files[source] = entries
        if source not in previous.files and source in up_to_date:
            continue
        added = tuple(name for name in entries if name not in before)
        modified = tuple(name for name in entries if name in before and entries[name].sha256 != before[name].sha256)
        removed = tuple(sorted(name for name in before if name not in entries))
        if added or modified or removed:
            state.runs[source] = state.runs.get(source, 0) + 1
            changed.append(SourceChange(source, added, modified, removed, _content_digest(entries),
                                        state.runs[source]))
    vanished = sorted(source for source in previous.files
                      if source not in snapshot.files and source not in snapshot.unreachable)
    return Changes(changed, dict(sorted(deferred.items())), vanished, dict(snapshot.invalid), state)


def _same_stat(before: FileState | None, stat: FileStat) -> bool:
    return before is not None and before.size == stat.size and before.mtime_ns == stat.mtime_ns


def _content_digest(entries: dict[str, FileState]) -> str:
    digest = hashlib.sha256()
    for name, state in sorted(entries.items()):
        digest.update(f"{name}\0{state.sha256}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


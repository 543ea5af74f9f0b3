"""The objects of a DVC repository's cache and of its default remote: which hold erased data, and purging them.

DVC cannot remove an object from its history by itself (``dvc gc`` keeps or drops whole workspace states). Objects
are addressed by content (``files/md5/ab/cdef...``, ``.dir`` objects listing a directory's files), so an object
holding erased records is found by reading it, a ``.dir`` object by the objects it lists, and each is deleted from
the cache and the remote through DVC's own object databases (any remote type DVC supports).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from tuneforge.governance.matching import Needles
from tuneforge.governance.stored import text_of


@dataclass(frozen=True)
class StoredObject:
    store: str  # "cache" or "remote <name>"
    oid: str  # md5, with ".dir" for a directory listing


@contextmanager
def _odbs(root: Path) -> Iterator[list[tuple[str, object]]]:
    """(label, object database) for the local cache and, when configured, the default remote."""
    from dvc.repo import Repo

    if not (root / ".dvc").is_dir():
        yield []
        return
    (root / ".dvc" / "tmp").mkdir(parents=True, exist_ok=True)
    # The same lock as the DvcRepository resource: no Dagster run commits while objects are read or removed.
    with FileLock(root / ".dvc" / "tmp" / "tuneforge.lock"), Repo(str(root)) as repo:
        stores: list[tuple[str, object]] = [("cache", repo.cache.local)]
        remote = repo.config["core"].get("remote")
        if remote:
            stores.append((f"remote {remote}", repo.cloud.get_remote_odb(remote)))
        yield stores


def _read(odb, oid: str) -> bytes:
    with odb.fs.open(odb.oid_to_path(oid), mode="rb") as handle:
        return handle.read()


def objects_holding(root: Path, needles: Needles) -> list[StoredObject]:
    """Every object in the cache and the default remote that holds erased data, and every ``.dir`` object that
    lists one (a dataset version that included it)."""
    found: list[StoredObject] = []
    with _odbs(root) as stores:
        for label, odb in stores:
            oids = sorted(odb.all())
            holding = {oid for oid in oids if not oid.endswith(".dir") and needles.found_in(text_of(_read(odb, oid)))}
            for oid in oids:
                if oid.endswith(".dir"):
                    listing = _read(odb, oid)
                    entries = json.loads(listing)
                    if any(entry.get("md5") in holding for entry in entries) or needles.found_in(listing.decode()):
                        holding.add(oid)
            found += [StoredObject(label, oid) for oid in sorted(holding)]
    return found


def remove_objects(root: Path, oids: set[str]) -> int:
    """Delete the objects from the cache and the default remote; returns how many were deleted (0 on a rerun)."""
    removed = 0
    with _odbs(root) as stores:
        for _, odb in stores:
            for oid in sorted(oids):
                path = odb.oid_to_path(oid)
                if odb.fs.exists(path):
                    odb.fs.remove(path)
                    removed += 1
    return removed


def remaining(root: Path, oids: set[str]) -> list[StoredObject]:
    with _odbs(root) as stores:
        return [StoredObject(label, oid) for label, odb in stores for oid in sorted(oids)
                if odb.fs.exists(odb.oid_to_path(oid))]

"""The request log: every answered request, its personal data redacted, appended to one JSONL file per day
(``logs/requests/YYYY-MM-DD.jsonl``, UTC).

Files, not MLflow traces: an append is cheap and cannot fail a request for a database's sake, a day's file is the
unit the daily monitoring partition reads, and erasure (rewrite one file) stays simple. Recording never slows or
fails a request: ``record`` puts the entry on a bounded queue and returns; a writer thread redacts (the cleaning
step's redactor, on prompts, documents and outputs) and appends. When the queue is full the entry is dropped and
counted (``dropped``, and ``tuneforge_request_log_dropped_total``).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("tuneforge.serving")
REDACTED_FIELDS = ("prompt", "document", "output")
RECENT = 50_000  # written entries kept in memory, so feedback on a recent request reads no file
FLUSH_WAIT_SECONDS = 5.0  # feedback on a request still queued waits this long for it to be written


class Redacts(Protocol):
    def redact_many(self, texts: list[str]) -> list[tuple[str, Any]]: ...


def day_of(timestamp: str) -> str:
    return timestamp[:10]


class RequestLog:
    def __init__(self, directory: Path, redactor: Redacts | None, max_queue: int = 10_000) -> None:
        self.directory = directory
        self.redactor = redactor
        self.dropped = 0
        self.written = 0
        self._queue: queue.Queue[dict | None] = queue.Queue(maxsize=max_queue)
        self._recent: OrderedDict[str, dict] = OrderedDict()
        self._pending: set[str] = set()  # queued, not yet written
        self._lock = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="tuneforge-request-log", daemon=True)
        self._thread.start()

    def record(self, entry: dict) -> bool:
        """Queue ``entry`` (it needs ``request_id`` and ``time``); False when the queue was full and it was dropped."""
        with self._lock:
            try:
                self._queue.put_nowait(entry)
            except queue.Full:
                self.dropped += 1
                return False
            self._pending.add(entry["request_id"])
        return True

    def find(self, request_id: str) -> dict | None:
        """The logged (redacted) entry of ``request_id``: recent ones from memory, older ones from the files."""
        with self._lock:
            self._lock.wait_for(lambda: request_id not in self._pending, timeout=FLUSH_WAIT_SECONDS)
            if request_id in self._recent:
                return self._recent[request_id]
        for entry in self._written():
            if entry.get("request_id") == request_id:
                return entry
        return None

    def _written(self) -> Iterator[dict]:
        """Every logged entry, newest day first."""
        for path in sorted(self.directory.glob("*.jsonl"), reverse=True):
            with path.open() as lines:
                yield from (json.loads(line) for line in lines if line.strip())

    def close(self) -> None:
        """Write what is queued, then stop."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            try:
                self._write(self._redacted(entry))
            except Exception as error:  # noqa: BLE001 - a failed write loses one entry, never the server
                with self._lock:
                    self.dropped += 1
                log.warning("request log: could not write request %s: %s", entry.get("request_id"), error)
            finally:
                with self._lock:
                    self._pending.discard(entry["request_id"])
                    self._lock.notify_all()

    def _redacted(self, entry: dict) -> dict:
        fields = [name for name in REDACTED_FIELDS if isinstance(entry.get(name), str)]
        if self.redactor is None or not fields:
            return entry
        redacted = self.redactor.redact_many([entry[name] for name in fields])
        return {**entry, **{name: text for name, (text, _) in zip(fields, redacted, strict=True)}}

    def _write(self, entry: dict) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / f"{day_of(entry['time'])}.jsonl").open("a") as out:
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
        with self._lock:
            self.written += 1
            self._recent[entry["request_id"]] = entry
            while len(self._recent) > RECENT:
                self._recent.popitem(last=False)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")

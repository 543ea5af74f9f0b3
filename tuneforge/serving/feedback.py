"""User feedback on served answers: ratings and corrections, kept per day (``logs/feedback/YYYY-MM-DD.jsonl``), and
corrections turned into training data.

A correction to a request made with an instruction model id (``<name>:<source>``) becomes a row of the raw source
``feedback-<source>`` (``data/raw/feedback-<source>/YYYY-MM-DD.jsonl``): the request's document and the corrected
summary, both redacted, with the request id as the row's id, and the source's instruction in its ``source.yaml``. From
there it goes through the same ingestion, cleaning, validation and DVC versioning as any source, and its ids lead
back to the request log. A correction to plain chat is kept with the feedback but trains nothing: it has no
instruction and document to learn from.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import yaml

from tuneforge.serving.request_log import Redacts, day_of, now

FEEDBACK_SOURCE_PREFIX = "feedback-"


@dataclass(frozen=True)
class FeedbackResult:
    request_id: str
    training_source: str | None  # the raw source the correction was added to, when it was
    why_not: str | None = None  # why a correction trains nothing


class FeedbackStore:
    def __init__(self, log_dir: Path, raw_dir: Path, redactor: Redacts | None) -> None:
        self.log_dir, self.raw_dir, self.redactor = log_dir, raw_dir, redactor
        self._lock = threading.Lock()

    def add(self, request: dict, rating: int | None, correction: str | None, comment: str | None) -> FeedbackResult:
        """Record feedback on the logged ``request``; a correction of an instruction model's answer becomes a row."""
        correction, comment = self._redact(correction), self._redact(comment)
        at = now()
        entry = {"request_id": request["request_id"], "time": at, "rating": rating, "correction": correction,
                 "comment": comment, "model": request.get("model"), "version": request.get("version"),
                 "adapter": request.get("adapter")}
        source, why_not = None, None
        if correction is not None:
            if request.get("source") and request.get("document"):
                source = FEEDBACK_SOURCE_PREFIX + request["source"]
            else:
                why_not = ("a correction trains only answers of an instruction model (<name>:<source>); this "
                           f"request asked {request.get('model')!r}")
        with self._lock:
            _append(self.log_dir / f"{day_of(at)}.jsonl", entry | {"training_source": source})
            if source is not None:
                self._add_training_row(source, request, correction, at)
        return FeedbackResult(request["request_id"], source, why_not)

    def _add_training_row(self, source: str, request: dict, correction: str, at: str) -> None:
        directory = self.raw_dir / source
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "source.yaml"
        if not config.exists():
            config.write_text(yaml.safe_dump({"instruction": request["instruction"]}, sort_keys=False))
        row = {"id": request["request_id"], "document": request["document"], "summary": correction,
               "model_version": request.get("version"), "answered": request.get("output")}
        _append(directory / f"{day_of(at)}.jsonl", row)

    def _redact(self, text: str | None) -> str | None:
        if text is None or self.redactor is None:
            return text
        return self.redactor.redact_many([text])[0][0]


def _append(path: Path, entry: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps(entry, ensure_ascii=False) + "\n")

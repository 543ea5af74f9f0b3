"""The request log on its own: a full queue drops and counts instead of blocking, a failing redaction loses one entry
and not the writer, and feedback finds an entry still being written."""

import json
import threading
import time

from tuneforge.serving.request_log import RequestLog


class GatedRedactor:
    """Redacts (upper-cases) only once ``opened`` is set, so the writer can be held busy."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.calls = 0

    def redact_many(self, texts):
        self.calls += 1
        self.opened.wait(timeout=30)
        if any("explode" in text for text in texts):
            raise RuntimeError("redactor failed")
        return [(text.upper(), {}) for text in texts]


def _entry(number: int, output: str = "an answer") -> dict:
    return {"request_id": f"r{number}", "time": "2026-12-01T10:00:00.000+00:00", "prompt": f"prompt {number}",
            "output": output}


def test_a_full_queue_drops_and_counts_entries_without_blocking(tmp_path):
    redactor = GatedRedactor()
    log = RequestLog(tmp_path, redactor, max_queue=2)
    assert log.record(_entry(0))
    while redactor.calls == 0:  # the writer has taken it and is held in the redactor
        time.sleep(0.01)
    accepted = [True] + [log.record(_entry(n)) for n in range(1, 8)]
    # the queue holds two more; the other five are dropped at once
    assert accepted == [True, True, True] + [False] * 5 and log.dropped == 5
    redactor.opened.set()
    log.close()
    lines = [json.loads(line) for line in (tmp_path / "2026-12-01.jsonl").read_text().splitlines()]
    assert len(lines) == log.written == sum(accepted)
    assert all(entry["prompt"].startswith("PROMPT") for entry in lines)  # redacted before it was written


def test_a_failed_redaction_loses_that_entry_only(tmp_path):
    redactor = GatedRedactor()
    redactor.opened.set()
    log = RequestLog(tmp_path, redactor)
    log.record(_entry(1, output="explode"))
    log.record(_entry(2))
    assert log.find("r2")["output"] == "AN ANSWER"  # waits for the queued entry to be written
    log.close()
    assert log.dropped == 1 and log.written == 1 and log.find("r1") is None


def test_older_entries_are_found_in_the_files(tmp_path):
    log = RequestLog(tmp_path, None)
    log.record(_entry(1))
    log.close()
    reopened = RequestLog(tmp_path, None)
    assert reopened.find("r1")["prompt"] == "prompt 1" and reopened.find("r9") is None
    reopened.close()

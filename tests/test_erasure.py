"""``tuneforge erase`` on a whole lifecycle: a person's records seeded into a source, trained on and promoted, then
erased by value; absence is proven byte for byte everywhere the data went. A second erasure is killed midway and
completed by rerunning the same command."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resources.registry import ModelRegistry
from tuneforge.corpus import stages as corpus_stages
from tuneforge.corpus.aclsum import place_aclsum
from tuneforge.governance import audit
from tuneforge.layout import Layout
from tuneforge.profiles import load_profile
from tuneforge.registry import ERASED_TAG

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

NAME, EMAIL = "Marisol Quenby-Hart", "marisol.quenby@example.org"
VALUES = (NAME, EMAIL)
# Everywhere the records may have gone: raw and derived data, DVC's cache and remote, MLflow's artifacts, models,
# reports and the server's logs.
PLACES = ("data", ".dvc/cache", ".dvcstore", "mlruns/artifacts", "models", "reports", "logs")


def tuneforge(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).with_name("tuneforge")), *args], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=timeout)


def _seed(workspace: Path) -> list[str]:
    """The embedded corpus's three sources, two papers of one carrying the person's name and e-mail address; and
    the server's logs. Returns the seeded lines."""
    source = place_aclsum(workspace / "data" / "raw", limit=40)["aclsum-approach"]
    lines = source.read_text().splitlines(keepends=True)
    for index in (5, 30):
        row = json.loads(lines[index])
        row["document"] += f" Correspondence to {NAME} ({EMAIL})."
        lines[index] = json.dumps(row) + "\n"
    source.write_text("".join(lines))
    logs = workspace / "logs" / "requests"
    logs.mkdir(parents=True)
    (logs / "2026-12-01.jsonl").write_text(json.dumps({"prompt": f"Summarize the note by {NAME}"}) + "\n"
                                           + json.dumps({"prompt": "Summarize this"}) + "\n")
    return [lines[5], lines[30]]


def _holding(workspace: Path) -> list[str]:
    """Files whose bytes hold a value, as written or as JSON escapes it; searched without tuneforge's code."""
    forms = {form.encode() for value in VALUES for form in (value, json.dumps(value)[1:-1])}
    found = []
    for place in PLACES:
        for path in (workspace / place).rglob("*"):
            if path.is_file() and not path.is_symlink() and any(form in path.read_bytes() for form in forms):
                found.append(str(path.relative_to(workspace)))
    return found


def _trained(workspace: Path, patch: pytest.MonkeyPatch) -> tuple[str, list[str]]:
    patch.setenv("TUNEFORGE_PRECISION", "fp32")  # the smoke model's candidate beats the base model in fp32
    seeded = _seed(workspace)
    done = tuneforge("run")
    assert done.returncode == 0, done.stderr[-3000:]
    champion = ModelRegistry().open().champion()
    assert champion is not None, done.stdout[-2000:]
    assert _holding(workspace), "the seeded values must have reached the stores for the test to mean anything"
    return champion.version, seeded


def test_erase_by_value_removes_the_records_everywhere_retrains_and_proves_it(workspace, monkeypatch):
    trained_on_them, seeded = _trained(workspace, monkeypatch)

    dry = tuneforge("erase", "--value", EMAIL, "--value", NAME)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "dry run" in dry.stdout and "raw records: 2 (2 by value)" in dry.stdout
    assert f"registry version {trained_on_them}:" in dry.stdout and "logs/requests/2026-12-01.jsonl" in dry.stdout
    assert _holding(workspace), "a dry run changes nothing"

    done = tuneforge("erase", "--value", EMAIL, "--value", NAME, "--apply")
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    assert _holding(workspace) == []

    registry = ModelRegistry().open()
    [plan_file] = Layout(workspace).erasure_requests.glob("*.json")
    request = plan_file.stem
    champion = registry.champion()
    assert champion is not None and champion.version != trained_on_them, done.stdout[-2000:]
    assert registry.version(trained_on_them).tags[ERASED_TAG] == request
    assert champion.tags["dataset_version"] != registry.version(trained_on_them).tags["dataset_version"]
    card = (Path(champion.export_dir) / "README.md").read_text()
    assert f"Erasure requests honoured (records removed before training, `tuneforge erase`): `{request}`" in card
    entries = audit.read(Layout(workspace).erasure_log)
    assert [e["event"] for e in entries][-1] == "done" and {e["by"] for e in entries}
    audit_text = Layout(workspace).erasure_log.read_text() + plan_file.read_text()
    assert not any(value in audit_text for value in VALUES), "the audit trail keeps hashes, not the values"
    status = tuneforge("erase", "--status")
    assert f"{request}  done" in status.stdout and f"champion version {champion.version}" in status.stdout

    # The same file dropped again: ingestion skips the tombstoned records.
    layout = Layout(workspace)
    (layout.raw / "aclsum-approach" / "again.jsonl").write_text("".join(seeded))
    report = corpus_stages.ingest(layout, "aclsum-approach", load_profile("smoke"))
    assert report.figures["erased"] == 2 and report.figures["erasures"] == [request]
    assert not any(value in (layout.ingested / "aclsum-approach.jsonl").read_text() for value in VALUES)


def test_an_erasure_killed_midway_is_finished_by_rerunning_the_same_command(workspace, monkeypatch):
    _trained(workspace, monkeypatch)
    command = [str(Path(sys.executable).with_name("tuneforge")), "erase", "--value", EMAIL, "--value", NAME,
               "--apply"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy(),
                               start_new_session=True)
    log = Layout(workspace).erasure_log
    deadline = time.monotonic() + 300
    while not any(e["event"] == "step files" for e in audit.read(log)):
        assert process.poll() is None, "the erasure ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # while it retrains
    process.wait()

    status = tuneforge("erase", "--status")
    assert "applying" in status.stdout and "steps left: retrain, dvc, verify" in status.stdout
    resumed = tuneforge(*command[1:])
    assert resumed.returncode == 0, resumed.stderr[-3000:] + resumed.stdout[-3000:]
    assert "Resuming erasure request" in resumed.stdout
    assert _holding(workspace) == []
    events = [e["event"] for e in audit.read(log)]
    assert "resume" in events and events[-1] == "done"
    assert len(list(Layout(workspace).erasure_requests.glob("*.json"))) == 1, "one request, completed"

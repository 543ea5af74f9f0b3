"""``tuneforge run``: the whole pipeline on a user's own source (compressed, other field names), nothing embedded."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tuneforge.corpus.aclsum import papers

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def tuneforge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).with_name("tuneforge")), *args], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=900)


def test_run_trains_on_your_own_source_with_only_a_field_mapping(workspace):
    source = workspace / "data" / "raw" / "findings"
    source.mkdir(parents=True)
    with gzip.open(source / "part-0.jsonl.gz", "wt", encoding="utf-8") as handle:
        for paper in papers()[:48]:
            text = " ".join(s for section in ("abstract", "introduction") for s in paper["sentences"][section])
            handle.write(json.dumps({"paper": {"id": paper["id"], "text": text},
                                     "tldr": paper["summary"]["outcome"]}) + "\n")
    (source / "source.yaml").write_text("fields:\n  document: paper.text\n  summary: tldr\n  id: paper.id\n")

    done = tuneforge("run")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cleaned_corpus[findings]: 48 read, 0 quarantined" in done.stdout
    assert "Champion: version" in done.stdout or "not promoted" in done.stdout
    sources = sorted(p.name for p in (workspace / "data" / "raw").iterdir() if p.is_dir())
    assert sources == ["findings"], "nothing embedded is placed"
    assert list((workspace / "models" / "adapters").iterdir()), "no adapter was trained"


def test_run_says_what_is_missing(workspace):
    empty = tuneforge("run")
    assert empty.returncode == 1 and "data/raw" in empty.stderr
    unknown = tuneforge("run", "--experiment", "nope")
    assert unknown.returncode == 1 and "experiment 'nope' is not in" in unknown.stderr and "baseline" in unknown.stderr

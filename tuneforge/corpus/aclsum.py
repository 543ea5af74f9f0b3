"""Place the embedded ACLSum corpus (from the ``aclsum`` wheel) under ``data/raw/`` as three sources.

Each aspect (challenge, approach, outcome) becomes a source, the way a user would drop files: one JSONL file per
source with ``id``, ``group`` (the paper, so its three rows share a split), ``document`` and ``summary``.
"""

from __future__ import annotations

import json
from pathlib import Path

from tuneforge.corpus.records import write_jsonl
from tuneforge.embedded import package_dir

ASPECTS = ("challenge", "approach", "outcome")
SECTIONS = ("abstract", "introduction", "conclusion")


def papers() -> list[dict]:
    """Every ACLSum paper of the installed wheel (all splits), sorted by id."""
    dataset = package_dir("aclsum", "aclsum") / "dataset"
    papers = []
    for split in ("train", "val", "test"):
        with (dataset / f"{split}.jsonl").open(encoding="utf-8") as handle:
            papers.extend(json.loads(line) for line in handle if line.strip())
    return sorted(papers, key=lambda paper: paper["id"])


def place_aclsum(raw_dir: Path, limit: int | None = None, overwrite: bool = False) -> dict[str, Path]:
    """Write ``<raw_dir>/aclsum-<aspect>/aclsum.jsonl`` (the first ``limit`` papers by id, or all); existing files
    are kept unless ``overwrite``."""
    selected = None
    written = {}
    for aspect in ASPECTS:
        path = raw_dir / f"aclsum-{aspect}" / "aclsum.jsonl"
        written[f"aclsum-{aspect}"] = path
        if path.exists() and not overwrite:
            continue
        selected = selected or papers()[:limit]
        rows = (
            {
                "id": paper["id"],
                "group": paper["id"],
                "title": paper["title"],
                "document": " ".join(s for section in SECTIONS for s in paper["sentences"].get(section, [])),
                "summary": paper["summary"][aspect],
            }
            for paper in selected
        )
        write_jsonl(path, rows)
    return written

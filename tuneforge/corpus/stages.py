"""File-to-file data stages. Dagster assets and ``dvc.yaml`` (through ``python -m tuneforge.corpus``) both call
these, so ``dvc repro`` rebuilds exactly what a Dagster run wrote."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuneforge.corpus.clean import clean_examples
from tuneforge.corpus.ingest import SourceError, ingest_source, require_sources
from tuneforge.corpus.records import SPLITS, read_examples, write_jsonl
from tuneforge.corpus.split import assign_splits
from tuneforge.layout import Layout
from tuneforge.profiles import Profile


@dataclass
class StageReport:
    """What a stage wrote and the figures worth showing."""

    outputs: list[Path]
    figures: dict[str, Any]


def ingest(layout: Layout, source: str, max_bad_share: float = 0.1) -> StageReport:
    result = ingest_source(layout.raw / source, max_bad_share=max_bad_share)
    rows_path = layout.ingested / f"{source}.jsonl"
    quarantine_path = layout.ingested / f"{source}.quarantine.jsonl"
    write_jsonl(rows_path, result.examples)
    write_jsonl(quarantine_path, (item.as_dict() for item in result.quarantined))
    return StageReport(
        outputs=[rows_path, quarantine_path],
        figures={"rows": len(result.examples), "quarantined": len(result.quarantined), "files": result.files},
    )


def clean(layout: Layout, source: str, profile: Profile) -> StageReport:
    rows_path = layout.ingested / f"{source}.jsonl"
    if not rows_path.exists():
        raise SourceError(f"{rows_path} is missing: materialize the raw corpus of source {source!r} first.")
    result = clean_examples(read_examples(rows_path), profile.cleaning)
    removed_share = 1 - result.funnel.rows_out / max(result.funnel.rows_in, 1)
    if removed_share > profile.cleaning.max_rejected_share:
        worst = max(result.funnel.removed.items(), key=lambda item: item[1])
        raise SourceError(
            f"Cleaning source {source!r} removed {removed_share:.0%} of its rows (limit "
            f"{profile.cleaning.max_rejected_share:.0%}); most removed by {worst[0]!r} ({worst[1]} rows). "
            "Check the source's field mapping or adjust the cleaning thresholds in the profile."
        )
    kept_path = layout.cleaned / f"{source}.jsonl"
    rejected_path = layout.cleaned / f"{source}.rejected.jsonl"
    write_jsonl(kept_path, result.kept)
    write_jsonl(rejected_path, ({**row.model_dump(), "reason": reason} for row, reason in result.rejected))
    return StageReport(
        outputs=[kept_path, rejected_path],
        figures={"rows_in": result.funnel.rows_in, "rows_out": result.funnel.rows_out,
                 "funnel": result.funnel.as_rows()},
    )


def curate(layout: Layout, sources: list[str], profile: Profile) -> StageReport:
    missing = [s for s in sources if not (layout.cleaned / f"{s}.jsonl").exists()]
    if missing:
        raise SourceError(f"No cleaned corpus for source(s) {missing}: materialize cleaned_corpus for them first.")
    examples = [row for source in sources for row in read_examples(layout.cleaned / f"{source}.jsonl")]
    splits = assign_splits(examples, profile.split)
    outputs = []
    for name in SPLITS:
        path = layout.curated / f"{name}.jsonl"
        write_jsonl(path, splits[name])
        outputs.append(path)
    sizes = {name: len(rows) for name, rows in splits.items()}
    per_source = {
        name: {source: sum(row.source == source for row in rows) for source in sources}
        for name, rows in splits.items()
    }
    manifest = {"sources": sources, "split": profile.split.model_dump(), "sizes": sizes, "per_source": per_source}
    manifest_path = layout.curated / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return StageReport(outputs=[*outputs, manifest_path], figures={"sizes": sizes, "per_source": per_source})


def all_sources(layout: Layout) -> list[str]:
    return require_sources(layout.raw)

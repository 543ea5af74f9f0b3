"""File-to-file data stages. Dagster assets and ``dvc.yaml`` (through ``python -m tuneforge.corpus``) both call
these, so ``dvc repro`` rebuilds exactly what a Dagster run wrote.

Each stage also writes a small JSON report beside its outputs (``<source>.report.json``, ``manifest.json``): the
figures travel with the data version, and the assets show them as metadata.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneforge.atomic import write_text_atomically
from tuneforge.corpus.clean import clean_file
from tuneforge.corpus.curate import MANIFEST_FILE, REMOVED_FILE, curate_sources
from tuneforge.corpus.engines import EngineConfig
from tuneforge.corpus.ingest import ingest_source
from tuneforge.corpus.lengths import LengthBounds
from tuneforge.corpus.records import SPLITS
from tuneforge.corpus.sources import SourceError, check_source_name, require_sources, source_cleaning
from tuneforge.governance.tombstones import Tombstones
from tuneforge.layout import Layout
from tuneforge.profiles import CleaningConfig, Profile
from tuneforge.progress import Progress


@dataclass
class StageReport:
    """What a stage wrote and the figures worth showing."""

    outputs: list[Path]
    figures: dict[str, Any]
    # How the stage ran (the dedup shard count): shown with the figures but not written with them, since the outputs
    # are the same bytes however it ran.
    engine: dict[str, Any] = field(default_factory=dict)


def ingest(layout: Layout, source: str, profile: Profile, engine: EngineConfig | None = None) -> StageReport:
    """``engine`` says where the records are parsed and mapped (the same bytes out on any); locally, a large source
    uses ``cleaning.workers`` processes."""
    check_source_name(source)
    rows_path = layout.ingested / f"{source}.jsonl"
    quarantine_path = layout.ingested / f"{source}.quarantine.jsonl"
    report = ingest_source(
        layout.raw / source, rows_path, quarantine_path, max_bad_share=profile.cleaning.max_bad_share,
        tombstones=Tombstones.load(layout.tombstones), engine=engine, large_source_workers=profile.cleaning.workers,
    )
    figures = report.as_dict()
    report_path = _write_report(layout.ingested / f"{source}.report.json", figures)
    return StageReport(outputs=[rows_path, quarantine_path, report_path], figures=figures,
                       engine={"dedup_shards": report.dedup_shards})


def clean(
    layout: Layout, source: str, profile: Profile, log: Callable[[str], None] | None = None,
    engine: EngineConfig | None = None,
) -> StageReport:
    """``log`` receives progress lines (rows done, rate, ETA) while a large source is cleaned; ``engine`` says where
    the chunks are cleaned (the same bytes out on any)."""
    check_source_name(source)
    rows_path = layout.ingested / f"{source}.jsonl"
    if not rows_path.exists():
        raise SourceError(f"{rows_path} is missing: materialize the raw corpus of source {source!r} first.")
    kept_path = layout.cleaned / f"{source}.jsonl"
    rejected_path = layout.cleaned / f"{source}.rejected.jsonl"
    ingested = _read_report(layout.ingested / f"{source}.report.json")
    progress = Progress(log, f"cleaning {source}", ingested.get("rows")) if log else None
    cleaning = source_cleaning(layout.raw, source, profile.cleaning)
    cleaned = clean_file(rows_path, kept_path, rejected_path, cleaning, progress=progress, engine=engine)
    funnel = cleaned.funnel
    figures = {
        "records_read": ingested.get("records_read", funnel.rows_in),
        "quarantined": ingested.get("quarantined", 0),
        "rows_in": funnel.rows_in,
        "rows_out": funnel.rows_out,
        "removed": dict(sorted(funnel.removed.items())),
        "funnel": funnel.as_rows(),
        "length_bounds": cleaned.bounds.as_dict(),
    }
    report_path = _write_report(layout.cleaned / f"{source}.report.json", figures)
    removed_share = 1 - funnel.rows_out / max(funnel.rows_in, 1)
    if removed_share > cleaning.max_rejected_share:
        reason, count = funnel.removed.most_common(1)[0]
        raise SourceError(
            f"Cleaning source {source!r} removed {removed_share:.0%} of its rows (limit "
            f"{cleaning.max_rejected_share:.0%}); most by {reason!r} ({count} rows, see {rejected_path}). "
            "Check the source's field mapping, or adjust the cleaning settings (tuneforge.yaml's cleaning section, or "
            "a cleaning section in the source's source.yaml)."
        )
    return StageReport(outputs=[kept_path, rejected_path, report_path], figures=figures,
                       engine={"dedup_shards": cleaned.dedup_shards})


def applied_cleaning(layout: Layout, source: str, profile: Profile) -> CleaningConfig:
    """The settings ``source`` was cleaned with: the project's, its source.yaml's, and the length bounds its
    cleaning report records."""
    cleaning = source_cleaning(layout.raw, source, profile.cleaning)
    bounds = _read_report(layout.cleaned / f"{source}.report.json").get("length_bounds")
    return LengthBounds.from_dict(bounds).apply(cleaning) if bounds else cleaning


def pooled_cleaning(layout: Layout, sources: list[str], profile: Profile) -> CleaningConfig:
    """Settings every cleaned source satisfies: the profile's, with the union of the sources' length bounds."""
    reports = [_read_report(layout.cleaned / f"{source}.report.json") for source in sources]
    union = LengthBounds.union(LengthBounds.from_dict(r["length_bounds"]) for r in reports if "length_bounds" in r)
    return union.apply(profile.cleaning) if union else profile.cleaning


def curate(layout: Layout, sources: list[str], profile: Profile, engine: EngineConfig | None = None) -> StageReport:
    for source in sources:
        check_source_name(source)
    missing = [s for s in sources if not (layout.cleaned / f"{s}.jsonl").exists()]
    if missing:
        raise SourceError(f"No cleaned corpus for source(s) {missing}: materialize cleaned_corpus for them first.")
    curated = curate_sources(
        {source: layout.cleaned / f"{source}.jsonl" for source in sources},
        layout.curated,
        profile.split,
        profile.cleaning,
        erasures=honoured_erasures(layout, sources),
        engine=engine,
    )
    outputs = [layout.curated / f"{name}.jsonl" for name in SPLITS]
    outputs += [layout.curated / REMOVED_FILE, layout.curated / MANIFEST_FILE]
    return StageReport(
        outputs=outputs,
        figures={"sizes": curated.sizes, "per_source": curated.per_source, "funnel": curated.funnel.as_rows()},
        engine={"dedup_shards": curated.dedup_shards},
    )


def honoured_erasures(layout: Layout, sources: list[str]) -> list[str]:
    """The erasure requests every source's latest ingestion honoured: those a dataset built from them honours."""
    honoured = [set(_read_report(layout.ingested / f"{source}.report.json").get("erasures", [])) for source in sources]
    return sorted(set.intersection(*honoured)) if honoured else []


def all_sources(layout: Layout) -> list[str]:
    return require_sources(layout.raw)


def _write_report(path: Path, figures: dict[str, Any]) -> Path:
    return write_text_atomically(path, json.dumps(figures, indent=2, sort_keys=True) + "\n")


def _read_report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

"""Data assets: raw corpus → cleaned corpus (one partition per source) → curated dataset (all sources, split).

Each asset is a thin shell over a file-to-file stage (``tuneforge.corpus.stages``): it runs the stage, records the
outputs in DVC, and shows the stage's figures, the Great Expectations results and the DVC hash in the UI. The DVC
hash is the asset's data version, so staleness follows content.
"""

import warnings

import dagster as dg

from resources import DataEngine, DvcRepository, Workspace
from stages.automation import CURATED_FRESHNESS, FOLLOW_PASSING_INPUTS
from tuneforge.corpus import stages as corpus_stages
from tuneforge.corpus.funnel import Funnel
from tuneforge.corpus.lengths import LengthBounds
from tuneforge.hashing import file_digest
from tuneforge.validation import ValidationOutcome, validate_cleaned, validate_curated

sources = dg.DynamicPartitionsDefinition(name="sources")

CLEANED_SUITE = "great_expectations_cleaned"
CURATED_SUITE = "great_expectations_curated"

# Partitioned check specs are a preview feature in Dagster 1.13, and exactly what a per-source gate needs: without
# them the UI shows one check status for all sources.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    CLEANED_CHECK = dg.AssetCheckSpec(
        CLEANED_SUITE, asset="cleaned_corpus", blocking=True, partitions_def=sources,
        description="Schema, nulls, unique ids, lengths, residual PII, duplicates, language",
    )


@dg.asset(partitions_def=sources, group_name="data", kinds={"dvc"}, pool="dvc")
def raw_corpus(
    context: dg.AssetExecutionContext, workspace: Workspace, dvc: DvcRepository, data_engine: DataEngine
) -> dg.MaterializeResult:
    """Files a user placed under ``data/raw/<source>/``, parsed into canonical rows on the data engine; every record
    that cannot be read or mapped is quarantined with its file, line and reason."""
    layout = workspace.layout
    dvc.ensure_initialized()
    report = corpus_stages.ingest(layout, context.partition_key, workspace.load_profile(),
                                  engine=data_engine.prepare(layout.root, layout.deployments))
    raw_hash = dvc.add(layout.raw / context.partition_key)
    dvc.commit("ingest")
    rows_path, quarantine_path = report.outputs[:2]
    figures = report.figures
    reasons = figures["quarantine_reasons"]
    return dg.MaterializeResult(
        metadata={
            "records_read": figures["records_read"],
            "rows": figures["rows"],
            "quarantined": figures["quarantined"],
            "quarantine_reasons": dg.MetadataValue.md(_table(("reason", "records"), sorted(reasons.items()))),
            "files": dg.MetadataValue.json(figures["files"]),
            "qualified_ids": dg.MetadataValue.json(figures.get("qualified_ids", {})),
            "dvc_raw_hash": raw_hash,
            **report.engine,
            "dvc_md5": file_digest(rows_path, "md5"),  # the digest DVC records, so the two can be compared
            "path": dg.MetadataValue.path(str(rows_path)),
            "quarantine": dg.MetadataValue.path(str(quarantine_path)),
        },
        data_version=dg.DataVersion(file_digest(rows_path, "md5")),
    )


@dg.asset(
    partitions_def=sources,
    deps=[raw_corpus],
    group_name="data",
    kinds={"dvc", "great_expectations"},
    pool="dvc",
    check_specs=[CLEANED_CHECK],
    automation_condition=FOLLOW_PASSING_INPUTS,
)
def cleaned_corpus(
    context: dg.AssetExecutionContext, workspace: Workspace, dvc: DvcRepository, data_engine: DataEngine
) -> dg.MaterializeResult:
    """Unicode repair, markup stripping, normalization, pair checks, language ID, Gopher quality rules, PII
    redaction, exact and near-duplicate removal; the funnel shows what each step removed or changed."""
    profile = workspace.load_profile()
    report = corpus_stages.clean(workspace.layout, context.partition_key, profile, log=context.log.info,
                                 engine=data_engine.prepare(workspace.layout.root, workspace.layout.deployments))
    dvc.commit("clean")
    kept_path, rejected_path = report.outputs[:2]
    figures = report.figures
    outcome = validate_cleaned(
        kept_path, profile, corpus_stages.applied_cleaning(workspace.layout, context.partition_key, profile)
    )
    dataset_hash = file_digest(kept_path, "md5")
    return dg.MaterializeResult(
        metadata={
            "records_read": figures["records_read"],
            "quarantined": figures["quarantined"],
            "rows_in": figures["rows_in"],
            "rows_removed": sum(figures["removed"].values()),
            "rows_out": figures["rows_out"],
            "funnel": dg.MetadataValue.md(Funnel.from_rows(figures["funnel"]).as_markdown()),
            "length_bounds": dg.MetadataValue.md(LengthBounds.from_dict(figures["length_bounds"]).as_markdown()),
            "great_expectations": dg.MetadataValue.md(outcome.as_markdown()),
            "dvc_md5": dataset_hash,
            **report.engine,
            "path": dg.MetadataValue.path(str(kept_path)),
            "rejected": dg.MetadataValue.path(str(rejected_path)),
        },
        data_version=dg.DataVersion(dataset_hash),
        check_results=[_check_result(CLEANED_SUITE, outcome)],
    )


@dg.asset(
    deps=[cleaned_corpus],
    group_name="data",
    kinds={"dvc", "great_expectations"},
    pool="dvc",
    automation_condition=FOLLOW_PASSING_INPUTS,
    freshness_policy=CURATED_FRESHNESS,
    check_specs=[dg.AssetCheckSpec(CURATED_SUITE, asset="curated_dataset", blocking=True,
                                   description="The cleaned-corpus checks across splits, groups in one split, "
                                   "split proportions")],
)
def curated_dataset(
    context: dg.AssetExecutionContext, workspace: Workspace, dvc: DvcRepository, data_engine: DataEngine
) -> dg.MaterializeResult:
    """All sources merged, deduplicated across sources, split train/validation/test by a hash of each row's group,
    and decontaminated against the test split; versioned with DVC."""
    partitions = sorted(context.instance.get_dynamic_partitions(sources.name))
    if not partitions:
        raise corpus_stages.SourceError(
            "No sources are registered: place files under data/raw/<source>/ and materialize raw_corpus and "
            "cleaned_corpus for each source (`make demo` does this for the embedded corpus)."
        )
    profile = workspace.load_profile()
    layout = workspace.layout
    report = corpus_stages.curate(layout, partitions, profile,
                                  engine=data_engine.prepare(layout.root, layout.deployments))
    outcome = validate_curated(layout.curated, profile, corpus_stages.pooled_cleaning(layout, partitions, profile))
    hashes = dvc.commit("curate")
    dvc.push()
    dataset_hash = hashes["data/curated"]
    figures = report.figures
    per_source = figures["per_source"]
    columns = sorted({key for counts in per_source.values() for key in counts})
    return dg.MaterializeResult(
        metadata={
            "sources": dg.MetadataValue.json(partitions),
            **{f"{name}_rows": size for name, size in figures["sizes"].items()},
            "per_source": dg.MetadataValue.md(
                _table(("source", *columns), [(source, *(counts.get(c, 0) for c in columns))
                                              for source, counts in sorted(per_source.items())])
            ),
            "funnel": dg.MetadataValue.md(Funnel.from_rows(figures["funnel"]).as_markdown()),
            "great_expectations": dg.MetadataValue.md(outcome.as_markdown()),
            "dvc_md5": dataset_hash,
            **report.engine,
            "path": dg.MetadataValue.path(str(layout.curated)),
        },
        data_version=dg.DataVersion(dataset_hash),
        check_results=[_check_result(CURATED_SUITE, outcome)],
    )


def _check_result(name: str, outcome: ValidationOutcome) -> dg.AssetCheckResult:
    failed = outcome.failed
    return dg.AssetCheckResult(
        check_name=name,
        passed=outcome.success,
        metadata={
            "rows": outcome.rows,
            "expectations": len(outcome.expectations),
            "failed": len(failed),
            "failed_expectations": dg.MetadataValue.json(
                [{"expectation": f.expectation, "column": f.column, "rows": f.unexpected_count,
                  "failing_ids": f.failing_ids, "detail": f.detail} for f in failed]
            ),
            "results": dg.MetadataValue.md(outcome.as_markdown()),
        },
        description=f"{len(failed)} of {len(outcome.expectations)} expectations failed" if failed else None,
    )


def _table(header: tuple[str, ...], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def curated_data_version(instance: dg.DagsterInstance) -> str | None:
    """The curated dataset's DVC hash: its latest data version in this instance (None before its first run)."""
    event = instance.get_latest_materialization_event(curated_dataset.key)
    materialization = event.asset_materialization if event else None
    return materialization.tags.get("dagster/data_version") if materialization else None

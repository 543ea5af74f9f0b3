"""``python -m pipelines.demo``: run the whole graph through Dagster on the active profile, as `make demo` does.

1. Place the embedded ACLSum corpus under ``data/raw/`` (three sources; existing files are kept).
2. Register each source directory as a partition of ``sources``.
3. Run ``ingest_source`` for each source, then ``model_lifecycle``, recording every run in the Dagster instance
   (``$DAGSTER_HOME``), so the UI shows them afterwards.
4. Print each data asset's row accounting, validation result and DVC hash (the UI shows the full funnel and
   Great Expectations tables), then where the champion is and how it scores against the base model.
"""

from __future__ import annotations

import sys

import dagster as dg

from pipelines.experiment_commands import sync_experiments
from resources.registry import ModelRegistry
from resources.workspace import resolve_root
from stages.data.assets import cleaned_corpus, curated_dataset, sources
from stages.data.jobs import ingest_source_job
from stages.definitions import defs
from stages.evaluation.assets import PROMOTION_GATE, evaluation_report
from stages.evaluation.promotion import promoted_model
from stages.model.jobs import model_lifecycle_job
from tuneforge.corpus.aclsum import place_aclsum
from tuneforge.corpus.sources import require_sources
from tuneforge.experiments import DEFAULT_EXPERIMENT
from tuneforge.layout import Layout
from tuneforge.project import load_project

QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def register_sources(instance: dg.DagsterInstance, layout: Layout) -> list[str]:
    found = require_sources(layout.raw)
    known = set(instance.get_dynamic_partitions(sources.name))
    new = [source for source in found if source not in known]
    if new:
        instance.add_dynamic_partitions(sources.name, new)
    return found


def run_all(
    instance: dg.DagsterInstance, layout: Layout, seed_embedded: bool = True, experiment: str = DEFAULT_EXPERIMENT
) -> dict:
    """Ingest every source under ``data/raw`` (first placing the embedded corpus when ``seed_embedded``), then run
    the lifecycle for ``experiment``; returns what ``promoted_model`` says, or why the candidate was refused."""
    if seed_embedded:
        place_aclsum(layout.raw, limit=load_project(layout.root).profile.embedded_rows_per_source)
    for source in register_sources(instance, layout):
        print(f"== ingesting source {source}", flush=True)
        result = defs.resolve_job_def(ingest_source_job.name).execute_in_process(
            instance=instance, partition_key=source, run_config=QUIET
        )
        if not result.success:
            raise SystemExit(f"ingestion of {source} failed; see the run in the Dagster UI")
    sync_experiments(instance, layout)
    print(f"== curating, then training, evaluating and promoting experiment {experiment!r}", flush=True)
    result = defs.resolve_job_def(model_lifecycle_job.name).execute_in_process(
        instance=instance, run_config=QUIET, raise_on_error=False, partition_key=experiment
    )
    if result.success:
        return result.output_for_node(promoted_model.op.name)
    blocked = [check for check in result.get_asset_check_evaluations() if not check.passed]
    if not blocked:
        raise SystemExit(f"{model_lifecycle_job.name} failed; see the run in the Dagster UI")
    return refused_summary(result.output_for_node(evaluation_report.op.name), blocked)


def refused_summary(report: dict, blocked: list[dg.AssetCheckEvaluation]) -> dict:
    """What ``promoted_model`` would have said, for a candidate a blocking check stopped before promotion."""
    champion = ModelRegistry().open().champion()
    reasons = list(report["reasons"]) + [
        f"blocked by the {check.check_name} check of {check.asset_key.to_user_string()}: {check.description}"
        for check in blocked if check.check_name != PROMOTION_GATE
    ]
    return {
        "promoted": False, "reasons": reasons, "blocked_by": [check.check_name for check in blocked],
        "champion_version": champion.version if champion else None,
        "champion_adapter": champion.adapter_dir if champion else None,
        "champion_export": champion.export_dir if champion else None,
        "candidate": report["scores"]["candidate"], "base": report["scores"]["base"], "intervals": report["intervals"],
    }


def print_data_summary(instance: dg.DagsterInstance) -> None:
    print("\nData (funnel and Great Expectations results in the UI, under each asset's metadata and checks):")
    for asset, partitions in (
        (cleaned_corpus, sorted(instance.get_dynamic_partitions(sources.name))),
        (curated_dataset, [None]),
    ):
        name = asset.key.to_user_string()
        for partition in partitions:
            selection = dg.AssetRecordsFilter(asset_key=asset.key, asset_partitions=[partition] if partition else None)
            records = instance.fetch_materializations(selection, limit=1).records
            event = records[0].event_log_entry if records else None
            if event is None or event.asset_materialization is None:
                continue
            metadata = {key: value.value for key, value in event.asset_materialization.metadata.items()}
            rows = (
                f"{metadata['records_read']} read, {metadata['quarantined']} quarantined, "
                f"{metadata['rows_removed']} removed, {metadata['rows_out']} kept"
                if asset is cleaned_corpus
                else ", ".join(f"{split} {metadata[f'{split}_rows']}" for split in ("train", "validation", "test"))
            )
            check = _check_verdict(instance, asset, partition)
            print(f"  {name}{f'[{partition}]' if partition else ''}: {rows}; {check}; dvc {metadata['dvc_md5']}")


def _check_verdict(instance: dg.DagsterInstance, asset: dg.AssetsDefinition, partition: str | None) -> str:
    for spec in asset.check_specs:
        for record in instance.event_log_storage.get_asset_check_execution_history(spec.key, limit=20):
            if record.partition == partition:
                return f"check {spec.name} {record.status.value.lower()}"
    return "not validated"


def print_summary(summary: dict) -> None:
    verdict = "promoted" if summary["promoted"] else "not promoted"
    print(f"\nCandidate {verdict}:")
    for reason in summary["reasons"]:
        print(f"  - {reason}")
    print(f"Champion: version {summary['champion_version']}, merged export {summary['champion_export']}")
    print("ROUGE (F1 x 100) with 95% bootstrap intervals:")
    for metric in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        cells = []
        for label in ("candidate", "base"):
            low, high = summary["intervals"][label][metric]
            cells.append(f"{label} {summary[label][metric]:6.2f} [{low:6.2f}, {high:6.2f}]")
        print(f"  {metric:9s} " + "   ".join(cells))
    print("Full report (slices, lengths, faithfulness, safety, samples): the evaluation_report asset in the UI.")
    print("Serve the champion (OpenAI-compatible, follows later promotions): .venv/bin/tuneforge serve")


def main() -> None:
    with dg.DagsterInstance.get() as instance:
        summary = run_all(instance, Layout(resolve_root()))
        print_data_summary(instance)
    print_summary(summary)
    sys.exit(0)


if __name__ == "__main__":
    main()

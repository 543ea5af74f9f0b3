"""Data assets: raw corpus → cleaned corpus (one partition per source) → curated dataset (all sources, split)."""


import dagster as dg

from resources import DvcRepository, Workspace
from tuneforge.corpus import stages
from tuneforge.corpus.records import file_md5

sources = dg.DynamicPartitionsDefinition(name="sources")


@dg.asset(partitions_def=sources, group_name="data", kinds={"dvc"}, pool="dvc")
def raw_corpus(context: dg.AssetExecutionContext, workspace: Workspace, dvc: DvcRepository) -> dg.MaterializeResult:
    """Files a user placed under ``data/raw/<source>/``, parsed into canonical rows; bad records quarantined."""
    source = context.partition_key
    layout = workspace.layout
    dvc.ensure_initialized()
    report = stages.ingest(layout, source)
    raw_hash = dvc.add(layout.raw / source)
    dvc.commit("ingest")
    rows_path = report.outputs[0]
    return dg.MaterializeResult(
        metadata={
            "rows": report.figures["rows"],
            "quarantined": report.figures["quarantined"],
            "files": dg.MetadataValue.json(report.figures["files"]),
            "dvc_raw_hash": raw_hash,
            "dvc_md5": file_md5(rows_path),
            "path": dg.MetadataValue.path(str(rows_path)),
            "quarantine": dg.MetadataValue.path(str(report.outputs[1])),
        },
        data_version=dg.DataVersion(file_md5(rows_path)),
    )


@dg.asset(partitions_def=sources, deps=[raw_corpus], group_name="data", kinds={"dvc"}, pool="dvc")
def cleaned_corpus(
    context: dg.AssetExecutionContext, workspace: Workspace, dvc: DvcRepository
) -> dg.MaterializeResult:
    """Normalized text, length filters and exact dedup, with a funnel of what each step removed."""
    report = stages.clean(workspace.layout, context.partition_key, workspace.load_profile())
    dvc.commit("clean")
    kept_path = report.outputs[0]
    funnel = report.figures["funnel"]
    table = "| step | changed | removed |\n|---|---|---|\n" + "\n".join(
        f"| {row['step']} | {row['changed']} | {row['removed']} |" for row in funnel
    )
    return dg.MaterializeResult(
        metadata={
            "rows_in": report.figures["rows_in"],
            "rows_out": report.figures["rows_out"],
            "funnel": dg.MetadataValue.md(table),
            "dvc_md5": file_md5(kept_path),
            "path": dg.MetadataValue.path(str(kept_path)),
            "rejected": dg.MetadataValue.path(str(report.outputs[1])),
        },
        data_version=dg.DataVersion(file_md5(kept_path)),
    )


@dg.asset(deps=[cleaned_corpus], group_name="data", kinds={"dvc"}, pool="dvc")
def curated_dataset(
    context: dg.AssetExecutionContext, workspace: Workspace, dvc: DvcRepository
) -> dg.MaterializeResult:
    """All sources merged and split train/validation/test by a hash of each row's group; versioned with DVC."""
    partitions = sorted(context.instance.get_dynamic_partitions(sources.name))
    if not partitions:
        raise stages.SourceError(
            "No sources are registered: place files under data/raw/<source>/ and materialize raw_corpus and "
            "cleaned_corpus for each source (`make demo` does this for the embedded corpus)."
        )
    report = stages.curate(workspace.layout, partitions, workspace.load_profile())
    hashes = dvc.commit("curate")
    dvc.push()
    dataset_hash = hashes["data/curated"]
    return dg.MaterializeResult(
        metadata={
            "sources": dg.MetadataValue.json(partitions),
            **{f"{name}_rows": size for name, size in report.figures["sizes"].items()},
            "per_source": dg.MetadataValue.json(report.figures["per_source"]),
            "dvc_md5": dataset_hash,
            "path": dg.MetadataValue.path(str(workspace.layout.curated)),
        },
        data_version=dg.DataVersion(dataset_hash),
    )

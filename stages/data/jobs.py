"""Ingestion, launched per source: read and clean one source (a partition of ``sources``)."""

import dagster as dg

from stages.data.assets import cleaned_corpus, raw_corpus, sources

ingest_source_job = dg.define_asset_job(
    "ingest_source",
    selection=dg.AssetSelection.assets(raw_corpus, cleaned_corpus),
    partitions_def=sources,
    description=f"Ingest and clean one source (a partition of {sources.name!r}).",
)

"""Jobs a user launches: per-source ingestion (partitioned) and the model lifecycle (unpartitioned)."""

import dagster as dg

from assets import sources

ingest_source_job = dg.define_asset_job(
    "ingest_source",
    selection=dg.AssetSelection.assets("raw_corpus", "cleaned_corpus"),
    partitions_def=sources,
    description="Ingest and clean one source (a partition of 'sources').",
)

model_lifecycle_job = dg.define_asset_job(
    "model_lifecycle",
    selection=dg.AssetSelection.assets("curated_dataset").downstream()
    | dg.AssetSelection.assets("base_model"),
    description="Curate all cleaned sources, train the adapter, evaluate it and decide on promotion.",
)

JOBS = [ingest_source_job, model_lifecycle_job]

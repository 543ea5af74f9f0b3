"""Jobs a user launches: per-source ingestion, the whole model lifecycle, and one experiment's training (sweeps)."""

import dagster as dg

from assets import experiments, sources

# dagster.yaml limits runs carrying this tag to one at a time: each may move the champion alias.
LIFECYCLE_TAGS = {"tuneforge/lifecycle": "model"}

ingest_source_job = dg.define_asset_job(
    "ingest_source",
    selection=dg.AssetSelection.assets("raw_corpus", "cleaned_corpus"),
    partitions_def=sources,
    description="Ingest and clean one source (a partition of 'sources').",
)

model_lifecycle_job = dg.define_asset_job(
    "model_lifecycle",
    selection=dg.AssetSelection.assets("curated_dataset").downstream() | dg.AssetSelection.assets("base_model"),
    partitions_def=experiments,
    tags=LIFECYCLE_TAGS,
    description="Curate all cleaned sources, then train one experiment's adapter (a partition of 'experiments'), "
    "evaluate it and decide on promotion.",
)

train_experiment_job = dg.define_asset_job(
    "train_experiment",
    selection=dg.AssetSelection.assets("lora_adapter").downstream(),
    partitions_def=experiments,
    tags=LIFECYCLE_TAGS,
    description="Train, evaluate and gate one experiment on the current curated dataset. A sweep is a backfill of "
    "this job over experiment partitions (`tuneforge sweep`).",
)

JOBS = [ingest_source_job, model_lifecycle_job, train_experiment_job]

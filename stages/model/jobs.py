"""Jobs a user launches for the model: the whole lifecycle (curation to promotion), and one experiment's training
(sweeps). Both run one experiment, a partition of ``experiments``."""

import dagster as dg

from stages.data.assets import curated_dataset
from stages.model.assets import base_model, experiments, lora_adapter
from stages.names import LIFECYCLE_TAGS

model_lifecycle_job = dg.define_asset_job(
    "model_lifecycle",
    selection=dg.AssetSelection.assets(curated_dataset).downstream() | dg.AssetSelection.assets(base_model),
    partitions_def=experiments,
    tags=LIFECYCLE_TAGS,
    description="Curate all cleaned sources, then train one experiment's adapter "
    f"(a partition of {experiments.name!r}), evaluate it and decide on promotion.",
)

train_experiment_job = dg.define_asset_job(
    "train_experiment",
    selection=dg.AssetSelection.assets(lora_adapter).downstream(),
    partitions_def=experiments,
    tags=LIFECYCLE_TAGS,
    description="Train, evaluate and gate one experiment on the current curated dataset. A sweep is a backfill of "
    "this job over experiment partitions (`tuneforge sweep`).",
)

"""Model: the base model snapshot, and per experiment (a partition of ``experiments``) a LoRA adapter trained on the
curated dataset. ``model_lifecycle`` runs everything from curation to promotion, ``train_experiment`` one
experiment's training onwards (a sweep is a backfill of it); ``new_data_retrain_sensor`` retrains on enough new data.
The ``weekly_retrain`` schedule (``retraining.build_weekly_retrain``) is built in ``stages.definitions``, in the
project's time zone."""

import dagster as dg

from stages.model.assets import base_model, lora_adapter
from stages.model.jobs import model_lifecycle_job, train_experiment_job
from stages.model.retraining import new_data_retrain_sensor

defs = dg.Definitions(
    assets=[base_model, lora_adapter],
    jobs=[model_lifecycle_job, train_experiment_job],
    sensors=[new_data_retrain_sensor],
)

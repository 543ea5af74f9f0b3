"""Names shared by the stages that are not definition objects: the keys of the tags tuneforge puts on runs.

Job, partition and asset names are read off their definitions (``model_lifecycle_job.name``, ``experiments.name``,
``curated_dataset.key``), never retyped.
"""

# dagster.yaml (and deploy/k8s/dagster.yaml) limits runs carrying this tag to one at a time: each may move the
# champion alias.
LIFECYCLE_TAG = "tuneforge/lifecycle"
LIFECYCLE_TAGS = {LIFECYCLE_TAG: "model"}

# What requested a run: the schedule or sensor that did (its value), and what it saw.
TRIGGER_TAG = "tuneforge/trigger"
SCHEDULED_FOR_TAG = "tuneforge/scheduled_for"  # weekly_retrain: the scheduled time of the tick
CONTENT_TAG = "tuneforge/content"  # raw_data_sensor: the digest of the source's files
NEW_TRAINING_ROWS_TAG = "tuneforge/new_training_rows"  # new_data_retrain_sensor
DRIFT_EVALUATION_TAG = "tuneforge/drift_check_evaluation"  # drift_retrain_sensor: the check evaluation's storage id
LIVE_CHECK_TAG = "tuneforge/live_check"  # live_retrain_sensor: the failed check that requested the retrain
DRIFT_RUN_TAG = "tuneforge/drift_run_id"  # drift_retrain_sensor: the run that evaluated the check

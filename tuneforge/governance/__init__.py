"""Erasure on request: find every place a person's records went (raw files, dataset versions in DVC, adapters,
exports, reports, MLflow artifacts, the registry, request and feedback logs), remove them, retrain without them, and
prove they are gone. Nothing here imports Dagster; ``tuneforge erase`` (``pipelines/erase_command.py``) drives it."""

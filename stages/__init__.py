"""The Dagster code location: one package per stage of the model's life, merged by ``stages.definitions``.

- ``data``: files under data/raw/<source>/ → raw_corpus → cleaned_corpus (a partition per source) → curated_dataset.
- ``model``: the base model and a LoRA adapter per experiment; the training jobs and the retrain triggers.
- ``evaluation``: the evaluation report and its promotion gate, then the merged export and the champion alias.
- ``monitoring``: raw-data drift and the champion re-evaluated every night, the drift retrain, failed-run alerts.

Each stage's ``__init__`` assembles its assets (with their checks), jobs and sensors into ``defs``; a stage imports
only from the stages before it. ``names`` holds the run tag keys they share, ``automation`` the automation conditions
and freshness policies. The logic the assets call lives in ``tuneforge/``, plain Python without Dagster.
"""

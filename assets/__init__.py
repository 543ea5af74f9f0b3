"""Dagster assets, thin: each reads its inputs, calls tuneforge's plain-Python logic, and reports metadata."""

from assets.corpora import cleaned_corpus, curated_dataset, raw_corpus, sources
from assets.evaluation import evaluation_report
from assets.model import base_model, experiments, lora_adapter
from assets.promotion import merged_export, promoted_model

ALL_ASSETS = [raw_corpus, cleaned_corpus, curated_dataset, base_model, lora_adapter, evaluation_report, merged_export,
              promoted_model]

__all__ = ["ALL_ASSETS", "experiments", "sources", *[a.key.path[-1] for a in ALL_ASSETS]]

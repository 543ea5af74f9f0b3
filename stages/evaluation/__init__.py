"""Evaluation and promotion: each experiment's adapter is evaluated against the base model and the champion, behind
the blocking ``promotion_gate`` check; a candidate that passes is merged into full weights (``merged_export``, with
its blocking ``export_parity`` check) and made champion in the registry (``promoted_model``), then served
(``deployment``). The jobs that run these are the model stage's (``model_lifecycle``, ``train_experiment``),
which select them downstream of training."""

import dagster as dg

from stages.evaluation.assets import evaluation_report
from stages.evaluation.deployment import deployment
from stages.evaluation.promotion import merged_export, promoted_model

defs = dg.Definitions(assets=[evaluation_report, merged_export, promoted_model, deployment])

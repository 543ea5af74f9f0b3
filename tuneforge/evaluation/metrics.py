"""Every reference-overlap metric of the evaluation, per example: ROUGE-1/2/L/Lsum (``rouge-score``, see
``tuneforge/evaluation/rouge.py``), BLEU and chrF (``sacrebleu``, the reference implementation of both).

All are scored per example and averaged, so each gets the same bootstrap interval and paired test as ROUGE. BLEU is
sentence BLEU with sacrebleu's default exponential smoothing (a short summary often shares no 4-gram with its
reference, which would make unsmoothed BLEU zero); chrF is character 6-gram F-score with beta 2. Several references:
each metric takes the row's best match, as ROUGE does.
"""

from __future__ import annotations

from collections import defaultdict
from importlib.metadata import version

from sacrebleu.metrics import BLEU, CHRF

from tuneforge.evaluation import rouge
from tuneforge.evaluation.rouge import ROUGE_TYPES

SACREBLEU_METRICS = ("bleu", "chrf")
METRICS = (*ROUGE_TYPES, *SACREBLEU_METRICS)


def metric_spec() -> dict[str, str | bool]:
    return {**rouge.metric_spec(), "sacrebleu": version("sacrebleu"),
            "bleu": "sentence BLEU (exp smoothing), best over references, mean over examples",
            "chrf": "sentence chrF (character 6-grams, beta 2), best over references, mean over examples"}


def score_examples(predictions: list[str], references: list[list[str]]) -> list[dict[str, float]]:
    """Every metric of every example (x 100); ``references[i]`` holds every reference summary of example ``i``."""
    bleu, chrf = BLEU(effective_order=True), CHRF()
    scores = rouge.score_examples(predictions, references)
    for row, prediction, refs in zip(scores, predictions, references, strict=True):
        row["bleu"] = round(max(bleu.sentence_score(prediction, [ref]).score for ref in refs), 4)
        row["chrf"] = round(max(chrf.sentence_score(prediction, [ref]).score for ref in refs), 4)
    return scores


def scored_metrics(per_example: list[dict[str, float]]) -> list[str]:
    """The metrics these per-example scores hold, in METRICS order (all of them for no examples)."""
    return [m for m in METRICS if not per_example or m in per_example[0]]


def mean_scores(per_example: list[dict[str, float]]) -> dict[str, float]:
    metrics = scored_metrics(per_example)
    if not per_example:
        return dict.fromkeys(metrics, 0.0)
    return {name: round(sum(s[name] for s in per_example) / len(per_example), 3) for name in metrics}


def mean_scores_by(per_example: list[dict[str, float]], keys: list[str]) -> dict[str, dict[str, float]]:
    groups: dict[str, list[dict[str, float]]] = defaultdict(list)
    for key, scores in zip(keys, per_example, strict=True):
        groups[key].append(scores)
    return {key: mean_scores(scores) for key, scores in sorted(groups.items())}

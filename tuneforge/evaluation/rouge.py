"""ROUGE-1/2/L/Lsum with the reference ``rouge-score`` implementation (stemming on), per example and averaged.

A row with several reference summaries (SciTLDR keeps every author and reviewer TLDR) scores its best match for each
metric, as ``rouge-score``'s ``score_multi`` defines it.
"""

from __future__ import annotations

from collections import defaultdict
from importlib.metadata import version

from rouge_score import rouge_scorer

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def metric_spec() -> dict[str, str | bool]:
    return {"implementation": "rouge-score", "version": version("rouge-score"), "stemming": True,
            "measure": "F1 x 100", "references": "best F1 over a row's references, per metric",
            "aggregation": "mean over examples"}


def score_examples(predictions: list[str], references: list[list[str]]) -> list[dict[str, float]]:
    """Per-example scores; ``references[i]`` holds every reference summary of example ``i``."""
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    return [
        {name: round(score.fmeasure * 100, 4) for name, score in scorer.score_multi(refs, pred).items()}
        for pred, refs in zip(predictions, references, strict=True)
    ]


def mean_scores(per_example: list[dict[str, float]]) -> dict[str, float]:
    if not per_example:
        return dict.fromkeys(ROUGE_TYPES, 0.0)
    return {name: round(sum(s[name] for s in per_example) / len(per_example), 3) for name in ROUGE_TYPES}


def mean_scores_by(per_example: list[dict[str, float]], keys: list[str]) -> dict[str, dict[str, float]]:
    groups: dict[str, list[dict[str, float]]] = defaultdict(list)
    for key, scores in zip(keys, per_example, strict=True):
        groups[key].append(scores)
    return {key: mean_scores(scores) for key, scores in sorted(groups.items())}

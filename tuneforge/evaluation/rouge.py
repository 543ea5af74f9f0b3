"""ROUGE-1/2/L/Lsum with the reference ``rouge-score`` implementation (stemming on), per example and averaged.

A row with several reference summaries (SciTLDR keeps every author and reviewer TLDR) scores its best match for each
metric, as ``rouge-score``'s ``score_multi`` defines it.
"""

from __future__ import annotations

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

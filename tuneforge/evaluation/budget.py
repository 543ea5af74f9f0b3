"""The generation budget learned from the data: long enough for the summaries this corpus has, not the demo's.

A fixed ``max_new_tokens`` truncates any corpus whose summaries run longer than the one it was tuned on (every bill
summary cut at 64 tokens is "degenerate" by construction), and wastes time on corpora of one-line answers. Unless
``evaluation.max_new_tokens`` is set, it is the 99th percentile of the training summaries' token lengths, with a
quarter more for variation and one token for the end of turn, within what the model's context leaves after the
prompt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tuneforge.profiles import EvaluationConfig

PERCENTILE = 99
MARGIN = 1.25
MIN_NEW_TOKENS = 8


@dataclass(frozen=True)
class GenerationBudget:
    max_new_tokens: int
    learned_from: str  # the statistic it came from, or "evaluation.max_new_tokens" when configured


def learn_max_new_tokens(summary_lengths: Sequence[int], max_prompt_tokens: int,
                         context_tokens: int | None = None) -> GenerationBudget:
    """The budget for summaries of these token lengths (see the module's docstring)."""
    if not summary_lengths:
        raise ValueError("there are no training summaries to learn evaluation.max_new_tokens from; add training "
                         "data or set evaluation.max_new_tokens")
    ordered = sorted(summary_lengths)
    high = ordered[min(len(ordered) - 1, math.ceil(PERCENTILE / 100 * len(ordered)) - 1)]
    wanted = max(MIN_NEW_TOKENS, math.ceil(high * MARGIN) + 1)
    statistic = (f"{PERCENTILE}th percentile of {len(ordered)} training summaries: {high} tokens, x {MARGIN} "
                 f"+ 1 for the end of turn")
    if context_tokens is not None and wanted > context_tokens - max_prompt_tokens:
        wanted = max(1, context_tokens - max_prompt_tokens)
        statistic += f", capped by the model's context ({context_tokens} - {max_prompt_tokens} prompt tokens)"
    return GenerationBudget(wanted, statistic)


def resolve_generation_budget(config: EvaluationConfig, base_dir: Path, train_path: Path) -> GenerationBudget:
    """``evaluation.max_new_tokens`` when set, else learned from the summaries at ``train_path`` with the base
    model's tokenizer."""
    if config.max_new_tokens is not None:
        return GenerationBudget(config.max_new_tokens, "evaluation.max_new_tokens")
    from transformers import AutoConfig, AutoTokenizer

    from tuneforge.corpus.records import read_examples

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    summaries = [row.summary for row in read_examples(train_path)]
    lengths = [len(ids) for ids in tokenizer(summaries, add_special_tokens=False)["input_ids"]] if summaries else []
    context = getattr(AutoConfig.from_pretrained(base_dir), "max_position_embeddings", None)
    return learn_max_new_tokens(lengths, config.max_prompt_tokens, context)


def with_budget(config: EvaluationConfig, budget: GenerationBudget) -> EvaluationConfig:
    return config.model_copy(update={"max_new_tokens": budget.max_new_tokens})

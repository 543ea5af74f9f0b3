"""The generation budget learned from the data: long enough for the summaries this corpus has, not the demo's, and
a prompt holding the part of each document its summaries draw on.

A fixed ``max_new_tokens`` truncates any corpus whose summaries run longer than the one it was tuned on (every bill
summary cut at 64 tokens is "degenerate" by construction), and wastes time on corpora of one-line answers. Unless
``evaluation.max_new_tokens`` is set, it is the 99th percentile of the training summaries' token lengths, with a
quarter more for variation and one token for the end of turn, within what the model's context leaves after the
prompt. Unless ``evaluation.max_prompt_tokens`` is set, the prompt holds the document window training learned
(``tuneforge.modeling.window``) after the chat template and the longest instruction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tuneforge.modeling.window import nearest_rank
from tuneforge.profiles import EvaluationConfig

PERCENTILE = 99
MARGIN = 1.25
MIN_NEW_TOKENS = 8


@dataclass(frozen=True)
class GenerationBudget:
    max_new_tokens: int
    learned_from: str  # the statistic it came from, or "evaluation.max_new_tokens" when configured
    max_prompt_tokens: int | None = None
    prompt_from: str = ""  # likewise for max_prompt_tokens


def learn_max_new_tokens(summary_lengths: Sequence[int], max_prompt_tokens: int,
                         context_tokens: int | None = None) -> GenerationBudget:
    """The budget for summaries of these token lengths (see the module's docstring)."""
    if not summary_lengths:
        raise ValueError("there are no training summaries to learn evaluation.max_new_tokens from; add training "
                         "data or set evaluation.max_new_tokens")
    high = nearest_rank(summary_lengths, PERCENTILE)
    wanted = max(MIN_NEW_TOKENS, math.ceil(high * MARGIN) + 1)
    statistic = (f"{PERCENTILE}th percentile of {len(summary_lengths)} training summaries: {high} tokens, x {MARGIN} "
                 f"+ 1 for the end of turn")
    if context_tokens is not None and wanted > context_tokens - max_prompt_tokens:
        wanted = max(1, context_tokens - max_prompt_tokens)
        statistic += f", capped by the model's context ({context_tokens} - {max_prompt_tokens} prompt tokens)"
    return GenerationBudget(wanted, statistic, max_prompt_tokens)


def resolve_generation_budget(config: EvaluationConfig, base_dir: Path, train_path: Path,
                              instructions: Iterable[str] = ()) -> GenerationBudget:
    """``evaluation.max_prompt_tokens`` and ``max_new_tokens`` as set, else learned from the rows at ``train_path``
    with the base model's tokenizer; ``instructions`` are those the prompts will carry."""
    if config.max_new_tokens is not None and config.max_prompt_tokens is not None:
        return GenerationBudget(config.max_new_tokens, "evaluation.max_new_tokens", config.max_prompt_tokens,
                                "evaluation.max_prompt_tokens")
    from transformers import AutoConfig, AutoTokenizer

    from tuneforge.corpus.records import read_examples
    from tuneforge.modeling.window import learn_max_prompt_tokens

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    rows = read_examples(train_path)
    context = getattr(AutoConfig.from_pretrained(base_dir), "max_position_embeddings", None)
    if config.max_prompt_tokens is not None:
        prompt_tokens, prompt_from = config.max_prompt_tokens, "evaluation.max_prompt_tokens"
    else:
        window = learn_max_prompt_tokens(tokenizer, rows, instructions,
                                         None if context is None else context - MIN_NEW_TOKENS)
        prompt_tokens, prompt_from = window.tokens, window.learned_from
    if config.max_new_tokens is not None:
        return GenerationBudget(config.max_new_tokens, "evaluation.max_new_tokens", prompt_tokens, prompt_from)
    summaries = [row.summary for row in rows]
    lengths = [len(ids) for ids in tokenizer(summaries, add_special_tokens=False)["input_ids"]] if summaries else []
    learned = learn_max_new_tokens(lengths, prompt_tokens, context)
    return GenerationBudget(learned.max_new_tokens, learned.learned_from, prompt_tokens, prompt_from)


def with_budget(config: EvaluationConfig, budget: GenerationBudget) -> EvaluationConfig:
    return config.model_copy(update={"max_new_tokens": budget.max_new_tokens,
                                     "max_prompt_tokens": budget.max_prompt_tokens})

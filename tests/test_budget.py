"""The generation budget: learned from the training summaries unless configured."""

import json

import pytest

from tuneforge.evaluation.budget import learn_max_new_tokens, resolve_generation_budget
from tuneforge.profiles import EvaluationConfig


def test_the_budget_covers_the_longest_summaries_with_a_margin():
    lengths = list(range(1, 101))  # 1..100 tokens
    budget = learn_max_new_tokens(lengths, max_prompt_tokens=384)
    assert budget.max_new_tokens == 125  # ceil(99 * 1.25) + 1
    assert "99th percentile of 100 training summaries: 99 tokens" in budget.learned_from


def test_short_answers_get_a_short_budget_and_long_summaries_a_long_one():
    assert learn_max_new_tokens([9] * 50, 384).max_new_tokens == 13
    assert learn_max_new_tokens([2] * 50, 384).max_new_tokens == 8  # a floor for one-word answers
    assert learn_max_new_tokens([180] * 50, 384).max_new_tokens == 226


def test_the_budget_fits_in_the_context_left_after_the_prompt():
    budget = learn_max_new_tokens([900] * 10, max_prompt_tokens=1536, context_tokens=2048)
    assert budget.max_new_tokens == 512 and "capped by the model's context (2048 - 1536" in budget.learned_from


def test_no_training_summaries_is_a_clear_error():
    with pytest.raises(ValueError, match="no training summaries.*set evaluation.max_new_tokens"):
        learn_max_new_tokens([], 384)


def test_a_configured_budget_wins_and_the_learned_one_uses_the_base_tokenizer(smoke_base_models, tmp_path):
    base = next(smoke_base_models.iterdir())
    train = tmp_path / "train.jsonl"
    summary = " ".join(["word"] * 30)
    train.write_text("".join(json.dumps({"id": str(i), "source": "s", "group": str(i), "document": "d " * 20,
                                         "summary": summary}) + "\n" for i in range(10)))
    configured = resolve_generation_budget(EvaluationConfig(max_new_tokens=40), base, train)
    assert (configured.max_new_tokens, configured.learned_from) == (40, "evaluation.max_new_tokens")
    learned = resolve_generation_budget(EvaluationConfig(), base, train)
    from transformers import AutoTokenizer

    tokens = len(AutoTokenizer.from_pretrained(base)(summary, add_special_tokens=False)["input_ids"])
    assert learned.max_new_tokens == -(-tokens * 5 // 4) + 1

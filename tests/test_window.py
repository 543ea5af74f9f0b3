"""The document window: prompt and sequence lengths learned from where the summaries' words are in the documents."""

import json

import pytest
from transformers import AutoTokenizer

from tuneforge.corpus.records import Example
from tuneforge.evaluation.budget import resolve_generation_budget
from tuneforge.modeling.generate import token_bounded_batches
from tuneforge.modeling.prompts import template_tokens
from tuneforge.modeling.window import (
    MIN_WINDOW,
    STEP,
    common_words,
    coverage_at,
    learn_document_window,
    learn_max_prompt_tokens,
    learn_max_seq_len,
    resolve_max_seq_len,
    shortest_window,
    summary_word_offsets,
)
from tuneforge.profiles import EvaluationConfig, TrainingConfig

FILLER = ["river", "stone", "cloud", "maple", "amber", "orbit", "lemon", "cedar"]


def _document(marker_at: int, length: int, marker: str) -> str:
    """``length`` filler words with ``marker`` as word number ``marker_at``."""
    words = [f"{FILLER[i % len(FILLER)]}{i}" for i in range(length)]
    words[marker_at] = marker
    return " ".join(words)


def _rows(marker_at: int, count: int = 20, length: int = 300) -> list[Example]:
    return [Example(id=str(i), source="s", group=str(i), document=_document(marker_at, length, f"zebra{i}x"),
                    summary=f"about zebra{i}x") for i in range(count)]


@pytest.fixture(scope="module")
def tokenizer(smoke_base_models):
    return AutoTokenizer.from_pretrained(next(smoke_base_models.iterdir()))


def test_coverage_counts_the_summary_words_each_prefix_reaches():
    starts = [[0, 10, 20, 30, 40]]  # five tokens, starting at these characters
    offsets = [[5, 25, 45]]  # three summary words, in tokens 0, 2 and 4
    assert coverage_at(1, starts, offsets) == pytest.approx(1 / 3)
    assert coverage_at(3, starts, offsets) == pytest.approx(2 / 3)
    assert coverage_at(5, starts, offsets) == 1.0  # the whole document


def test_the_window_is_the_shortest_step_reaching_the_coverage():
    starts = [list(range(0, 1000, 5)) for _ in range(10)]  # 200 tokens of 5 characters
    # Every row's one summary word is at token 100, but one row's is at token 190: 9 of 10 rows need 101 tokens.
    offsets = [[100 * 5]] * 9 + [[190 * 5]]
    assert shortest_window(starts, offsets, coverage=0.9) == 128  # 101 tokens, as a multiple of 32
    assert shortest_window(starts, offsets, coverage=0.95) == 192  # the last row too


def test_rows_without_a_shared_word_are_ignored_and_a_corpus_without_any_reads_whole_documents():
    starts = [list(range(0, 1000, 5)) for _ in range(3)]
    assert shortest_window(starts, [[10], [], []]) == MIN_WINDOW
    assert shortest_window(starts, [[], [], []]) == 224  # 200 tokens, rounded up to a step


def test_words_every_document_has_do_not_count():
    documents = ["the patient said hello", "the patient has a cough", "the patient coughs"]
    assert common_words(documents) == {"the", "patient"}
    assert summary_word_offsets("Patient reports cough since Monday", "Patient: cough, 3 days", {"patient"}) == [16]


@pytest.mark.parametrize("marker_at, window", [(5, MIN_WINDOW), (250, None)])
def test_the_window_follows_where_the_summaries_draw_from(tokenizer, marker_at, window):
    rows = _rows(marker_at)
    learned = learn_document_window(tokenizer, rows)
    if window is not None:
        assert learned.tokens == window
    else:  # the summary's word is near the end: the window must reach past it, and no further than a step
        needed = max(len(tokenizer(" ".join(r.document.split()[: marker_at + 1]),
                                   add_special_tokens=False)["input_ids"]) for r in rows)
        assert needed <= learned.tokens < needed + STEP + 2
    assert f"over {len(rows)} of {len(rows)} training rows" in learned.learned_from


def test_sequence_and_prompt_lengths_add_the_template_and_the_summaries(tokenizer):
    rows = _rows(250)
    window = learn_document_window(tokenizer, rows).tokens
    overhead = template_tokens(tokenizer, "Summarize.")
    seq = learn_max_seq_len(tokenizer, rows, ["Summarize.", "Hi"], context=None)
    assert seq.tokens % STEP == 0 and seq.tokens >= overhead + window + 3
    assert seq.tokens < overhead + window + 3 + 10 + STEP  # summaries are a few tokens
    prompt = learn_max_prompt_tokens(tokenizer, rows, ["Summarize.", "Hi"])
    assert prompt.tokens == overhead + window
    capped = learn_max_seq_len(tokenizer, rows, ["Summarize."], context=128)
    assert capped.tokens == 128 and "capped by the model's context (128)" in capped.learned_from


def test_training_and_evaluation_learn_the_same_window_and_settings_win(smoke_base_models, tokenizer, tmp_path):
    base = next(smoke_base_models.iterdir())
    rows = _rows(250)
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(row.model_dump()) + "\n" for row in rows))
    budget = resolve_generation_budget(EvaluationConfig(), base, train, ["Summarize."])
    assert budget.max_prompt_tokens == template_tokens(tokenizer, "Summarize.") + \
        learn_document_window(tokenizer, rows).tokens
    assert "document tokens" in budget.prompt_from
    configured = resolve_generation_budget(EvaluationConfig(max_prompt_tokens=200), base, train, ["Summarize."])
    assert (configured.max_prompt_tokens, configured.prompt_from) == (200, "evaluation.max_prompt_tokens")
    learned, learned_from = resolve_max_seq_len(TrainingConfig(), base, rows, ["Summarize."])
    assert learned.max_seq_len == learn_max_seq_len(tokenizer, rows, ["Summarize."], None).tokens
    assert "summary tokens" in learned_from
    kept, kept_from = resolve_max_seq_len(TrainingConfig(max_seq_len=256), base, rows, ["Summarize."])
    assert (kept.max_seq_len, kept_from) == (256, "training.max_seq_len")


def test_no_rows_to_learn_from_names_the_settings(tokenizer):
    with pytest.raises(ValueError, match="set training.max_seq_len and evaluation.max_prompt_tokens"):
        learn_document_window(tokenizer, [])


def test_generation_batches_hold_fewer_long_prompts():
    lengths = [1000, 900, 300, 300, 300, 300, 100]
    assert token_bounded_batches(lengths, 4, 100, batch_tokens=2200) == [(0, 2), (2, 6), (6, 7)]
    assert token_bounded_batches(lengths, 4, 100, batch_tokens=500) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5),
                                                                        (5, 6), (6, 7)]
    assert token_bounded_batches(lengths, 3, 100, batch_tokens=None) == [(0, 3), (3, 6), (6, 7)]

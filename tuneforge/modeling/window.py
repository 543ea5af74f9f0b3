"""How much of each document the model reads, learned from where the summaries' words are in the documents.

A fixed prompt length fits one corpus: 384 tokens show the model the abstract and part of the introduction of an
ACLSum paper, and the first 29% of a bill whose summary draws on all of it. Unless ``training.max_seq_len`` and
``evaluation.max_prompt_tokens`` are set, the document window is the shortest prefix (in the base model's tokens, a
multiple of ``STEP``) that holds, on average over the training rows, ``COVERAGE`` of the summary words found in the
document: a word counts where it first occurs. Words in more than ``COMMON_SHARE`` of the documents ("this", "with",
or "patient" in clinical dialogues) are left out, being everywhere; so are rows whose summary shares no other word
with their document. Training rows then hold the window, the instruction and chat template, and the 99th-percentile
summary (a row whose summary is shorter leaves its document the room that summary does not take); evaluation and
serving prompts hold the window, so the model is evaluated on at least what it read of most documents in training.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tuneforge.corpus.records import Example
from tuneforge.modeling.prompts import template_tokens
from tuneforge.profiles import TrainingConfig

COVERAGE = 0.9
COMMON_SHARE = 0.5
SAMPLE_ROWS = 2000  # rows the window is learned on, spread evenly over the split
STEP = 32
MIN_WINDOW = 64
SUMMARY_PERCENTILE = 99
WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Window:
    tokens: int
    learned_from: str  # the statistic it came from, or the setting that fixed it


def _is_content_word(word: str) -> bool:
    return len(word) >= 4 or any(ch.isdigit() for ch in word)


def common_words(documents: Iterable[str], share: float = COMMON_SHARE) -> set[str]:
    """Words found in more than ``share`` of ``documents``."""
    counts, total = Counter(), 0
    for document in documents:
        counts.update({word.lower() for word in WORD.findall(document)})
        total += 1
    return {word for word, count in counts.items() if count > share * total}


def summary_word_offsets(document: str, summary: str, common: set[str]) -> list[int]:
    """Character offsets in ``document`` where each content word of ``summary`` first occurs (words missing from
    the document, short words and ``common`` words are left out)."""
    wanted = {w for w in (word.lower() for word in WORD.findall(summary)) if _is_content_word(w) and w not in common}
    first: dict[str, int] = {}
    for match in WORD.finditer(document):
        word = match.group().lower()
        if word in wanted and word not in first:
            first[word] = match.start()
    return sorted(first.values())


def coverage_at(tokens: int, token_starts: Sequence[Sequence[int]], offsets: Sequence[Sequence[int]]) -> float:
    """Mean share of each row's summary words (``offsets``, characters) that the first ``tokens`` document tokens
    (``token_starts``: each token's first character) reach."""
    shares = []
    for starts, row in zip(token_starts, offsets, strict=True):
        limit = starts[tokens] if tokens < len(starts) else math.inf
        shares.append(sum(offset < limit for offset in row) / len(row))
    return sum(shares) / len(shares)


def shortest_window(token_starts: Sequence[Sequence[int]], offsets: Sequence[Sequence[int]],
                    coverage: float = COVERAGE) -> int:
    """The shortest multiple of ``STEP`` whose coverage (``coverage_at``) reaches ``coverage``; rows with no
    summary word in their document are ignored, and every row's whole document when none has one."""
    kept = [(starts, row) for starts, row in zip(token_starts, offsets, strict=True) if row]
    longest = max((len(starts) for starts in token_starts), default=0)
    if not kept:
        return max(MIN_WINDOW, math.ceil(longest / STEP) * STEP)
    starts, rows = [k[0] for k in kept], [k[1] for k in kept]
    low, high = 1, max(1, math.ceil(longest / STEP))  # in steps; coverage at `high` steps is 1
    while low < high:
        middle = (low + high) // 2
        if coverage_at(middle * STEP, starts, rows) >= coverage:
            high = middle
        else:
            low = middle + 1
    return max(MIN_WINDOW, low * STEP)


def _spread(rows: Sequence[Example], count: int) -> list[Example]:
    if len(rows) <= count:
        return list(rows)
    return [rows[i * len(rows) // count] for i in range(count)]


def learn_document_window(tokenizer, rows: Sequence[Example], coverage: float = COVERAGE) -> Window:
    """The document window for ``rows`` (see the module's docstring), in ``tokenizer``'s tokens."""
    if not rows:
        raise ValueError("there are no training rows to learn the document window from; add training data or set "
                         "training.max_seq_len and evaluation.max_prompt_tokens")
    sample = _spread(rows, SAMPLE_ROWS)
    documents = [row.document for row in sample]
    common = common_words(documents)
    offsets = [summary_word_offsets(row.document, row.summary, common) for row in sample]
    encoded = tokenizer(documents, return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"]
    token_starts = [[start for start, _ in row] for row in encoded]
    tokens = shortest_window(token_starts, offsets, coverage)
    matched = sum(1 for row in offsets if row)
    return Window(tokens, f"{coverage:.0%} of the summary words found in their documents lie in the first {tokens} "
                          f"document tokens, over {matched} of {len(sample)} training rows")


def prompt_overhead(tokenizer, instructions: Iterable[str]) -> int:
    """Tokens the chat template and the longest of ``instructions`` add to a document."""
    return max(template_tokens(tokenizer, instruction) for instruction in set(instructions) or {""})


def summary_tokens(tokenizer, rows: Sequence[Example], percentile: int = SUMMARY_PERCENTILE) -> int:
    """The ``percentile``-th percentile of the summaries' token lengths."""
    encoded = tokenizer([row.summary for row in rows], add_special_tokens=False)["input_ids"]
    return nearest_rank([len(ids) for ids in encoded], percentile) if encoded else 0


def nearest_rank(values: Sequence[int], percentile: int) -> int:
    """The ``percentile``-th percentile of ``values`` by the nearest-rank method (a value that occurs)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(percentile / 100 * len(ordered)) - 1)]


def learn_max_seq_len(tokenizer, rows: Sequence[Example], instructions: Iterable[str],
                      context: int | None) -> Window:
    """``training.max_seq_len``: the chat template and instruction, the document window, the 99th-percentile summary
    and its end of turn, rounded up to a multiple of ``STEP`` and within the model's ``context``."""
    window = learn_document_window(tokenizer, rows)
    overhead, summary = prompt_overhead(tokenizer, instructions), summary_tokens(tokenizer, _spread(rows, SAMPLE_ROWS))
    wanted = math.ceil((overhead + window.tokens + summary + 2) / STEP) * STEP  # +2: end of turn and newline
    statistic = (f"{overhead} prompt + {window.tokens} document + {summary} summary tokens "
                 f"({SUMMARY_PERCENTILE}th percentile) + end of turn; {window.learned_from}")
    if context is not None and wanted > context:
        wanted, statistic = context, statistic + f"; capped by the model's context ({context})"
    return Window(wanted, statistic)


def learn_max_prompt_tokens(tokenizer, rows: Sequence[Example], instructions: Iterable[str],
                            limit: int | None = None) -> Window:
    """``evaluation.max_prompt_tokens``: the chat template, the longest instruction and the document window, at
    most ``limit`` (what the context leaves after generation)."""
    window = learn_document_window(tokenizer, rows)
    overhead = prompt_overhead(tokenizer, instructions)
    wanted, statistic = overhead + window.tokens, f"{overhead} prompt + {window.tokens} document tokens; " \
        f"{window.learned_from}"
    if limit is not None and wanted > limit:
        wanted, statistic = limit, statistic + f"; capped at {limit} by the model's context"
    return Window(wanted, statistic)


def resolve_max_seq_len(config: TrainingConfig, base_dir: Path, rows: Sequence[Example],
                        instructions: Iterable[str]) -> tuple[TrainingConfig, str]:
    """``config`` with ``max_seq_len`` as set, or learned from ``rows`` with the base model's tokenizer, and where
    it came from."""
    if config.max_seq_len is not None:
        return config, "training.max_seq_len"
    from transformers import AutoConfig, AutoTokenizer

    context = getattr(AutoConfig.from_pretrained(base_dir), "max_position_embeddings", None)
    learned = learn_max_seq_len(AutoTokenizer.from_pretrained(base_dir), rows, instructions, context)
    return config.model_copy(update={"max_seq_len": learned.tokens}), learned.learned_from

"""Row filters: pair checks on the document → summary pair, and Gopher-style document quality rules.

Each check returns ``None`` for a row it keeps, or ``(reason, detail)``: ``reason`` is the funnel's category and
``detail`` the human explanation stored with the rejected row. The Gopher rules follow Rae et al. (2021,
"Scaling Language Models", appendix A) with thresholds from :class:`~tuneforge.profiles.CleaningConfig`.
"""

from __future__ import annotations

import re

import numpy as np

from tuneforge.corpus.lengths import MIN_RATIO_CEILING, UNBOUNDED
from tuneforge.profiles import CleaningConfig

Problem = tuple[str, str] | None

_DIGITS = str.maketrans("", "", "0123456789")
_WORD_WITH_LETTER = re.compile(r"\S*[^\W\d_]\S*")
# ASCII text: letters and whitespace kept, all else deleted, so a word with no letter vanishes from the split.
_ASCII_WHITESPACE = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"  # what \s matches in ASCII (\x1c-\x1f become spaces)
_KEEP_LETTERS = bytes.maketrans(b"\x1c\x1d\x1e\x1f", b"    ")
_NOT_LETTER_OR_SPACE = bytes(code for code in range(256) if not (chr(code).isalpha() and code < 128)
                             and code not in _ASCII_WHITESPACE)


def pair_problem(document_words: int, summary: str, document: str, config: CleaningConfig) -> Problem:
    """Empty texts, length bounds, and a summary that copies or rivals its document in length."""
    if not document or not summary:
        return "empty", f"{'document' if not document else 'summary'} is empty"
    summary_words = len(summary.split())
    for reason, value, low, high, what in (
        ("document_length", document_words, config.min_document_words, config.max_document_words, "document"),
        ("summary_length", summary_words, config.min_summary_words, config.max_summary_words, "summary"),
    ):
        low, high = low or 1, high or UNBOUNDED  # None: not bounded (cleaning sets the learned bounds first)
        if not low <= value <= high:
            return reason, f"{what} has {value} words, outside [{low}, {high}]"
    if document in summary:
        return "summary_copies_document", "the summary repeats the whole document"
    ratio, limit = summary_words / document_words, config.max_summary_document_ratio or MIN_RATIO_CEILING
    if ratio > limit:
        return "summary_not_shorter", f"summary is {ratio:.0%} of the document's length (limit {limit:.0%})"
    return None


def quality_problem(
    text: str,
    whitespace_words: int,
    tokens: list[str],
    bigrams: np.ndarray,
    fivegrams: np.ndarray,
    config: CleaningConfig,
) -> Problem:
    """Gopher's quality and repetition rules on a document of ``whitespace_words`` words (the unit of the symbol
    and alphabetic-word rules), given its word tokens and their 2-gram and 5-gram hashes
    (:mod:`tuneforge.corpus.ngrams`), on which length and repetition are measured. Documents too short for a
    rule's statistic to mean anything are not judged by it."""
    if not tokens or not whitespace_words:
        return None
    if whitespace_words >= config.min_words_for_ratio_rules:
        problem = _ratio_problem(text, whitespace_words, tokens, config)
        if problem:
            return problem
    if whitespace_words >= config.min_words_for_repetition_rules:
        return _repetition_problem(text, _word_lengths(tokens), bigrams, fivegrams, config)
    return None


def _word_lengths(tokens: list[str]) -> np.ndarray:
    return np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))


def _ratio_problem(text: str, whitespace_words: int, tokens: list[str], config: CleaningConfig) -> Problem:
    mean_length = sum(map(len, tokens)) / len(tokens)
    if not config.min_mean_word_length <= mean_length <= config.max_mean_word_length:
        return "mean_word_length", (
            f"mean word length {mean_length:.1f} outside "
            f"[{config.min_mean_word_length}, {config.max_mean_word_length}]"
        )
    symbols = text.count("#") + text.count("...") + text.count("\u2026")
    if symbols / whitespace_words > config.max_symbol_word_ratio:
        return "symbol_ratio", f"{symbols} '#'/ellipsis symbols per {whitespace_words} words"
    digits = len(text) - len(text.translate(_DIGITS))
    visible = len(text) - text.count(" ") - text.count("\n")
    if digits / visible > config.max_digit_ratio:
        return "digit_ratio", f"{digits / visible:.0%} of characters are digits (limit {config.max_digit_ratio:.0%})"
    alpha_share = _words_with_a_letter(text) / whitespace_words
    if alpha_share < config.min_alpha_word_share:
        return "alphabetic_words", f"only {alpha_share:.0%} of words contain a letter"
    return None


def _words_with_a_letter(text: str) -> int:
    if text.isascii():
        return len(text.encode().translate(_KEEP_LETTERS, _NOT_LETTER_OR_SPACE).split())
    return len(_WORD_WITH_LETTER.findall(text))


def _repetition_problem(
    text: str, lengths: np.ndarray, bigrams: np.ndarray, fivegrams: np.ndarray, config: CleaningConfig
) -> Problem:
    if "\n" in text:
        lines = [line for line in text.split("\n") if line.strip()]
        duplicate_lines = len(lines) - len(set(lines))
        if lines and duplicate_lines / len(lines) > config.max_duplicate_line_share:
            return "duplicate_lines", f"{duplicate_lines} of {len(lines)} lines are repeats"
    characters = int(lengths.sum())
    if len(bigrams) > 1:
        value, count = _most_frequent(bigrams)
        if count > 1:
            position = int(np.flatnonzero(bigrams == value)[0])
            share = count * int(lengths[position] + lengths[position + 1]) / characters
            if share > config.max_top_ngram_share:
                return "top_ngram", f"the most frequent word pair covers {share:.0%} of the text"
    if len(fivegrams) > 1 and _has_repeats(fivegrams):
        # Like Gopher, only the repeats count, not the first occurrence of each 5-gram.
        _, first, inverse = np.unique(fivegrams, return_index=True, return_inverse=True)
        repeated_starts = np.flatnonzero(first[inverse] != np.arange(len(fivegrams)))
        covered = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.add.at(covered, repeated_starts, 1)
        np.add.at(covered, np.minimum(repeated_starts + 5, len(lengths)), -1)
        in_repeats = np.cumsum(covered[:-1]) > 0
        share = int(lengths[in_repeats].sum()) / characters
        if share > config.max_duplicate_ngram_share:
            return "duplicate_ngrams", f"repeated 5-word sequences cover {share:.0%} of the text"
    return None


def _most_frequent(values: np.ndarray) -> tuple[np.uint64, int]:
    ordered = np.sort(values)
    # np.concatenate, not np.r_: the same arrays without np.r_'s per-call parsing of its arguments
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    runs = np.diff(np.concatenate((starts, [len(ordered)])))
    top = int(np.argmax(runs))
    return ordered[starts[top]], int(runs[top])


def _has_repeats(values: np.ndarray) -> bool:
    ordered = np.sort(values)
    return bool((ordered[1:] == ordered[:-1]).any())

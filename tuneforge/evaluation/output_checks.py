"""Checks on generated summaries that ROUGE does not see: length, degenerate outputs, unsupported content.

Also the extractive lead baseline (a document's first sentences), which every model should beat.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tuneforge.corpus.ngrams import words

if TYPE_CHECKING:
    from tuneforge.pii.redactor import Redactor

# An output is repetitive when a word n-gram occurs this often, or when this share of its n-grams repeat an earlier
# one (rep-n, Welleck et al. 2020). Natural summaries reuse a phrase at most twice ("state of the art"); a decoding
# loop ("the model the model the model ...") does both.
_LOOP_OCCURRENCES = 3
_LOOP_REPEATED_SHARE = 0.25

DEGENERATE_FLAGS = ("empty", "truncated", "repetitive", "any")


def length_stats(texts: Sequence[str]) -> dict[str, float]:
    """Words per text: mean (to 2 decimals), median, min and max (all 0.0 when there are no texts)."""
    if not texts:
        return dict.fromkeys(("mean", "median", "min", "max"), 0.0)
    counts = np.array([len(words(text)) for text in texts], dtype=float)
    return {"mean": round(float(counts.mean()), 2), "median": float(np.median(counts)),
            "min": float(counts.min()), "max": float(counts.max())}


def degenerate_flags(prediction: str, finished: bool, repeated_ngram: int = 3) -> dict[str, bool]:
    """Why an output is unusable: ``empty`` (no word characters), ``truncated`` (generation hit max_new_tokens before
    the end-of-sequence token), ``repetitive`` (a decoding loop: some word ``repeated_ngram``-gram occurs three or
    more times, or a quarter or more of its n-grams repeat an earlier one), and ``any`` of them."""
    tokens = words(prediction)
    flags = {"empty": not tokens, "truncated": not finished, "repetitive": _is_repetitive(tokens, repeated_ngram)}
    return flags | {"any": any(flags.values())}


def _is_repetitive(tokens: list[str], n: int) -> bool:
    ngrams = Counter(tuple(tokens[start : start + n]) for start in range(len(tokens) - n + 1))
    if not ngrams:
        return False
    total = sum(ngrams.values())
    repeated_share = (total - len(ngrams)) / total
    return max(ngrams.values()) >= _LOOP_OCCURRENCES or repeated_share >= _LOOP_REPEATED_SHARE


def degenerate_rates(predictions: Sequence[str], finished: Sequence[bool], repeated_ngram: int = 3) -> dict[str, float]:
    """The share (0..1) of outputs raising each of ``degenerate_flags`` (all 0.0 when there are no outputs)."""
    if len(predictions) != len(finished):
        raise ValueError(f"one finished flag per prediction: {len(predictions)} predictions, {len(finished)} flags")
    counts: Counter[str] = Counter()
    for prediction, done in zip(predictions, finished, strict=True):
        counts.update(name for name, raised in degenerate_flags(prediction, done, repeated_ngram).items() if raised)
    total = len(predictions)
    return {name: round(counts[name] / total, 4) if total else 0.0 for name in DEGENERATE_FLAGS}


# --- Faithfulness proxies -------------------------------------------------------------------------------------------

# A standalone number: 1,000 / 3.5 / 42 / 12.5%. Digits glued to letters belong to a name (GPT-2, F1, 3D), and the
# second part of a version ("1.2.3") is skipped rather than read as ".3".
_NUMBER = re.compile(r"(?<![\w.])(?<![A-Za-z]-)(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?(?![\w%])")

# A word token for the entity proxy, keeping hyphenated names and digits together: GPT-2, BERT-base, T5.
_TOKEN = re.compile(r"\w+(?:-\w+)*")
_SENTENCE_GAP = re.compile(r"[.!?:;\n]")

# Capitalised words that start sentences or spans without naming anything (extended from common English starters).
_COMMON_CAPITALISED = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "it", "its", "we", "our", "us", "i", "you", "your", "he",
    "she", "his", "her", "they", "their", "them", "there", "here", "in", "on", "at", "by", "for", "from", "with",
    "without", "to", "of", "as", "into", "onto", "over", "under", "after", "before", "during", "between", "among",
    "about", "and", "or", "but", "nor", "so", "yet", "if", "when", "while", "where", "which", "who", "whom", "whose",
    "what", "why", "how", "because", "although", "though", "since", "unlike", "like", "despite", "however",
    "moreover", "furthermore", "additionally", "also", "finally", "first", "second", "third", "then", "thus", "hence",
    "therefore", "overall", "specifically", "instead", "besides", "both", "each", "every", "all", "some", "many",
    "most", "few", "several", "other", "another", "such", "no", "not", "only", "one", "two", "three"
})


@dataclass(frozen=True)
class UnsupportedContent:
    """Distinct numbers and entity-like names in a summary, and how many of them its document does not contain."""

    numbers: int
    unsupported_numbers: int
    entities: int
    unsupported_entities: int


def unsupported_content(summary: str, document: str) -> UnsupportedContent:
    """Count the summary's numbers and entity-like names that its document does not support.

    Numbers are compared by value after normalising (``1,000`` = ``1000``, ``12.50%`` = ``12.5``). Entities use a
    transparent proxy, not a trained NER model (none is available offline): see ``entity_mentions``. An entity is
    supported when its words occur (case-insensitively, as whole words, a plural ``s`` aside) in the document.
    """
    numbers = set(_numbers(summary))
    unsupported_numbers = numbers - set(_numbers(document))
    entities = set(entity_mentions(summary, context=document))
    unsupported_entities = {entity for entity in entities if not _mentions(document, entity)}
    return UnsupportedContent(len(numbers), len(unsupported_numbers), len(entities), len(unsupported_entities))


def faithfulness(
    summaries: Sequence[str], documents: Sequence[str], redactor: Redactor | None = None
) -> dict[str, float]:
    """Shares of unsupported numbers and entities over all rows (0.0 when there are none), with the raw counts; with
    a ``redactor``, also the share of outputs holding personal data or secrets their document does not contain
    (``pii_leak_rate``: a model repeating what it memorised in training, or making it up)."""
    if len(summaries) != len(documents):
        raise ValueError(f"one document per summary: {len(summaries)} summaries, {len(documents)} documents")
    totals: Counter[str] = Counter()
    for summary, document in zip(summaries, documents, strict=True):
        content = unsupported_content(summary, document)
        totals.update({"numbers": content.numbers, "unsupported_numbers": content.unsupported_numbers,
                       "entities": content.entities, "unsupported_entities": content.unsupported_entities})
    result = {
        "unsupported_number_share": _share(totals["unsupported_numbers"], totals["numbers"]),
        "unsupported_entity_share": _share(totals["unsupported_entities"], totals["entities"]),
        **{name: totals[name] for name in ("numbers", "unsupported_numbers", "entities", "unsupported_entities")},
    }
    if redactor is not None:
        leaks = sum(bool(values) for values in unsupported_personal_data(summaries, documents, redactor))
        result |= {"pii_leak_rate": _share(leaks, len(summaries)), "pii_leaks": leaks, "outputs": len(summaries)}
    return result


def unsupported_personal_data(
    summaries: Sequence[str], documents: Sequence[str], redactor: Redactor
) -> list[list[str]]:
    """Per summary, the kinds of the personal data and secrets the redactor finds in it that its document does not
    contain (the values themselves are never returned: they may be real)."""
    found = redactor.find(summaries)
    return [[span.kind for span in spans if summary[span.start : span.end] not in document]
            for summary, document, spans in zip(summaries, documents, found, strict=True)]


def _share(part: int, total: int) -> float:
    return round(part / total, 4) if total else 0.0


def _numbers(text: str) -> list[str]:
    return [_normalise_number(match) for match in _NUMBER.findall(text)]


def _normalise_number(token: str) -> str:
    value = token.replace(",", "").removesuffix("%")
    if "." in value:
        value = value.rstrip("0").removesuffix(".")
    return value


def entity_mentions(text: str, context: str = "") -> list[str]:
    """Entity-like names in ``text``, a proxy for named entities: runs of adjacent capitalised words ("Penn Treebank",
    "New York Times"), and acronyms or mixed-case names anywhere ("BERT", "GPT-2", "RoBERTa").

    Words capitalised only because they start a sentence are not names: common words are dropped from the start of a
    run ("The", "We", "In"), and so is a lone capitalised word opening a sentence when ``text`` or ``context`` uses it
    in lower case ("Results show ..." next to "the results").
    """
    lowercase_words = {token for token in _TOKEN.findall(f"{text} {context}") if token.islower()}
    mentions: list[str] = []
    run: list[str] = []
    run_opens_sentence = False
    previous_end = None
    for match in _TOKEN.finditer(text):
        token = match.group()
        gap = text[previous_end or 0 : match.start()]
        if run and (not gap.isspace() or not _is_capitalised(token)):
            mentions.extend(_name_in_run(run, run_opens_sentence, lowercase_words))
            run = []
        if _is_capitalised(token):
            if not run:
                run_opens_sentence = previous_end is None or _SENTENCE_GAP.search(gap) is not None
            run.append(token)
        previous_end = match.end()
    mentions.extend(_name_in_run(run, run_opens_sentence, lowercase_words))
    return mentions


def _is_capitalised(token: str) -> bool:
    return token[0].isupper() or _is_acronym_like(token)


def _is_acronym_like(token: str) -> bool:
    """BERT, GPT-2, RoBERTa, mT5, T5: an upper-case letter after the first character, or a capital with a digit."""
    return any(char.isupper() for char in token[1:]) or (token[0].isupper() and any(char.isdigit() for char in token))


def _name_in_run(run: list[str], opens_sentence: bool, lowercase_words: set[str]) -> list[str]:
    while run and run[0].lower() in _COMMON_CAPITALISED and not _is_acronym_like(run[0]):
        run = run[1:]
        opens_sentence = False
    if not run:
        return []
    if len(run) == 1 and opens_sentence and not _is_acronym_like(run[0]) and run[0].lower() in lowercase_words:
        return []
    return [" ".join(run)]


def _mentions(document: str, entity: str) -> bool:
    words_pattern = r"\s+".join(re.escape(part) for part in entity.lower().removesuffix("s").split())
    return re.search(rf"(?<!\w){words_pattern}s?(?!\w)", document.lower()) is not None


# --- Extractive lead baseline ---------------------------------------------------------------------------------------

# Abbreviations whose period does not end a sentence (compared lower-cased, without the final period).
_ABBREVIATIONS = frozenset({
    "cf", "vs", "al", "fig", "figs", "eq", "eqs", "sec", "secs", "tab", "no", "nos", "approx", "resp", "ref", "refs",
    "ch", "vol", "pp", "dr", "mr", "mrs", "ms", "prof", "st", "jr", "sr", "inc", "ltd", "co", "corp", "dept", "univ"
})
# A candidate boundary: sentence punctuation, any closing quotes or brackets, then whitespace.
_BOUNDARY = re.compile(r"[.!?]+[\"')\]]*\s+")
_LAST_WORD = re.compile(r"(\S+)$")
_INITIALS = re.compile(r"(?:[a-z]\.)*[a-z]")  # "J" of "J. Smith", "u.s" of "U.S. Army"


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences without splitting "e.g.", "et al.", "Fig. 2", initials ("J. Smith") or decimals.

    A boundary is ``.``, ``!`` or ``?`` followed by whitespace and a capital, digit, quote or bracket; a period after a
    known abbreviation or a single letter is not a boundary. NLTK's punkt model would need a data download.
    """
    sentences: list[str] = []
    start = 0
    for boundary in _BOUNDARY.finditer(text):
        following = text[boundary.end() : boundary.end() + 1]
        if not following or not (following.isupper() or following.isdigit() or following in "\"'([“‘"):
            continue
        if boundary.group().startswith(".") and _ends_with_abbreviation(text[start : boundary.start()]):
            continue
        sentences.append(text[start : boundary.end()].strip())
        start = boundary.end()
    sentences.append(text[start:].strip())
    return [sentence for sentence in sentences if sentence]


def _ends_with_abbreviation(text: str) -> bool:
    match = _LAST_WORD.search(text)
    if not match:
        return False
    word = match.group(1).lstrip("(\"'[").lower()
    return word in _ABBREVIATIONS or _INITIALS.fullmatch(word) is not None


def lead_summary(document: str, sentences: int = 1) -> str:
    """The extractive lead baseline: the document's first ``sentences`` sentences, with whitespace collapsed."""
    if sentences < 1:
        raise ValueError(f"lead_summary needs at least one sentence, got {sentences}")
    return " ".join(" ".join(sentence.split()) for sentence in split_sentences(document)[:sentences])

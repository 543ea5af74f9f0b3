"""Has the raw data drifted away from what the model was trained on?

The documents in ``data/raw/<source>/`` (read with the ingestion readers and ``source.yaml`` mapping, then
normalized as cleaning normalizes them) are compared with the training split ``data/curated/train.jsonl`` on:

- **length** in words: the two-sample Kolmogorov-Smirnov statistic, and the population stability index (PSI) over
  quantile bins of the training lengths;
- **vocabulary**: the out-of-vocabulary token rate against the training vocabulary, next to the rate held-out
  training text shows (half the training sample builds the vocabulary, the other half measures the baseline, so
  the threshold does not depend on sample size), and the Jensen-Shannon divergence of unigram distributions over
  the training sample's top-K words (plus one bucket for all other words);
- **language mix**: each language's share (py3langid, as cleaning identifies it) and the total variation distance.

Each comparison is made for all raw data against all training data, and for each source against the training rows
of that source (against all training rows when the source is new). The report drifts when any measure, overall or
of a source, exceeds its threshold. Large inputs are sampled deterministically: a bottom-k sample on a salted hash
of the row id keeps at most ``max_rows`` rows on each side, the same rows whatever the file order, streaming the raw
files with bounded memory.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial import distance

from tuneforge.corpus import readers
from tuneforge.corpus.language import identify_many
from tuneforge.corpus.mapping import to_example
from tuneforge.corpus.ngrams import words
from tuneforge.corpus.objectstore import ObjectStoreError
from tuneforge.corpus.readers import Problem, Skipped
from tuneforge.corpus.records import Example, read_examples
from tuneforge.corpus.sources import check_source_name, list_sources, load_source_config, read_options, source_entries
from tuneforge.corpus.text import normalize_text
from tuneforge.profiles import DriftConfig

OTHER_WORDS = "<other>"
ALL_SOURCES = "all"


class DriftInputError(ValueError):
    """The training data or the raw sources cannot be compared; the message says what is missing and where."""


# --- results --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """One drift measure. ``value`` is None when there were too few rows to judge (then it never drifts)."""

    name: str
    value: float | None
    threshold: float
    drifted: bool
    baseline: float | None = None  # what held-out training text shows on the same measure (OOV rate)
    detail: str = ""


@dataclass
class SourceDrift:
    source: str
    records: int  # readable records of the source (after mapping)
    unreadable: int  # records and files the readers could not read or map (ingestion quarantines them)
    sampled: int
    in_training: int  # sampled rows whose id is a training row
    reference: str  # which training rows this source was compared with
    measures: list[Measure]
    languages: dict[str, float]

    @property
    def drifted(self) -> bool:
        return any(measure.drifted for measure in self.measures)


@dataclass
class DriftReport:
    training_rows: int
    training_sampled: int
    raw_rows: int
    raw_sampled: int
    measures: list[Measure]
    sources: dict[str, SourceDrift]
    languages: dict[str, dict[str, float]]  # "training" / "raw" -> language -> share
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted(self) -> bool:
        return any(measure.drifted for measure in self.measures) or any(s.drifted for s in self.sources.values())

    def drifted_measures(self) -> list[str]:
        """``length_ks`` for an overall measure, ``<source>: length_ks`` for a source's."""
        found = [m.name for m in self.measures if m.drifted]
        for source in self.sources.values():
            found += [f"{source.source}: {m.name}" for m in source.measures if m.drifted]
        return found

    def measure(self, name: str, source: str = ALL_SOURCES) -> Measure:
        measures = self.measures if source == ALL_SOURCES else self.sources[source].measures
        return next(m for m in measures if m.name == name)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["drifted"] = self.drifted
        data["drifted_measures"] = self.drifted_measures()
        for name, source in self.sources.items():
            data["sources"][name]["drifted"] = source.drifted
        return data


# --- sampling -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampledDocument:
    id: str
    source: str
    words: int  # whitespace-separated words of the whole document
    text: str  # its first max_document_chars characters
    rank: int  # the salted hash that chose it
    language: str | None = None


class HashSample:
    """The ``capacity`` rows with the smallest salted hash of their id: a uniform sample that does not depend on
    the order rows arrive in, kept in a heap so memory stays bounded while streaming."""

    def __init__(self, capacity: int, salt: str) -> None:
        self.capacity, self.salt = capacity, salt
        self._heap: list[tuple[int, int, SampledDocument]] = []  # (-rank, arrival, row): the largest rank on top
        self._arrivals = itertools.count()

    def rank(self, row_id: str) -> int:
        digest = hashlib.blake2b(f"{self.salt}\x1f{row_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    def wants(self, rank: int) -> bool:
        return len(self._heap) < self.capacity or rank < -self._heap[0][0]

    def add(self, row: SampledDocument) -> None:
        """Keep ``row`` if its rank is among the ``capacity`` smallest so far."""
        if len(self._heap) < self.capacity:
            heapq.heappush(self._heap, (-row.rank, next(self._arrivals), row))
        elif row.rank < -self._heap[0][0]:
            heapq.heapreplace(self._heap, (-row.rank, next(self._arrivals), row))

    def rows(self) -> list[SampledDocument]:
        return sorted((entry[2] for entry in self._heap), key=lambda row: (row.rank, row.id))


def _sampled(example: Example, rank: int, max_chars: int, normalize: bool) -> SampledDocument:
    document = normalize_text(example.document) if normalize else example.document
    return SampledDocument(example.id, example.source, len(document.split()), document[:max_chars], rank,
                           example.language)


def _offer(example: Example, samples: list[HashSample], config: DriftConfig, normalize: bool) -> None:
    """Offer one row to several samples drawn with the same salt; it is normalized once, and only if one takes it."""
    rank = samples[0].rank(example.id)
    if any(sample.wants(rank) for sample in samples):
        row = _sampled(example, rank, config.max_document_chars, normalize)
        for sample in samples:
            sample.add(row)


# --- reading --------------------------------------------------------------------------------------------------


def read_raw_source(source_dir: Path) -> Iterator[Example | Problem]:
    """Every record of one raw source as ingestion maps it (``source.yaml``), or the ``Problem`` ingestion would
    quarantine; nothing is written. A source on object storage is read from its location."""
    source = check_source_name(source_dir.name)
    config = load_source_config(source_dir)
    options = read_options(source_dir, config)
    for entry in source_entries(source_dir, config, options):
        if isinstance(entry, Skipped):
            continue
        if isinstance(entry, Problem):
            yield entry
            continue
        for item in readers.read_file(entry, options):
            yield item if isinstance(item, Problem) else to_example(item, config.fields, source)


@dataclass
class _RawSource:
    sample: HashSample
    records: int = 0
    unreadable: int = 0


def _sample_raw(raw_dir: Path, config: DriftConfig) -> tuple[dict[str, _RawSource], list[SampledDocument]]:
    """Per-source samples and the overall one, in one streaming pass over every raw source."""
    sources = list_sources(raw_dir)
    if not sources:
        state = "does not exist" if not raw_dir.exists() else "has no source directory with data files"
        raise DriftInputError(f"{raw_dir} {state}: there is no raw data to compare with the training data.")
    overall = HashSample(config.max_rows, config.salt)
    found: dict[str, _RawSource] = {}
    for source in sources:
        state = found[source] = _RawSource(HashSample(config.max_rows, config.salt))
        try:
            for item in read_raw_source(raw_dir / source):
                if isinstance(item, Problem):
                    state.unreadable += 1
                    continue
                state.records += 1
                _offer(item, [state.sample, overall], config, normalize=True)
        except ObjectStoreError as error:  # a source on object storage that cannot be reached now
            raise DriftInputError(f"source {source!r}: {error}. Check the location's server and credentials, "
                                  "then rerun.") from None
    return found, overall.rows()


def _sample_training(
    train_path: Path, config: DriftConfig
) -> tuple[list[Example], HashSample, dict[str, HashSample]]:
    """The training rows, a sample of them all, and a sample of each source's rows."""
    if not train_path.is_file():
        raise DriftInputError(f"{train_path} does not exist: materialize curated_dataset first, so there is "
                              "training data to compare the raw data with.")
    rows = read_examples(train_path)
    if not rows:
        raise DriftInputError(f"{train_path} has no rows: there is no training data to compare the raw data with.")
    overall = HashSample(config.max_rows, config.salt)
    by_source: dict[str, HashSample] = {}
    for row in rows:
        source = by_source.setdefault(row.source, HashSample(config.max_rows, config.salt))
        _offer(row, [source, overall], config, normalize=False)
    return rows, overall, by_source


# --- measures -------------------------------------------------------------------------------------------------


def length_ks(reference: list[int], current: list[int], config: DriftConfig) -> Measure:
    result = stats.ks_2samp(reference, current)
    statistic, p_value = float(result.statistic), float(result.pvalue)
    return Measure(
        "length_ks", statistic, config.ks_threshold,
        statistic > config.ks_threshold and p_value < config.ks_max_p_value,
        detail=f"p = {p_value:.3g} (must be < {config.ks_max_p_value}); median words "
               f"{np.median(reference):g} in training, {np.median(current):g} in raw",
    )


def length_psi(reference: list[int], current: list[int], config: DriftConfig) -> Measure:
    bins = min(config.psi_bins, min(len(reference), len(current)) // config.min_rows_per_bin)
    if bins < 2:
        return Measure("length_psi", None, config.psi_threshold, False,
                       detail=f"too few rows for two bins of {config.min_rows_per_bin}")
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    expected = _bin_shares(reference, edges)
    actual = _bin_shares(current, edges)
    psi = float(np.sum((actual - expected) * np.log(actual / expected)))
    return Measure("length_psi", psi, config.psi_threshold, psi > config.psi_threshold,
                   detail=f"{len(edges) + 1} quantile bins of the training lengths")


def _bin_shares(values: list[int], edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    # An empty bin would make PSI infinite: it counts as a tenth of a row.
    return np.maximum(counts, 0.1) / max(len(values), 1)


def _token_counts(rows: Iterable[SampledDocument]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for row in rows:
        counts.update(words(row.text))
    return counts


def _content_tokens(counts: Counter[str]) -> Counter[str]:
    """Tokens without digits: numbers are an open class, every new table would look out of vocabulary."""
    return Counter({token: n for token, n in counts.items() if not any(c.isdigit() for c in token)})


def _oov_rate(counts: Counter[str], vocabulary: set[str] | dict[str, int]) -> float:
    total = sum(counts.values())
    return sum(n for token, n in counts.items() if token not in vocabulary) / total if total else 0.0


def oov_rate(reference: list[SampledDocument], current_counts: Counter[str], config: DriftConfig) -> Measure:
    """The raw text's OOV rate against a vocabulary built from half the training sample, with the other half's rate
    as the baseline: both are measured against the same vocabulary, so the comparison is fair at any size."""
    vocabulary_half = [row for row in reference if row.rank % 2 == 0]
    held_out = [row for row in reference if row.rank % 2 == 1]
    vocabulary = _content_tokens(_token_counts(vocabulary_half))
    baseline = _oov_rate(_content_tokens(_token_counts(held_out)), vocabulary)
    rate = _oov_rate(_content_tokens(current_counts), vocabulary)
    threshold = baseline + config.max_oov_increase
    return Measure("oov_rate", rate, threshold, rate > threshold, baseline=baseline,
                   detail=f"vocabulary of {len(vocabulary)} words from {len(vocabulary_half)} training rows; "
                          f"threshold = held-out training rate {baseline:.3f} + {config.max_oov_increase}")


def unigram_js(reference_counts: Counter[str], current_counts: Counter[str], config: DriftConfig) -> Measure:
    top = [token for token, _ in reference_counts.most_common(config.top_k_words)]
    p, q = _distribution(reference_counts, top), _distribution(current_counts, top)
    divergence = float(distance.jensenshannon(p, q, base=2) ** 2) if p.sum() and q.sum() else 1.0
    return Measure("unigram_js", divergence, config.js_threshold, divergence > config.js_threshold,
                   detail=f"over the training sample's top {len(top)} words and one bucket for the rest; raw text "
                          f"has {_share_outside(current_counts, top):.1%} of its tokens in that bucket")


def _distribution(counts: Counter[str], top: list[str]) -> np.ndarray:
    in_top = [counts.get(token, 0) for token in top]
    return np.array([*in_top, sum(counts.values()) - sum(in_top)], dtype=float)


def _share_outside(counts: Counter[str], top: list[str]) -> float:
    total = sum(counts.values())
    return (total - sum(counts.get(token, 0) for token in top)) / total if total else 0.0


def language_shares(rows: list[SampledDocument]) -> dict[str, float]:
    counts = Counter(row.language or "unknown" for row in rows)
    return {language: round(n / len(rows), 4) for language, n in counts.most_common()} if rows else {}


def language_tvd(reference: dict[str, float], current: dict[str, float], config: DriftConfig) -> Measure:
    distance_ = 0.5 * sum(abs(reference.get(lang, 0.0) - current.get(lang, 0.0)) for lang in {*reference, *current})
    return Measure("language_tvd", distance_, config.tvd_threshold, distance_ > config.tvd_threshold,
                   detail=f"training {_shares_text(reference)}; raw {_shares_text(current)}")


def _shares_text(shares: dict[str, float]) -> str:
    return ", ".join(f"{language} {share:.0%}" for language, share in list(shares.items())[:5]) or "none"


MEASURES = ("length_ks", "length_psi", "oov_rate", "unigram_js", "language_tvd")


def compare(reference: list[SampledDocument], current: list[SampledDocument], config: DriftConfig) -> list[Measure]:
    """Every measure of ``current`` (raw rows) against ``reference`` (training rows); rows carry their language."""
    if len(reference) < config.min_rows or len(current) < config.min_rows:
        why = f"too few rows to judge: {len(reference)} training and {len(current)} raw (at least {config.min_rows})"
        thresholds = {"length_ks": config.ks_threshold, "length_psi": config.psi_threshold,
                      "oov_rate": config.max_oov_increase, "unigram_js": config.js_threshold,
                      "language_tvd": config.tvd_threshold}
        return [Measure(name, None, thresholds[name], False, detail=why) for name in MEASURES]
    reference_lengths, current_lengths = [row.words for row in reference], [row.words for row in current]
    reference_counts, current_counts = _token_counts(reference), _token_counts(current)
    return [
        length_ks(reference_lengths, current_lengths, config),
        length_psi(reference_lengths, current_lengths, config),
        oov_rate(reference, current_counts, config),
        unigram_js(reference_counts, current_counts, config),
        language_tvd(language_shares(reference), language_shares(current), config),
    ]


# --- the report -----------------------------------------------------------------------------------------------


def measure_drift(raw_dir: Path, train_path: Path, config: DriftConfig | None = None) -> DriftReport:
    """Compare the raw sources under ``raw_dir`` with the training rows in ``train_path``."""
    config = config or DriftConfig()
    training_rows, training_sample, training_by_source = _sample_training(train_path, config)
    raw_sources, raw_sample = _sample_raw(raw_dir, config)
    identify_missing = _LanguageCache({row.language for row in training_rows if row.language}, config)
    training = identify_missing(training_sample.rows())
    raw_sample = identify_missing(raw_sample)
    training_ids = {row.id for row in training_rows}

    sources = {}
    for name, state in raw_sources.items():
        rows = identify_missing(state.sample.rows())
        own = identify_missing(training_by_source[name].rows()) if name in training_by_source else []
        if len(own) >= config.min_rows:
            reference, described = own, "training rows of this source"
        else:
            reference = training
            described = ("all training rows (the source has too few training rows of its own)" if own
                         else "all training rows (a new source)")
        sources[name] = SourceDrift(
            source=name, records=state.records, unreadable=state.unreadable, sampled=len(rows),
            in_training=sum(row.id in training_ids for row in rows), reference=described,
            measures=compare(reference, rows, config), languages=language_shares(rows),
        )
    return DriftReport(
        training_rows=len(training_rows), training_sampled=len(training),
        raw_rows=sum(state.records for state in raw_sources.values()), raw_sampled=len(raw_sample),
        measures=compare(training, raw_sample, config), sources=sources,
        languages={"training": language_shares(training), "raw": language_shares(raw_sample)},
        config=config.model_dump(),
    )


class _LanguageCache:
    """Fills in the language of rows that lack one (raw rows; training rows carry cleaning's), once per row id:
    the overall samples hold the same rows as the per-source ones."""

    def __init__(self, wanted: set[str], config: DriftConfig) -> None:
        self.wanted, self.min_probability = wanted, config.min_language_probability
        self._known: dict[str, str] = {}

    def __call__(self, rows: list[SampledDocument]) -> list[SampledDocument]:
        unknown = {row.id: row.text for row in rows if not row.language and row.id not in self._known}
        found = identify_many(list(unknown.values()), self.wanted, self.min_probability)
        self._known.update(zip(unknown, (language for language, _ in found), strict=True))
        return [row if row.language else replace(row, language=self._known[row.id]) for row in rows]


def render_markdown(report: DriftReport) -> str:
    """One table of every measure, overall and per source, with its threshold and verdict."""
    lines = ["| scope | measure | value | threshold | drifted | detail |", "|---|---|---|---|---|---|"]
    scopes = [(f"all ({report.raw_sampled} raw vs {report.training_sampled} training rows)", report.measures)]
    scopes += [(f"{s.source} ({s.sampled} rows)", s.measures) for s in report.sources.values()]
    for scope, measures in scopes:
        for measure in measures:
            value = "n/a" if measure.value is None else _number(measure.value)
            verdict = "**yes**" if measure.drifted else "no"
            detail = measure.detail.replace("|", "\\|")
            threshold = _number(measure.threshold)
            lines.append(f"| {scope} | {measure.name} | {value} | {threshold} | {verdict} | {detail} |")
    verdict = "Drift: " + ", ".join(report.drifted_measures()) if report.drifted else "No drift beyond thresholds."
    return "\n".join([f"**{verdict}**", "", *lines])


def _number(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else str(value)

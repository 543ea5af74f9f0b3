"""Cleaning one source: a streaming funnel from ingested rows to kept and rejected rows.

Pass 1 reads the rows in chunks (in worker processes for large files, or Ray tasks: ``tuneforge.corpus.engines``)
and runs, per row: Unicode repair, markup stripping, whitespace normalization, pair checks, language identification,
Gopher quality rules and PII redaction. Survivors are spooled to disk with their dedup keys; pass 2 finds exact and
near duplicates from the keys alone, shard by shard (``tuneforge.corpus.shards``); pass 3 streams the spool into the
kept and rejected files. Memory holds a shard of the keys and the row offsets, never the corpus.

Every removed row lands in the rejected file with its ``step``, ``reason`` and ``detail`` (and ``duplicate_of``
for duplicates); the returned :class:`~tuneforge.corpus.funnel.Funnel` counts them.
"""

from __future__ import annotations

import gc
import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tuneforge.atomic import AtomicFile
from tuneforge.corpus import dedup
from tuneforge.corpus.engines import Engine, EngineConfig, open_engine, workers_for
from tuneforge.corpus.funnel import Funnel, Step
from tuneforge.corpus.language import identify_many
from tuneforge.corpus.lengths import LengthBounds, source_bounds
from tuneforge.corpus.ngrams import ngram_hashes, word_hashes, words
from tuneforge.corpus.quality import Problem, pair_problem, quality_problem
from tuneforge.corpus.rowfiles import RowFiles
from tuneforge.corpus.shards import ShardedDuplicateFinder
from tuneforge.corpus.text import normalize_whitespace, repair_unicode, strip_markup
from tuneforge.pii.lexicon import lexicon
from tuneforge.profiles import CleaningConfig, PiiConfig

if TYPE_CHECKING:
    from tuneforge.pii.redactor import Redactor

TEXT_STEPS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("unicode_repair", repair_unicode),
    ("markup", strip_markup),
    ("whitespace", normalize_whitespace),
)
STEPS = (*(name for name, _ in TEXT_STEPS), "pair_checks", "language", "quality", "pii", "exact_dedup", "near_dedup")
CHUNK_ROWS = 1000


@dataclass
class Cleaned:
    funnel: Funnel
    bounds: LengthBounds  # the length bounds applied, learned or configured
    dedup_shards: int = 0  # the shards the dedup keys were partitioned into (an engine fact: the outputs are the same)


@dataclass
class ChunkResult:
    funnel: Funnel
    kept: list[str]  # JSON lines
    rejected: list[str]
    exact_keys: np.ndarray
    bands: np.ndarray


def clean_file(
    rows_path: Path,
    kept_path: Path,
    rejected_path: Path,
    config: CleaningConfig,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    engine: EngineConfig | None = None,
) -> Cleaned:
    """Clean the canonical rows in ``rows_path``; both outputs are replaced atomically. Length bounds the config
    leaves unset are learned from the rows first. ``workers`` overrides the config's process count for the local
    engine (1 runs in this process); ``engine`` may send the chunks to Ray instead, for the same bytes out;
    ``progress`` is called with the rows done after each chunk."""
    engine = engine or EngineConfig()
    if "PERSON" in config.pii.kinds and config.pii.ner != "off":
        lexicon()  # on a new machine, worked out here once rather than in every worker at the same time
    with open_engine(engine, workers_for(rows_path.stat().st_size, config.workers, workers)) as runner:
        runner.warm(_load_detectors, config.pii)
        bounds = source_bounds(rows_path, config)  # meanwhile the workers load their detectors
        config = bounds.apply(config)
        shards = engine.shards_for(rows_path.stat().st_size)
        funnel = _clean_with(runner, shards, rows_path, kept_path, rejected_path, config, progress)
    return Cleaned(funnel, bounds, shards)


def _clean_with(
    runner: Engine, shards: int, rows_path: Path, kept_path: Path, rejected_path: Path,
    config: CleaningConfig, progress: Callable[[int], None] | None,
) -> Funnel:
    kept_path.parent.mkdir(parents=True, exist_ok=True)
    rejected_path.parent.mkdir(parents=True, exist_ok=True)
    funnel = Funnel.of(*STEPS)
    with (
        tempfile.TemporaryDirectory(dir=kept_path.parent, prefix=".clean-") as tmp,
        AtomicFile(kept_path) as kept,
        AtomicFile(rejected_path) as rejected,
    ):
        finder = ShardedDuplicateFinder(runner.key_shards(Path(tmp, "keys"), shards))
        spool_path = Path(tmp, "spool.jsonl")
        survivors = RowFiles([spool_path])
        with spool_path.open("wb") as spool:
            for chunk in runner.map_ordered(clean_chunk, _chunks(rows_path), config):
                funnel.merge(chunk.funnel)
                rejected.writelines(chunk.rejected)
                for line in chunk.kept:
                    survivors.append(0, spool.tell())
                    spool.write(line.encode("utf-8"))
                finder.add(chunk.exact_keys, chunk.bands)
                if progress is not None:
                    progress(funnel.rows_in)
        with survivors:
            duplicates = finder.find(dedup.NearDuplicateCheck(
                survivors, config.near_duplicate_threshold, config.near_duplicate_summary_threshold,
                config.near_duplicate_ngram,
            ))
        _count_duplicates(funnel, finder.rows, duplicates)
        _split_spool(spool_path, duplicates, kept, rejected)
        kept.commit()
        rejected.commit()
    return funnel.check()


def clean_chunk(lines: list[str], config: CleaningConfig) -> ChunkResult:
    """Pass 1 over a chunk of JSON lines: every per-row step (language identification over the chunk at once), PII
    redaction over the chunk's survivors at once (the NER model runs one batch per chunk), then the dedup keys of
    the survivors. Rows keep their order in both outputs."""
    funnel = Funnel.of(*STEPS[:-2])
    rows = [json.loads(line) for line in lines]
    outcomes: list[np.ndarray | str | int] = [_repair_row(row, config, funnel) for row in rows]
    unjudged = [index for index, outcome in enumerate(outcomes) if isinstance(outcome, int)]
    languages = identify_many([rows[index]["document"] for index in unjudged], config.languages,
                              config.min_language_score)
    for index, (language, probability) in zip(unjudged, languages, strict=True):
        outcomes[index] = _judge_row(rows[index], outcomes[index], language, probability, config, funnel)
    rejected = [outcome for outcome in outcomes if isinstance(outcome, str)]
    survivors = [row for row, outcome in zip(rows, outcomes, strict=True) if not isinstance(outcome, str)]
    shingle_sets = [outcome for outcome in outcomes if not isinstance(outcome, str)]
    from tuneforge.pii.redactor import redactor_for  # Presidio and spaCy: seconds of imports, for cleaning only

    step = funnel["pii"]
    step.rows_in += len(survivors)
    for index, found in enumerate(_redact(survivors, redactor_for(config.pii))):
        if found:
            step.changed += 1
            step.changes.update(found)
            shingle_sets[index] = dedup.shingles(survivors[index]["document"], config.near_duplicate_ngram)
    kept = [_dump(row) for row in survivors]
    exact_keys = [dedup.exact_key(row["document"], row["summary"]) for row in survivors]
    bands = dedup.band_keys(shingle_sets, bands=config.minhash_bands, rows=config.minhash_rows)
    return ChunkResult(funnel, kept, rejected, np.array(exact_keys, dtype=np.uint64), bands)


def _repair_row(row: dict[str, Any], config: CleaningConfig, funnel: Funnel) -> int | str:
    """The text repairs and pair checks (``row`` is updated in place): the document's word count if the row goes on
    to language identification, else its rejected JSON line."""
    for name, fix in TEXT_STEPS:
        step = _enter(funnel, name)
        if _apply(row, fix):
            step.changed += 1

    step = _enter(funnel, "pair_checks")
    document_words = len(row["document"].split())
    problem = pair_problem(document_words, row["summary"], row["document"], config)
    return _reject(step, row, problem) if problem else document_words


def _judge_row(
    row: dict[str, Any], document_words: int, language: str, probability: float, config: CleaningConfig,
    funnel: Funnel,
) -> np.ndarray | str:
    """The language verdict and the quality rules: the document's shingles if the row survives, else its rejected
    JSON line."""
    step = _enter(funnel, "language")
    row["language"] = language
    if language not in config.languages or probability < config.min_language_score:
        return _reject(step, row, ("language", (
            f"identified as {language!r} with probability {probability:.2f}; keeping {config.languages} "
            f"at probability >= {config.min_language_score}"
        )))

    step = _enter(funnel, "quality")
    document = row["document"]
    tokens = words(document)
    hashes = word_hashes([tokens])[0]
    fivegrams = ngram_hashes(hashes, 5)
    problem = quality_problem(document, document_words, tokens, ngram_hashes(hashes, 2), fivegrams, config)
    if problem:
        return _reject(step, row, problem)
    ngram = config.near_duplicate_ngram
    return fivegrams if ngram == 5 else ngram_hashes(hashes, ngram)


def _enter(funnel: Funnel, name: str) -> Step:
    step = funnel[name]
    step.rows_in += 1
    return step


def _apply(row: dict[str, Any], fix: Callable[[str], str]) -> bool:
    """Apply ``fix`` to the document, the summary and every reference; True when anything changed."""
    before = (row["document"], row["summary"], row.get("references") or [])
    row["document"], row["summary"] = fix(before[0]), fix(before[1])
    row["references"] = [fix(reference) for reference in before[2]]
    return (row["document"], row["summary"], row["references"]) != before


def _redact(rows: list[dict[str, Any]], redactor: Redactor) -> list[Counter[str]]:
    """Redact PII in place in every row's document, summary and references; how many of each kind per row."""
    texts = [text for row in rows for text in (row["document"], row["summary"], *(row.get("references") or []))]
    redacted = iter(redactor.redact_many(texts))
    counts = []
    for row in rows:
        (row["document"], found), (row["summary"], in_summary) = next(redacted), next(redacted)
        found = found + in_summary
        references = []
        for _ in row.get("references") or []:
            text, in_reference = next(redacted)
            references.append(text)
            found += in_reference
        row["references"] = references
        counts.append(found)
    return counts


def _reject(step: Step, row: dict[str, Any], problem: Problem) -> str:
    reason, detail = problem
    step.removed[reason] += 1
    return _dump({**row, "step": step.name, "reason": reason, "detail": detail})


def _dump(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"


def _count_duplicates(funnel: Funnel, rows: int, duplicates: dict[int, dedup.Duplicate]) -> None:
    exact, near = funnel["exact_dedup"], funnel["near_dedup"]
    exact.rows_in = rows
    exact.removed["exact_duplicate"] = sum(d.reason == "exact_duplicate" for d in duplicates.values())
    near.rows_in = exact.rows_out
    near.removed["near_duplicate"] = sum(d.reason == "near_duplicate" for d in duplicates.values())


def _split_spool(spool_path: Path, duplicates: dict[int, dedup.Duplicate], kept, rejected) -> None:  # noqa: ANN001
    """Pass 3: survivors to ``kept`` in input order, duplicates to ``rejected`` naming what they duplicate."""
    referenced = dedup.Duplicate.referenced(duplicates)
    ids: dict[int, str] = {}
    with spool_path.open(encoding="utf-8") as spool:
        for index, line in enumerate(spool):
            duplicate = duplicates.get(index)
            if duplicate is None:
                kept.write(line)
                if index in referenced:
                    ids[index] = json.loads(line)["id"]
                continue
            row = json.loads(line)
            ids[index] = row["id"]
            rejected.write(_dump({**row, **duplicate.fields(ids)}))


def _chunks(rows_path: Path) -> Iterator[list[str]]:
    batch: list[str] = []
    with rows_path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                batch.append(line)
                if len(batch) == CHUNK_ROWS:
                    yield batch
                    batch = []
    if batch:
        yield batch


def _load_detectors(pii: PiiConfig) -> None:
    """A worker's warm-up: the detectors, the name model and the word sets that tell terms from names load once,
    then their objects leave the garbage collector's full passes, which rescanned them about once a chunk (5% of the
    cleaning time)."""
    from tuneforge.pii.redactor import redactor_for

    redactor_for(pii).redact("Dear Jane Doe, this warms the detectors up.")
    lexicon()
    gc.freeze()

"""Curation: cleaned sources → one deduplicated, decontaminated dataset split train/validation/test.

Three streaming passes over the cleaned files: (1) dedup keys and each row's split; (2) the n-grams of the test
rows that survive dedup; (3) every row to its split file, or to ``removed.jsonl`` when it duplicates a row of
another source or overlaps a test row. Rows keep their source order, so the output is byte-stable.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tuneforge.atomic import AtomicFile, write_text_atomically
from tuneforge.corpus import dedup
from tuneforge.corpus.decontaminate import HeldOutNgrams
from tuneforge.corpus.engines import Engine, EngineConfig, open_engine, workers_for
from tuneforge.corpus.funnel import Funnel
from tuneforge.corpus.records import SPLITS
from tuneforge.corpus.rowfiles import RowFiles
from tuneforge.corpus.shards import ShardedDuplicateFinder
from tuneforge.corpus.split import split_of
from tuneforge.profiles import CleaningConfig, SplitConfig

REMOVED_FILE = "removed.jsonl"
MANIFEST_FILE = "manifest.json"
STEPS = ("exact_dedup", "near_dedup", "decontamination")
_BATCH = 1000


@dataclass
class Curated:
    funnel: Funnel
    sizes: dict[str, int]
    per_source: dict[str, dict[str, int]]  # source -> {split or removal reason: rows}
    dedup_shards: int = 0  # the shards the dedup keys were partitioned into (an engine fact, not in the manifest)


def curate_sources(
    cleaned: dict[str, Path], out_dir: Path, split: SplitConfig, cleaning: CleaningConfig,
    erasures: list[str] | None = None, engine: EngineConfig | None = None,
) -> Curated:
    """Write ``<split>.jsonl``, ``removed.jsonl`` and ``manifest.json`` into ``out_dir`` (each replaced
    atomically); ``cleaned`` maps each source to its cleaned rows, in the order that decides which duplicate stays.
    ``erasures`` (the erasure requests the rows honour) is recorded in the manifest, for the model card. ``engine``
    says where the dedup keys are computed and sharded (the same bytes out on any)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    engine = engine or EngineConfig()
    shards = engine.shards_for(_size(cleaned.values()))
    with (
        RowFiles(list(cleaned.values())) as rows,
        open_engine(engine, workers_for(_size(cleaned.values()), cleaning.workers)) as runner,
        tempfile.TemporaryDirectory(dir=out_dir, prefix=".curate-") as tmp,
    ):
        finder = ShardedDuplicateFinder(runner.key_shards(Path(tmp), shards))
        row_splits = _index(rows, split, cleaning, finder, runner)
        duplicates = finder.find(dedup.NearDuplicateCheck(
            rows, cleaning.near_duplicate_threshold, cleaning.near_duplicate_summary_threshold,
            cleaning.near_duplicate_ngram,
        ))
        test_index = HeldOutNgrams(
            ((row["id"], row["document"], row["summary"]) for row in _rows_of(rows, row_splits, "test", duplicates)),
            cleaning.decontamination_ngram,
        )
        curated = _write(rows, row_splits, duplicates, test_index, cleaning, out_dir)
        curated.dedup_shards = shards
    manifest = {
        "sources": list(cleaned),
        "split": split.model_dump(),
        "sizes": curated.sizes,
        "per_source": curated.per_source,
        "funnel": curated.funnel.as_rows(),
    }
    if erasures:
        manifest["erasures"] = list(erasures)
    write_text_atomically(out_dir / MANIFEST_FILE, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return curated


def _index(rows: RowFiles, split: SplitConfig, cleaning: CleaningConfig, finder: ShardedDuplicateFinder,
           runner: Engine) -> np.ndarray:
    """Pass 1: every row's split, and its dedup keys into ``finder``; the keys are computed by ``runner``."""
    splits: list[np.ndarray] = []
    for row_splits, keys, bands in runner.map_ordered(batch_keys, _batches(rows), split, cleaning):
        splits.append(row_splits)
        finder.add(keys, bands)
    return np.concatenate(splits) if splits else np.zeros(0, dtype=np.int8)


def _batches(rows: RowFiles) -> Iterator[list[str]]:
    batch: list[str] = []
    for _, line in rows.scan():
        batch.append(line)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def batch_keys(lines: list[str], split: SplitConfig, cleaning: CleaningConfig
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch's split codes, exact keys and MinHash band keys."""
    batch = [json.loads(line) for line in lines]
    splits = np.array([SPLITS.index(split_of(row["group"], split)) for row in batch], dtype=np.int8)
    keys = np.array([dedup.exact_key(row["document"], row["summary"]) for row in batch], dtype=np.uint64)
    shingle_sets = [dedup.shingles(row["document"], cleaning.near_duplicate_ngram) for row in batch]
    return splits, keys, dedup.band_keys(shingle_sets, bands=cleaning.minhash_bands, rows=cleaning.minhash_rows)


def _size(paths: Iterable[Path]) -> int:
    return sum(path.stat().st_size for path in paths)


def _rows_of(
    rows: RowFiles, row_splits: np.ndarray, split: str, duplicates: dict[int, dedup.Duplicate]
) -> Iterator[dict[str, Any]]:
    wanted = SPLITS.index(split)
    for index, line in rows.scan():
        if row_splits[index] == wanted and index not in duplicates:
            yield json.loads(line)


def _write(
    rows: RowFiles,
    row_splits: np.ndarray,
    duplicates: dict[int, dedup.Duplicate],
    test_index: HeldOutNgrams,
    cleaning: CleaningConfig,
    out_dir: Path,
) -> Curated:
    funnel = Funnel.of(*STEPS)
    per_source: dict[str, Counter[str]] = {}
    ids: dict[int, str] = {}
    referenced = dedup.Duplicate.referenced(duplicates)
    with contextlib.ExitStack() as stack:
        names = [f"{name}.jsonl" for name in SPLITS] + [REMOVED_FILE]
        files = {name: stack.enter_context(AtomicFile(out_dir / name)) for name in names}
        for index, line in rows.scan():
            row = json.loads(line)
            if index in referenced:
                ids[index] = row["id"]
            split = SPLITS[row_splits[index]]
            removal = _removal(index, row, split, duplicates, ids, test_index, cleaning)
            counts = per_source.setdefault(row["source"], Counter())
            if removal is None:
                funnel.record()
                files[f"{split}.jsonl"].write(line)
                counts[split] += 1
                continue
            step, reason, extra = removal
            funnel.record(step, reason)
            counts[reason] += 1
            files[REMOVED_FILE].write(json.dumps({**row, "split": split, "step": step, "reason": reason, **extra},
                                                 ensure_ascii=False, sort_keys=True) + "\n")
        for handle in files.values():
            handle.commit()
    sizes = {name: sum(counts[name] for counts in per_source.values()) for name in SPLITS}
    return Curated(funnel.check(), sizes, {source: dict(counts) for source, counts in per_source.items()})


def _removal(
    index: int,
    row: dict[str, Any],
    split: str,
    duplicates: dict[int, dedup.Duplicate],
    ids: dict[int, str],
    test_index: HeldOutNgrams,
    cleaning: CleaningConfig,
) -> tuple[str, str, dict[str, str]] | None:
    duplicate = duplicates.get(index)
    if duplicate is not None:
        fields = duplicate.fields(ids)
        return fields.pop("step"), fields.pop("reason"), fields
    if split == "test":
        return None
    found = test_index.match(row["document"], row["summary"], cleaning.decontamination_threshold)
    if found is None:
        return None
    return "decontamination", "test_overlap", {
        "detail": f"shares {found.shared} word {test_index.n}-grams ({found.share:.0%}) with test row {found.test_id}",
        "overlaps": found.test_id,
    }

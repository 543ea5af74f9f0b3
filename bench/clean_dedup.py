"""Cleaning + deduplication benchmark: tuneforge's ``clean_file`` against datatrove on the same corpus, in one run.

The corpus (``bench/corpus.py``) is built from real ACLSum and SciTLDR sentences with injected exact and near
duplicates and PII of known positions. Each system runs in its own subprocess, timed from just before its work
starts to just after its outputs are written (imports and interpreter start-up excluded for both); the parent
samples the subprocess and all its descendants every 50 ms for peak memory (RSS summed over processes, and PSS,
which counts pages shared by forked workers once).

Measured for both: documents per second (input documents / wall seconds), peak memory, near-duplicate precision and
recall against the injected ground truth (exact and near copies separately and together), PII redaction recall per
kind, which rows each system removed and why, and the throughput ratio ours/datatrove.

datatrove 0.10.1 is configured as close to our cleaning as it goes (see ``datatrove_pipeline``):
JsonlReader → GopherQualityFilter → GopherRepetitionFilter → language filter → PIIFormatter → JsonlWriter +
MinhashDedupSignature; MinhashDedupBuckets; MinhashDedupCluster; JsonlReader → MinhashDedupFilter → JsonlWriter.
Its language filter needs a fastText model download, impossible here, so a small ``BaseFilter`` runs py3langid on
as many first characters as our cleaning reads (``tuneforge.corpus.language.SAMPLE_CHARS``). Exact duplicates are
left to MinHash (identical documents have identical signatures): a separate exact-dedup pipeline would read the data
once more.

Usage: ``python -m bench.clean_dedup --docs 50000 --seed 0 [--repeat 3] [--keep]``; results are printed and written
to ``bench/.work/results.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.corpus import PII_KINDS, WORK_DIR, CorpusSpec, build_corpus, jaccard, word_jaccard, word_shingles
from tuneforge.pii.kinds import KINDS

SYSTEMS = ("ours", "datatrove")
DEFAULT_OURS = "tuneforge.corpus.clean:clean_file"
# Placeholders our redaction writes.
OUR_PLACEHOLDERS = set(KINDS)
# datatrove's PIIFormatter replaces e-mails and public IPv4 addresses by these (its defaults).
DATATROVE_REPLACEMENTS = {
    "EMAIL": ("email@example.com", "firstname.lastname@example.org"),
    "IP": ("22.214.171.124", "126.96.36.199", "188.8.131.52", "184.108.40.206", "220.127.116.11", "18.104.22.168"),
}
_TOKEN = re.compile(r"[A-Za-z0-9]+")

# --------------------------------------------------------------------------------------------------------------
# Memory: the peak over a process tree, sampled


class TreeSampler:
    """Samples a process and all its descendants: summed RSS every ``interval`` seconds, summed PSS (pages shared
    between processes counted once) every ``pss_every`` samples; the list of descendants is refreshed every 5
    samples. Cheap enough (about 1% of a core) not to disturb what it measures."""

    def __init__(self, pid: int, interval: float = 0.05, pss_every: int = 5):
        import psutil

        self._psutil = psutil
        self.root = psutil.Process(pid)
        self.interval = interval
        self.pss_every = pss_every
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_process_rss = 0  # the largest single process at any sample
        # the same without the file and shared-memory pages it maps (Ray's object store is shared memory: every
        # process that wrote or read an object counts its pages in RSS)
        self.peak_process_private = 0
        self.peak_processes = 0
        self._cpu_seconds: dict[int, float] = {}  # last seen user+system seconds of each process of the tree
        self._machine_busy_start = self._machine_busy()
        self.other_cpu_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        # CPU time the machine spent on anything but the measured tree while it ran: other work skews timings.
        machine = self._machine_busy() - self._machine_busy_start
        self.other_cpu_seconds = max(0.0, machine - sum(self._cpu_seconds.values()))

    def _machine_busy(self) -> float:
        times = self._psutil.cpu_times()
        return sum(times) - times.idle - getattr(times, "iowait", 0.0)

    def _run(self) -> None:
        psutil = self._psutil
        processes: list[Any] = [self.root]
        tick = 0
        while not self._stop.is_set():
            if tick % 5 == 0:
                with contextlib.suppress(psutil.Error):
                    processes = [self.root, *self.root.children(recursive=True)]
                for process in processes:
                    with contextlib.suppress(psutil.Error):
                        cpu = process.cpu_times()
                        self._cpu_seconds[process.pid] = cpu.user + cpu.system
            full = tick % self.pss_every == 0
            rss = pss = 0
            for process in processes:
                with contextlib.suppress(psutil.Error):
                    if full:
                        info = process.memory_full_info()
                        pss += info.pss
                    else:
                        info = process.memory_info()
                    rss += info.rss
                    self.peak_process_rss = max(self.peak_process_rss, info.rss)
                    self.peak_process_private = max(self.peak_process_private, info.rss - info.shared)
            self.peak_rss = max(self.peak_rss, rss)
            if full:
                self.peak_pss = max(self.peak_pss, pss)
            self.peak_processes = max(self.peak_processes, len(processes))
            tick += 1
            self._stop.wait(self.interval)


def busy_warning() -> float:
    """CPU use of the whole machine over the last second, with a warning when something else is running: both
    systems use every CPU, so other work skews the comparison."""
    import psutil

    busy = psutil.cpu_percent(interval=1.0)
    if busy > 20:
        print(f"  warning: the CPUs were {busy:.0f}% busy just before this run; other processes running now will "
              "skew the timings", flush=True)
    return busy


def run_child(args: list[str], log_path: Path) -> dict[str, Any]:
    """Run ``python -m bench.clean_dedup --child ...`` and return its timing report plus the sampled peaks."""
    command = [sys.executable, "-m", "bench.clean_dedup", *args]
    busy_before = busy_warning()
    started = time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parent.parent)
        with TreeSampler(process.pid) as sampler:
            code = process.wait()
    if code != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(command)} failed with exit code {code}; log {log_path}:\n{tail}")
    report_path = Path(args[args.index("--out") + 1]) / "timing.json"
    report = json.loads(report_path.read_text())
    report |= {
        "peak_rss_mb": round(sampler.peak_rss / 2**20, 1),
        "peak_pss_mb": round(sampler.peak_pss / 2**20, 1),
        "processes": sampler.peak_processes,
        "child_wall_seconds": round(time.perf_counter() - started, 2),
        "cpu_busy_percent_before": busy_before,
        "other_cpu_seconds": round(sampler.other_cpu_seconds, 1),
    }
    return report


# --------------------------------------------------------------------------------------------------------------
# The two systems (these run in the child process)


def run_ours(corpus_dir: Path, out: Path, function: str, workers: int | None, ner: str | None) -> dict[str, Any]:
    from tuneforge.profiles import CleaningConfig, PiiConfig

    module, name = function.split(":")
    clean_file = getattr(importlib.import_module(module), name)
    config = CleaningConfig()
    if workers is not None:
        config = config.model_copy(update={"workers": workers})
    if ner is not None:
        config = config.model_copy(update={"pii": PiiConfig(ner=ner)})
    started = time.perf_counter()
    cleaned = clean_file(corpus_dir / "rows.jsonl", out / "kept.jsonl", out / "rejected.jsonl", config)
    seconds = time.perf_counter() - started
    funnel = getattr(cleaned, "funnel", cleaned)  # clean_file returned the funnel itself before length bounds
    summary = {key: getattr(funnel, key, None) for key in ("rows_in", "rows_out", "removed", "changed")}
    return {"seconds": seconds, "funnel": summary, "config": config.model_dump()}


def language_sample_chars() -> int:
    """How much of a document our language identification reads (the datatrove side reads the same)."""
    try:
        from tuneforge.corpus.language import SAMPLE_CHARS
    except ImportError:
        return 400
    return SAMPLE_CHARS


def code_version() -> dict[str, str]:
    """The commit checked out and a hash of the cleaning code as it is on disk (the work tree may differ from the
    commit)."""
    import hashlib

    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted([*root.glob("tuneforge/corpus/*.py"), root / "tuneforge/profiles.py"]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"commit": commit, "cleaning_code_sha256": digest.hexdigest()[:16]}


def _language_filter_class():  # noqa: ANN202 - built lazily so the parent never imports datatrove
    from datatrove.pipeline.filters.base_filter import BaseFilter

    class Py3LangidFilter(BaseFilter):
        """datatrove's LanguageFilter needs a fastText model download; this one uses py3langid (bundled model) on
        the first ``sample_chars`` characters, as our cleaning does."""

        name = "🌍 py3langid"

        def __init__(self, languages: tuple[str, ...] = ("en",), min_score: float = 0.5, sample_chars: int = 200,
                     exclusion_writer: Any = None):
            super().__init__(exclusion_writer)
            self.languages = set(languages)
            self.min_score = min_score
            self.sample_chars = sample_chars
            self._identifier = None

        def filter(self, doc: Any) -> bool | tuple[bool, str]:
            if self._identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            language, score = self._identifier.classify(doc.text[: self.sample_chars])
            doc.metadata["language"] = language
            if language in self.languages and score >= self.min_score:
                return True
            return False, "language"

    return Py3LangidFilter


def _regex_tokenizer() -> Any:
    from datatrove.utils.word_tokenizers import WordTokenizer

    class RegexWordTokenizer(WordTokenizer):
        """Words and single punctuation marks by one regex: much cheaper than datatrove's English default (a blank
        spaCy pipeline with a sentencizer). Only word_tokenize is used by the steps benchmarked here."""

        def __init__(self) -> None:
            super().__init__("en")
            self._pattern = re.compile(r"\w+(?:[-'.@:]\w+)*|[^\w\s]")

        def word_tokenize(self, text: str) -> list[str]:
            return self._pattern.findall(text)

        def sent_tokenize(self, text: str) -> list[str]:
            return [text]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            return [(0, len(text))]

    return RegexWordTokenizer()


def datatrove_pipeline(shards: Path, out: Path, workers: int, config: Any, tokenizer: str = "spacy") -> list[Any]:
    """The four datatrove executors, in order. Filter thresholds follow our CleaningConfig where datatrove has the
    same rule; its rules we have no equivalent of are switched off (stop words, bullets, ellipsis lines, paragraph
    and character-fraction repetition); ours it has no equivalent of (digit share, summary rules) are absent."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.formatters import PIIFormatter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    def writer(name: str) -> JsonlWriter:
        return JsonlWriter(str(out / name), compression=None)

    minhash = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)  # datatrove's defaults: 112 hashes
    # "en" is datatrove's default English word tokenizer (spaCy); "regex" a cheaper one, passed the same way.
    language = "en" if tokenizer == "spacy" else _regex_tokenizer()
    logs = out / "logs"
    stage1 = LocalPipelineExecutor(
        pipeline=[
            JsonlReader(str(shards), text_key="document", id_key="id"),
            GopherQualityFilter(
                min_doc_words=config.min_document_words,
                max_doc_words=config.max_document_words,
                min_avg_word_length=config.min_mean_word_length,
                max_avg_word_length=config.max_mean_word_length,
                max_symbol_word_ratio=config.max_symbol_word_ratio,
                max_bullet_lines_ratio=None,
                max_ellipsis_lines_ratio=None,
                max_non_alpha_words_ratio=config.min_alpha_word_share,
                min_stop_words=None,
                exclusion_writer=writer("removed/gopher_quality"),
                language=language,
            ),
            GopherRepetitionFilter(
                dup_line_frac=config.max_duplicate_line_share,
                dup_para_frac=None,
                dup_line_char_frac=None,
                dup_para_char_frac=None,
                top_n_grams=((2, config.max_top_ngram_share),),
                dup_n_grams=((5, config.max_duplicate_ngram_share),),
                exclusion_writer=writer("removed/gopher_repetition"),
                language=language,
            ),
            _language_filter_class()(
                languages=tuple(config.languages), min_score=config.min_language_score,
                sample_chars=language_sample_chars(), exclusion_writer=writer("removed/language"),
            ),
            PIIFormatter(),
            writer("filtered"),
            MinhashDedupSignature(output_folder=str(out / "minhash/signatures"), config=minhash, language=language),
        ],
        tasks=workers, workers=workers, logging_dir=str(logs / "1-filter-signatures"),
    )
    stage2 = LocalPipelineExecutor(
        pipeline=[MinhashDedupBuckets(str(out / "minhash/signatures"), str(out / "minhash/buckets"), config=minhash)],
        tasks=minhash.num_buckets, workers=workers, logging_dir=str(logs / "2-buckets"),
    )
    stage3 = LocalPipelineExecutor(
        pipeline=[MinhashDedupCluster(str(out / "minhash/buckets"), str(out / "minhash/remove"), config=minhash,
                                      save_cluster_id=True)],
        tasks=1, workers=1, logging_dir=str(logs / "3-cluster"),
    )
    stage4 = LocalPipelineExecutor(
        pipeline=[
            JsonlReader(str(out / "filtered")),
            MinhashDedupFilter(str(out / "minhash/remove"), exclusion_writer=writer("removed/minhash"),
                               load_cluster_ids=True),
            writer("kept"),
        ],
        tasks=workers, workers=workers, logging_dir=str(logs / "4-filter"),
    )
    return [stage1, stage2, stage3, stage4]


def run_datatrove(corpus_dir: Path, out: Path, workers: int, tokenizer: str) -> dict[str, Any]:
    from tuneforge.corpus.lengths import source_bounds
    from tuneforge.profiles import CleaningConfig

    # datatrove gets the same document length bounds our cleaning learns from this corpus (its timed run does not
    # include learning them; ours does).
    config = source_bounds(corpus_dir / "rows.jsonl", CleaningConfig()).apply(CleaningConfig())
    shards = shard_corpus(corpus_dir, workers)
    stages = datatrove_pipeline(shards, out, workers, config, tokenizer)
    started = time.perf_counter()
    for stage in stages:
        stage.run()
    seconds = time.perf_counter() - started
    filtered = list((out / "filtered").glob("*.jsonl"))
    if len(filtered) != workers:
        raise RuntimeError(f"expected {workers} filtered shards, found {len(filtered)}: MinHash ranks would not match")
    return {"seconds": seconds, "workers": workers, "tokenizer": tokenizer}


def shard_corpus(corpus_dir: Path, shards: int) -> Path:
    """datatrove parallelizes over files: the corpus split into ``shards`` contiguous files (prepared once, not
    timed)."""
    target = corpus_dir / f"shards-{shards}"
    done = target / ".complete"
    if done.exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    lines = (corpus_dir / "rows.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    size = -(-len(lines) // shards)
    for index in range(shards):
        (target / f"{index:05d}.jsonl").write_text("".join(lines[index * size : (index + 1) * size]), encoding="utf-8")
    done.touch()
    return target


def child_main(args: argparse.Namespace) -> None:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.child == "ours":
        report = run_ours(args.corpus, out, args.ours_func, args.ours_workers, args.ours_ner)
    else:
        report = run_datatrove(args.corpus, out, args.workers, args.datatrove_tokenizer)
    report["ru_maxrss_self_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    report["ru_maxrss_children_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    (out / "timing.json").write_text(json.dumps(report, indent=2, default=str))


# --------------------------------------------------------------------------------------------------------------
# Reading each system's outputs into one shape: kept {id: text}, removed {id: (reason, representative id)}


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_ours(out: Path) -> tuple[dict[str, str], dict[str, tuple[str, str | None]]]:
    kept = {row["id"]: row["document"] for row in _read_jsonl(out / "kept.jsonl")}
    removed = {
        row["id"]: (row.get("reason", "?"), row.get("duplicate_of")) for row in _read_jsonl(out / "rejected.jsonl")
    }
    return kept, removed


def load_datatrove(out: Path) -> tuple[dict[str, str], dict[str, tuple[str, str | None]]]:
    kept_rows = [row for path in sorted((out / "kept").glob("*.jsonl")) for row in _read_jsonl(path)]
    kept = {row["id"]: row["text"] for row in kept_rows}
    cluster_keeper = {row["metadata"]["minhash_cluster_id"]: row["id"] for row in kept_rows
                      if row["metadata"].get("minhash_cluster_id", -1) != -1}
    removed: dict[str, tuple[str, str | None]] = {}
    for step in ("gopher_quality", "gopher_repetition", "language"):
        for path in sorted((out / "removed" / step).glob("*.jsonl")):
            for row in _read_jsonl(path):
                reason = row["metadata"].get("filter_reason", step)
                removed[row["id"]] = (reason if reason == step else f"{step}:{reason}", None)
    for path in sorted((out / "removed" / "minhash").glob("*.jsonl")):
        for row in _read_jsonl(path):
            removed[row["id"]] = ("minhash_duplicate", cluster_keeper.get(row["metadata"].get("minhash_cluster_id")))
    return kept, removed


def is_duplicate_reason(reason: str) -> bool:
    return reason.endswith("_duplicate")


# --------------------------------------------------------------------------------------------------------------
# Scoring against the ground truth


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def score_duplicates(truth: dict[str, Any], order: dict[str, int], documents: dict[str, dict[str, str]],
                     kept: dict[str, str], removed: dict[str, tuple[str, str | None]]) -> dict[str, Any]:
    """Cluster-based scoring, independent of which copy a system keeps.

    A cluster is a base row and its copies (n rows). Ideally one is kept and n-1 removed as duplicates. Precision:
    removals as duplicates that fall in a cluster, at most n-1 per cluster, over all removals as duplicates.
    Recall: over clusters whose rows were all either kept or removed as duplicates (a row removed by a quality or
    language filter leaves the cluster out), the survivor is the base row if kept, else the first kept row in file
    order; every other kept row is a missed copy, every other copy is caught. Per kind: caught copies of that kind
    (near, or exact) over copies of that kind.
    """
    members: dict[str, list[str]] = defaultdict(list)
    for row_id, (_, cluster, _, _) in truth["clusters"].items():
        members[cluster].append(row_id)
    dup_removed = {row_id for row_id, (reason, _) in removed.items() if is_duplicate_reason(reason)}
    true_positives = 0
    for cluster_rows in members.values():
        true_positives += min(sum(row in dup_removed for row in cluster_rows), len(cluster_rows) - 1)
    injected = Counter(kind for kind, *_ in truth["clusters"].values() if kind != "base")
    caught: Counter[str] = Counter()
    copies: Counter[str] = Counter()
    excluded_clusters = 0
    for cluster, cluster_rows in members.items():
        if any(row not in kept and row not in dup_removed for row in cluster_rows):
            excluded_clusters += 1
            continue
        survivors = sorted((row for row in cluster_rows if row in kept), key=order.__getitem__)
        survivor = cluster if cluster in kept else (survivors[0] if survivors else None)
        for row in cluster_rows:
            kind = truth["clusters"][row][0]
            if kind == "base":
                continue
            copies[kind] += 1
            if row == survivor or row not in kept:
                caught[kind] += 1
    # Removals as duplicates that are not justified: what the representative they were matched to looks like.
    false_positive_rows = []
    for cluster_rows in members.values():
        removed_here = sorted((row for row in cluster_rows if row in dup_removed), key=order.__getitem__)
        false_positive_rows += removed_here[len(cluster_rows) - 1 :]
    false_positive_rows += [row for row in dup_removed if row not in truth["clusters"]]
    examples = []
    similarities = []
    for row in false_positive_rows:
        representative = removed[row][1]
        if representative in documents:
            similarity = jaccard(word_shingles(documents[row]["document"]),
                                 word_shingles(documents[representative]["document"]))
            similarities.append(similarity)
            if len(examples) < 5:
                examples.append({
                    "row": row, "duplicate_of": representative, "doc_5gram_jaccard": round(similarity, 3),
                    "summary_word_jaccard": round(word_jaccard(documents[row]["summary"],
                                                               documents[representative]["summary"]), 3),
                    "reason": removed[row][0],
                })
    wrong_links = 0
    for row in dup_removed & truth["clusters"].keys():
        representative = removed[row][1]
        if representative is not None and truth["clusters"].get(representative, [None, None])[1] != \
                truth["clusters"][row][1]:
            wrong_links += 1
    return {
        "removed_as_duplicate": len(dup_removed),
        "true_positives": true_positives,
        "precision": _ratio(true_positives, len(dup_removed)),
        "recall": _ratio(sum(caught.values()), sum(copies.values())),
        "recall_exact": _ratio(caught["exact"], copies["exact"]),
        "recall_near": _ratio(caught["near"], copies["near"]),
        "injected": dict(injected),
        "evaluated_copies": dict(copies),
        "clusters": len(members),
        "clusters_left_out": excluded_clusters,
        "false_positives": len(false_positive_rows),
        "false_positive_jaccard_max": round(max(similarities), 3) if similarities else None,
        "false_positive_jaccard_median": round(statistics.median(similarities), 3) if similarities else None,
        "false_positives_with_jaccard_ge_0.8": sum(s >= 0.8 for s in similarities),
        "false_positive_examples": examples,
        "duplicate_of_outside_cluster": wrong_links,
    }


def _span(text: str, left: str, right: str) -> str | None:
    start = text.find(left)
    if start < 0:
        return None
    start += len(left)
    end = text.find(right, start)
    return text[start:end] if end >= 0 else None


def score_pii(truth: dict[str, Any], kept: dict[str, str], system: str) -> dict[str, Any]:
    """An injected value counts as redacted when it no longer appears in the kept row's document ("recall", the
    benchmark's criterion), and as fully redacted when, in addition, no piece of it (a run of 2+ letters/digits)
    is left between the words around it ("full recall": e.g. a phone number whose last group survived)."""
    if system == "ours":
        strip = re.compile(r"\[(?:" + "|".join(sorted(OUR_PLACEHOLDERS)) + r")\]")
    else:
        strip = re.compile("|".join(re.escape(v) for values in DATATROVE_REPLACEMENTS.values() for v in values))
    found: Counter[str] = Counter()
    redacted: Counter[str] = Counter()
    fully: Counter[str] = Counter()
    lost_context: Counter[str] = Counter()
    misses: dict[str, list[str]] = defaultdict(list)
    for row, kind, secret, left, right in truth["pii"]:
        if row not in kept:
            continue
        text = kept[row]
        found[kind] += 1
        if secret in text:
            if len(misses[kind]) < 3:
                misses[kind].append(secret)
            continue
        redacted[kind] += 1
        span = _span(text, left, right)
        if span is None:
            lost_context[kind] += 1
            continue
        pieces = {token for token in _TOKEN.findall(secret) if len(token) >= 2}
        if not pieces & set(_TOKEN.findall(strip.sub(" ", span))):
            fully[kind] += 1
        elif len(misses[f"{kind} (partly)"]) < 3:
            misses[f"{kind} (partly)"].append(f"{secret!r} -> {span!r}")
    per_kind = {
        kind: {"in_kept_rows": found[kind], "recall": _ratio(redacted[kind], found[kind]),
               "full_recall": _ratio(fully[kind], found[kind])}
        for kind in PII_KINDS
    }
    return {
        "per_kind": per_kind,
        "recall": _ratio(sum(redacted.values()), sum(found.values())),
        "full_recall": _ratio(sum(fully.values()), sum(found.values())),
        "values_in_kept_rows": sum(found.values()),
        "context_lost": sum(lost_context.values()),
        "missed_examples": dict(misses),
    }


def spurious_redactions(truth: dict[str, Any], kept: dict[str, str], system: str) -> dict[str, Any]:
    """Placeholders (ours) or replacement values (datatrove) in kept rows that had no PII injected: redactions of
    text that was not PII we put there (the corpus is scientific prose, so mostly over-redaction)."""
    with_pii = {row for row, *_ in truth["pii"]}
    counts: Counter[str] = Counter()
    examples: list[str] = []
    if system == "ours":
        pattern = re.compile(r"\[(" + "|".join(sorted(OUR_PLACEHOLDERS)) + r")\]")
    else:
        pattern = re.compile("|".join(f"(?P<{kind}>" + "|".join(map(re.escape, values)) + ")"
                                      for kind, values in DATATROVE_REPLACEMENTS.items()))
    for row, text in kept.items():
        if row in with_pii:
            continue
        for match in pattern.finditer(text):
            kind = match.group(1) if system == "ours" else match.lastgroup
            counts[kind] += 1
            if len(examples) < 8:
                examples.append(f"{row}: ...{text[max(match.start() - 50, 0) : match.end() + 30]}...")
    return {"count": sum(counts.values()), "per_kind": dict(counts), "examples": examples}


def score_system(system: str, out: Path, truth: dict[str, Any], order: dict[str, int],
                 documents: dict[str, dict[str, str]]) -> dict[str, Any]:
    kept, removed = load_ours(out) if system == "ours" else load_datatrove(out)
    singletons_removed = Counter(reason for row, (reason, _) in removed.items() if row not in truth["clusters"])
    unaccounted = len(documents) - len(kept.keys() | removed.keys())
    return {
        "kept": len(kept),
        "removed": len(removed),
        "unaccounted": unaccounted,
        "removed_by_reason": dict(Counter(reason for reason, _ in removed.values()).most_common()),
        "clean_rows_removed_by_reason": dict(singletons_removed.most_common()),
        "duplicates": score_duplicates(truth, order, documents, kept, removed),
        "pii": score_pii(truth, kept, system),
        "spurious_redactions": spurious_redactions(truth, kept, system),
    }


# --------------------------------------------------------------------------------------------------------------
# Report


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def print_report(results: dict[str, Any]) -> None:
    systems = [s for s in SYSTEMS if s in results["systems"]]
    rows: list[tuple[str, ...]] = [("", *systems)]

    def add(label: str, getter: Any, digits: int = 3) -> None:
        rows.append((label, *(_fmt(getter(results["systems"][s]), digits) for s in systems)))

    add("docs/s", lambda r: r["docs_per_second"], 0)
    add("wall seconds (median)", lambda r: r["seconds"], 1)
    add("peak RSS, tree sum (MB)", lambda r: r["peak_rss_mb"], 0)
    add("peak PSS, tree sum (MB)", lambda r: r["peak_pss_mb"], 0)
    add("processes (max)", lambda r: r["processes"])
    add("kept rows", lambda r: r["score"]["kept"])
    add("dup precision", lambda r: r["score"]["duplicates"]["precision"])
    add("dup recall (all)", lambda r: r["score"]["duplicates"]["recall"])
    add("dup recall exact", lambda r: r["score"]["duplicates"]["recall_exact"])
    add("dup recall near", lambda r: r["score"]["duplicates"]["recall_near"])
    add("dup false positives", lambda r: r["score"]["duplicates"]["false_positives"])
    add("PII recall (all)", lambda r: r["score"]["pii"]["recall"])
    add("PII full recall (all)", lambda r: r["score"]["pii"]["full_recall"])
    for kind in PII_KINDS:
        add(f"  PII recall {kind}", lambda r, k=kind: r["score"]["pii"]["per_kind"][k]["recall"])
    add("spurious redactions", lambda r: r["score"]["spurious_redactions"]["count"])
    add("clean rows removed", lambda r: sum(r["score"]["clean_rows_removed_by_reason"].values()))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print()
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
    print()
    for system in systems:
        score = results["systems"][system]["score"]
        print(f"{system}: removed by reason {score['removed_by_reason']}")
        print(f"{system}: clean rows (no injected copy) removed by reason {score['clean_rows_removed_by_reason']}")
        if score["pii"]["missed_examples"]:
            print(f"{system}: PII misses, e.g. {json.dumps(score['pii']['missed_examples'])[:1500]}")
        if score["spurious_redactions"]["examples"]:
            print(f"{system}: spurious redactions, e.g. {score['spurious_redactions']['examples'][:3]}")
        if score["duplicates"]["false_positive_examples"]:
            print(f"{system}: duplicate false positives, e.g. {score['duplicates']['false_positive_examples'][:3]}")
    if results.get("throughput_ratio") is not None:
        print(f"\nthroughput ratio ours/datatrove: {results['throughput_ratio']:.2f}")
    print(f"notes: {' '.join(results['notes'])}")


# --------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Benchmark our cleaning + dedup against datatrove.")
    parser.add_argument("--docs", type=int, default=50_000, help="documents in the corpus (default 50,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="runs per system; medians are reported")
    parser.add_argument("--keep", action="store_true", help="keep the systems' output directories")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of: ours,datatrove")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="datatrove tasks and workers")
    parser.add_argument("--ours-workers", type=int, default=None,
                        help="CleaningConfig.workers for ours (default: the profile default, 0 = one per CPU)")
    parser.add_argument("--ours-ner", choices=("cued", "pairs", "all", "off"), default=None,
                        help="cleaning.pii.ner for ours (default: the profile default)")
    parser.add_argument("--ours-func", default=DEFAULT_OURS,
                        help=f"module:function to benchmark (default {DEFAULT_OURS})")
    parser.add_argument("--datatrove-tokenizer", choices=("spacy", "regex"), default="spacy",
                        help="datatrove's word tokenizer: spacy (its English default) or a cheaper regex")
    parser.add_argument("--work-dir", type=Path, default=WORK_DIR)
    parser.add_argument("--results", type=Path, default=None, help="default: <work-dir>/results.json")
    # Internal: run one system (the parent starts these).
    parser.add_argument("--child", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args)
        return

    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}")
    spec = CorpusSpec(args.docs, args.seed)
    corpus_dir = args.work_dir / f"corpus-{spec.key()}"
    print(f"corpus: {args.docs} documents, seed {args.seed} -> {corpus_dir}", flush=True)
    info = build_corpus(spec, corpus_dir)
    print(f"  {info.base} base, {info.near} near copies, {info.exact} exact copies, {info.pii_values} PII values, "
          f"{info.bytes / 2**20:.0f} MiB (built in {info.seconds}s or reused)", flush=True)
    if "datatrove" in systems:
        shard_corpus(corpus_dir, args.workers)

    runs_dir = args.work_dir / "runs" / time.strftime("%Y%m%d-%H%M%S")
    reports: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
    last_out: dict[str, Path] = {}
    for repeat in range(args.repeat):
        for system in systems if repeat % 2 == 0 else reversed(systems):
            out = runs_dir / f"{system}-{repeat}"
            child_args = ["--child", system, "--corpus", str(corpus_dir), "--out", str(out),
                          "--workers", str(args.workers), "--ours-func", args.ours_func,
                          "--datatrove-tokenizer", args.datatrove_tokenizer]
            if args.ours_workers is not None:
                child_args += ["--ours-workers", str(args.ours_workers)]
            if args.ours_ner is not None:
                child_args += ["--ours-ner", args.ours_ner]
            out.mkdir(parents=True, exist_ok=True)
            report = run_child(child_args, runs_dir / f"{system}-{repeat}.log")
            reports[system].append(report)
            print(f"  {system} run {repeat + 1}/{args.repeat}: {report['seconds']:.1f}s, "
                  f"{args.docs / report['seconds']:.0f} docs/s, peak RSS {report['peak_rss_mb']:.0f} MB "
                  f"(PSS {report['peak_pss_mb']:.0f} MB); CPU used by other processes meanwhile: "
                  f"{report['other_cpu_seconds']:.0f}s", flush=True)
            if system in last_out and not args.keep:
                shutil.rmtree(last_out[system], ignore_errors=True)
            last_out[system] = out

    truth = json.loads(Path(info.truth_path).read_text())
    documents: dict[str, dict[str, str]] = {}
    order: dict[str, int] = {}
    for position, row in enumerate(_read_jsonl(Path(info.rows_path))):
        documents[row["id"]] = {"document": row["document"], "summary": row["summary"]}
        order[row["id"]] = position

    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join(["python -m bench.clean_dedup", *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "code": code_version(),
        "corpus": asdict(info),
        "repeat": args.repeat,
        "systems": {},
        "notes": [
            f"datatrove: language filter is py3langid on the first {language_sample_chars()} characters, as ours"
            " (its fastText LanguageFilter needs a model download);"
            " exact duplicates are left to MinHash (5-grams, 14 buckets x 8 hashes);"
            " PIIFormatter only handles e-mails and public IPv4 addresses;"
            f" word tokenizer: {args.datatrove_tokenizer};"
            f" input split into {args.workers} files beforehand (not timed).",
            "ours: CleaningConfig() defaults" + (f", workers={args.ours_workers}" if args.ours_workers is not None
                                                 else "")
            + (f", pii.ner={args.ours_ner}" if args.ours_ner is not None else "") + f", {args.ours_func}.",
        ],
    }
    for system in systems:
        runs = reports[system]
        seconds = statistics.median(r["seconds"] for r in runs)
        results["systems"][system] = {
            "seconds": round(seconds, 2),
            "docs_per_second": round(args.docs / seconds, 1),
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
            "peak_pss_mb": statistics.median(r["peak_pss_mb"] for r in runs),
            "processes": max(r["processes"] for r in runs),
            "runs": runs,
            "score": score_system(system, last_out[system], truth, order, documents),
        }
    if {"ours", "datatrove"} <= set(systems):
        results["throughput_ratio"] = round(
            results["systems"]["ours"]["docs_per_second"] / results["systems"]["datatrove"]["docs_per_second"], 3
        )
    print_report(results)
    results_path = args.results or args.work_dir / "results.json"
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2, default=str))
    print(f"results: {results_path}")
    if not args.keep:
        shutil.rmtree(runs_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

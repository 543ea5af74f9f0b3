"""Scaling of our cleaning + dedup: time and peak memory at growing corpus sizes, on each data engine.

For each size, a corpus is built with ``bench/corpus.py`` (same recipe as the comparison benchmark: about 1.1 KB a
row, 8% near and 4% exact duplicates, 10% of documents with PII), then ``clean_file`` runs on it in a subprocess,
with the profile's ``CleaningConfig()`` (workers=0: one process per CPU). The parent samples the subprocess and
all its worker processes every 50 ms (summed RSS, and PSS, which counts pages shared by workers once); the
subprocess also reports ``ru_maxrss`` of itself and of its largest worker.

Printed per size: documents, MiB, seconds, documents/second, peak memory, microseconds per document and its ratio to
the smallest size (1.0 = linear), and overall the exponent b of a fit ``seconds ~ docs^b`` (1.0 = linear).

With ``--engines local,ray`` each size runs on both engines (``tuneforge.corpus.engines``; Ray: a local Ray started
by the run, whose head and worker processes are sampled with it), and the kept and rejected files are compared byte
for byte: the table says whether they are identical and the time ratio ray/local.

Usage: ``python -m bench.scale`` (50k, 100k, 300k documents: about 4 minutes on 2 CPUs), ``python -m bench.scale
--full`` (100k, 300k, 1M: about 12 minutes, 3 of them building corpora), or ``--sizes 10000,20000``. Results go to
``bench/.work/scale.json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.clean_dedup import DEFAULT_OURS, TreeSampler, busy_warning, code_version
from bench.corpus import WORK_DIR, CorpusSpec, build_corpus
from tuneforge.hashing import file_digest

DEFAULT_SIZES = (50_000, 100_000, 300_000)
FULL_SIZES = (100_000, 300_000, 1_000_000)
MEMORY_LIMIT_MB = 2048


def child(corpus: Path, out: Path, function: str, workers: int | None, engine: str = "local",
          object_store_mb: int | None = None) -> None:
    from tuneforge.corpus.engines import EngineConfig
    from tuneforge.profiles import CleaningConfig

    module, name = function.split(":")
    clean_file = getattr(importlib.import_module(module), name)
    config = CleaningConfig() if workers is None else CleaningConfig(workers=workers)
    out.mkdir(parents=True, exist_ok=True)
    options = {} if engine == "local" else {"engine": EngineConfig(engine=engine, object_store_mb=object_store_mb)}
    started = time.perf_counter()
    cleaned = clean_file(corpus / "rows.jsonl", out / "kept.jsonl", out / "rejected.jsonl", config, **options)
    seconds = time.perf_counter() - started
    funnel = getattr(cleaned, "funnel", cleaned)  # clean_file returned the funnel itself before length bounds
    report = {
        "seconds": seconds,
        "rows_in": getattr(funnel, "rows_in", None),
        "rows_out": getattr(funnel, "rows_out", None),
        "ru_maxrss_self_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "ru_maxrss_children_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }
    (out / "timing.json").write_text(json.dumps(report, indent=2))


def measure(corpus_dir: Path, out: Path, function: str, workers: int | None, log_path: Path,
            engine: str = "local", object_store_mb: int | None = None) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.scale", "--child", "--corpus", str(corpus_dir), "--out", str(out),
               "--ours-func", function, "--engines", engine]
    if object_store_mb is not None:
        command += ["--object-store-mb", str(object_store_mb)]
    if workers is not None:
        command += ["--workers", str(workers)]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parent.parent)
        with TreeSampler(process.pid) as sampler:
            code = process.wait()
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({code}):\n{log_path.read_text(errors='replace')[-3000:]}")
    report = json.loads((out / "timing.json").read_text())
    return report | {
        "peak_rss_mb": round(sampler.peak_rss / 2**20, 1),
        "peak_pss_mb": round(sampler.peak_pss / 2**20, 1),
        "peak_process_rss_mb": round(sampler.peak_process_rss / 2**20, 1),
        "peak_process_private_mb": round(sampler.peak_process_private / 2**20, 1),
        "outputs_sha256": {name: file_digest(out / name) for name in ("kept.jsonl", "rejected.jsonl")},
        "processes": sampler.peak_processes,
        "other_cpu_seconds": round(sampler.other_cpu_seconds, 1),
    }


def fit_exponent(sizes: list[int], seconds: list[float]) -> float | None:
    """Least-squares slope of log(seconds) over log(docs)."""
    if len(sizes) < 2:
        return None
    xs, ys = [math.log(s) for s in sizes], [math.log(t) for t in seconds]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    denominator = sum((x - mean_x) ** 2 for x in xs)
    return round(sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / denominator, 3)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Time and peak memory of our cleaning at growing corpus sizes.")
    parser.add_argument("--sizes", default=None, help="comma-separated document counts (default 50000,100000,300000)")
    parser.add_argument("--full", action="store_true", help="100k, 300k and 1M documents (about 1.1 GB)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None,
                        help="CleaningConfig.workers (default: the profile default, 0 = one per CPU)")
    parser.add_argument("--ours-func", default=DEFAULT_OURS)
    parser.add_argument("--engines", default="local", help="comma-separated data engines: local, ray (default local)")
    parser.add_argument("--object-store-mb", type=int, default=None,
                        help="ray: MiB of the local Ray's object store (default: Ray's, 30%% of the memory)")
    parser.add_argument("--keep", action="store_true", help="keep corpora and outputs (corpora are rebuilt otherwise)")
    parser.add_argument("--work-dir", type=Path, default=WORK_DIR)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    engines = args.engines.split(",")
    if args.child:
        child(args.corpus, args.out, args.ours_func, args.workers, engines[0], args.object_store_mb)
        return

    if args.sizes:
        sizes = sorted(int(size) for size in args.sizes.split(","))
    else:
        sizes = list(FULL_SIZES if args.full else DEFAULT_SIZES)
    runs_dir = args.work_dir / "scale-runs" / time.strftime("%Y%m%d-%H%M%S")
    runs_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join(["python -m bench.scale", *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "code": code_version(),
        "function": args.ours_func,
        "workers": args.workers,
        "sizes": [],
    }
    for size in sizes:
        spec = CorpusSpec(size, args.seed)
        corpus_dir = args.work_dir / f"corpus-{spec.key()}"
        print(f"{size} documents: building corpus in {corpus_dir} ...", flush=True)
        info = build_corpus(spec, corpus_dir, with_truth=False)
        outputs = {}
        for engine in engines:
            out = runs_dir / f"out-{size}-{engine}"
            busy_before = busy_warning()
            report = measure(corpus_dir, out, args.ours_func, args.workers, runs_dir / f"{size}-{engine}.log", engine,
                             args.object_store_mb)
            entry = {
                "docs": size,
                "engine": engine,
                "mib": round(info.bytes / 2**20, 1),
                "seconds": round(report["seconds"], 2),
                "docs_per_second": round(size / report["seconds"], 1),
                "us_per_doc": round(report["seconds"] / size * 1e6, 1),
                **{key: report[key] for key in ("peak_rss_mb", "peak_pss_mb", "peak_process_rss_mb",
                                                "peak_process_private_mb", "processes",
                                                "ru_maxrss_self_mb", "ru_maxrss_children_mb", "rows_out",
                                                "other_cpu_seconds")},
                "corpus_build_seconds": info.seconds,
                "cpu_busy_percent_before": busy_before,
            }
            outputs[engine] = report["outputs_sha256"]
            results["sizes"].append(entry)
            print(f"  {engine}: {entry['seconds']:.1f}s, {entry['docs_per_second']:.0f} docs/s, peak RSS "
                  f"{entry['peak_rss_mb']:.0f} MB (PSS {entry['peak_pss_mb']:.0f} MB, largest process "
                  f"{entry['peak_process_rss_mb']:.0f} MB, {entry['peak_process_private_mb']:.0f} MB private), "
                  f"{entry['rows_out']} rows kept; CPU used by other "
                  f"processes meanwhile: {entry['other_cpu_seconds']:.0f}s", flush=True)
            if not args.keep:
                shutil.rmtree(out, ignore_errors=True)
        identical = len({json.dumps(digests, sort_keys=True) for digests in outputs.values()}) == 1
        for entry in results["sizes"][-len(engines):]:
            entry["outputs_identical_across_engines"] = identical
        if len(engines) > 1:
            print(f"  outputs identical across engines: {identical}", flush=True)
        if not args.keep:
            shutil.rmtree(corpus_dir, ignore_errors=True)

    results["exponent"] = {}
    for engine in engines:
        runs = [e for e in results["sizes"] if e["engine"] == engine]
        for entry in runs:
            entry["time_per_doc_ratio"] = round(entry["us_per_doc"] / runs[0]["us_per_doc"], 3)
        results["exponent"][engine] = fit_exponent([e["docs"] for e in runs], [e["seconds"] for e in runs])
    local = {e["docs"]: e["seconds"] for e in results["sizes"] if e["engine"] == "local"}
    for entry in results["sizes"]:
        if entry["docs"] in local:
            entry["time_vs_local"] = round(entry["seconds"] / local[entry["docs"]], 3)
    results["peak_rss_mb_max"] = max(e["peak_rss_mb"] for e in results["sizes"])
    results["peak_process_rss_mb_max"] = max(e["peak_process_rss_mb"] for e in results["sizes"])
    results["peak_process_private_mb_max"] = max(e["peak_process_private_mb"] for e in results["sizes"])
    results["under_memory_limit"] = results["peak_process_rss_mb_max"] < MEMORY_LIMIT_MB

    header = ("docs", "engine", "MiB", "seconds", "docs/s", "us/doc", "ratio", "vs local", "peak RSS MB",
              "peak PSS MB", "largest process MB", "largest private MB", "identical")
    rows = [header] + [
        (str(e["docs"]), e["engine"], f"{e['mib']:.0f}", f"{e['seconds']:.1f}", f"{e['docs_per_second']:.0f}",
         f"{e['us_per_doc']:.0f}", f"{e['time_per_doc_ratio']:.2f}", f"{e.get('time_vs_local', 1.0):.2f}",
         f"{e['peak_rss_mb']:.0f}", f"{e['peak_pss_mb']:.0f}", f"{e['peak_process_rss_mb']:.0f}",
         f"{e['peak_process_private_mb']:.0f}",
         str(e["outputs_identical_across_engines"]))
        for e in results["sizes"]
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    print()
    for row in rows:
        print("  ".join(cell.rjust(widths[i]) for i, cell in enumerate(row)))
    print(f"\ntime ~ docs^b with b = {results['exponent']} (1.0 = linear); ratio = time per document relative to "
          f"the smallest size; vs local = seconds / the local engine's; largest single process "
          f"{'under' if results['under_memory_limit'] else 'OVER'} {MEMORY_LIMIT_MB} MB")
    results_path = args.work_dir / "scale.json"
    results_path.write_text(json.dumps(results, indent=2))
    print(f"results: {results_path}")
    if not args.keep:
        shutil.rmtree(runs_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

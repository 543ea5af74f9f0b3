"""Generation benchmark: our batched ``generate`` against the per-example ``model.generate`` loop of the tutorials.

Both run in this one process, on the same rows, with the same model (the demo base model, SmolLM2-135M-Instruct,
built into ``models/base/`` if absent, ~20 s, no network): real ACLSum documents (the first papers by id, each with
the three per-aspect instructions of ``ACLSUM_INSTRUCTIONS``), prompts built by ``prompt_ids`` exactly as the
evaluation builds them.

- **ours**: ``tuneforge.modeling.generate.generate`` (batched, length-sorted, left-padded, preallocated KV cache,
  finished rows dropped), greedy.
- **naive**: one ``model.generate(input_ids=..., attention_mask=..., max_new_tokens=..., do_sample=False)`` per
  example, in the same precision as ours (under the same bf16 autocast when ours uses it): the fair comparison for
  identical outputs.
- **naive-fp32**: when ours runs in bf16, the same loop in plain fp32 as well (what a tutorial user runs), for speed;
  its identical share against ours compares two precisions.

Printed and saved (``bench/.work/generation.json``): rows/s and new tokens/s of each (medians over ``--repeat``
runs), the ratio ours/naive, the share of rows whose text is identical, and for each run the CPU seconds used by other
processes meanwhile (the machine is shared; those runs are slower).

Usage: ``python -m bench.generation [--rows 48] [--max-new-tokens 64] [--batch-size 48] [--repeat 1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from bench.machine import OtherCpu
from tuneforge.corpus.aclsum import ASPECTS, SECTIONS, papers
from tuneforge.modeling.base import resolve_base_model
from tuneforge.modeling.device import autocast, use_bf16
from tuneforge.modeling.generate import Prompt, eos_token_ids, generate, load_for_inference
from tuneforge.modeling.prompts import prompt_ids
from tuneforge.profiles import ACLSUM_INSTRUCTIONS, load_profile

REPO = Path(__file__).resolve().parents[1]
WORK_DIR = REPO / "bench" / ".work"


def benchmark_prompts(rows: int) -> list[Prompt]:
    """The first ``rows`` (paper, aspect) pairs: papers by id, each with its three aspect instructions."""
    prompts: list[Prompt] = []
    for paper in papers():
        document = " ".join(s for section in SECTIONS for s in paper["sentences"].get(section, []))
        for aspect in ASPECTS:
            prompts.append(Prompt(ACLSUM_INSTRUCTIONS[f"aclsum-{aspect}"], document))
        if len(prompts) >= rows:
            break
    return prompts[:rows]


def run_ours(model, tokenizer, prompts, args, precision: str) -> tuple[list[str], list[int], int]:
    generations = generate(model, tokenizer, prompts, args.max_prompt_tokens, args.max_new_tokens, args.batch_size,
                           log=lambda line: None, precision=precision)
    return [g.text for g in generations], [g.new_tokens for g in generations], sum(g.finished for g in generations)


def run_naive(model, tokenizer, prompts, args, bf16: bool) -> tuple[list[str], list[int], int]:
    """The loop of the tutorials: one prompt at a time through ``model.generate``, greedy."""
    device = next(model.parameters()).device
    eos = eos_token_ids(model, tokenizer)
    texts, counts, finished = [], [], 0
    with torch.inference_mode(), autocast(device, bf16):
        for prompt in prompts:
            ids = prompt_ids(tokenizer, prompt.instruction, prompt.document, args.max_prompt_tokens)
            input_ids = torch.tensor([ids], device=device)
            output = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                    max_new_tokens=args.max_new_tokens, do_sample=False)
            new = output[0, len(ids):].tolist()
            end = next((k for k, token in enumerate(new) if token in eos), None)
            new = new if end is None else new[: end + 1]
            finished += end is not None
            texts.append(tokenizer.decode(new, skip_special_tokens=True).strip())
            counts.append(len(new))
    return texts, counts, finished


def compare(ours: list[str], other: list[str], prompts: list[Prompt]) -> dict[str, Any]:
    differing = []
    for i, (a, b) in enumerate(zip(ours, other, strict=True)):
        if a != b:
            cut = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            differing.append({"row": i, "instruction": prompts[i].instruction[:40], "common_prefix_chars": cut,
                              "ours": a[max(cut - 40, 0) : cut + 60], "other": b[max(cut - 40, 0) : cut + 60]})
    return {"identical": len(ours) - len(differing), "rows": len(ours),
            "identical_share": round((len(ours) - len(differing)) / len(ours), 4), "differing": differing}


def code_version() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "tuneforge/modeling/generate.py"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + (" (generate.py modified)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Our batched generation against a per-example model.generate loop.")
    parser.add_argument("--rows", type=int, default=48, help="(paper, aspect) rows to summarize (default 48)")
    parser.add_argument("--max-new-tokens", type=int, default=64,
                        help="default 64 (the demo learns its budget from the training summaries: 49 on ACLSum)")
    parser.add_argument("--max-prompt-tokens", type=int, default=384, help="as the demo profile (384)")
    parser.add_argument("--batch-size", type=int, default=48, help="our batch size (default 48)")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                        help="ours and the naive loop: auto = bf16 autocast where this machine measures bf16 faster")
    parser.add_argument("--naive-fp32", choices=("auto", "yes", "no"), default="auto",
                        help="also time the loop in plain fp32 (auto: when ours runs in bf16)")
    parser.add_argument("--systems", default="ours,naive,naive-fp32",
                        help="comma-separated subset of ours,naive,naive-fp32 (e.g. ours alone to compare batch sizes)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per system; medians are reported")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models" / "base")
    parser.add_argument("--results", type=Path, default=WORK_DIR / "generation.json")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    snapshot = resolve_base_model(load_profile("demo").base_model, args.models_dir)
    print(f"base model: {snapshot.path} ({'reused' if snapshot.reused else 'built'}, "
          f"{time.perf_counter() - started:.0f}s)", flush=True)
    model, tokenizer = load_for_inference(snapshot.path)
    device = next(model.parameters()).device
    bf16 = use_bf16(device, args.precision)
    precision = "bf16" if bf16 else "fp32"
    prompts = benchmark_prompts(args.rows)
    lengths = [len(prompt_ids(tokenizer, p.instruction, p.document, args.max_prompt_tokens)) for p in prompts]
    print(f"{len(prompts)} rows, prompt tokens {min(lengths)}-{max(lengths)} (mean {statistics.mean(lengths):.0f}), "
          f"max {args.max_new_tokens} new tokens, device {device.type}, precision {precision} "
          f"({args.precision}), {torch.get_num_threads()} threads", flush=True)

    chosen = {name.strip() for name in args.systems.split(",") if name.strip()}
    if not chosen <= {"ours", "naive", "naive-fp32"}:
        parser.error(f"unknown systems {sorted(chosen - {'ours', 'naive', 'naive-fp32'})}")
    if args.naive_fp32 == "no" or (args.naive_fp32 == "auto" and not bf16):
        chosen.discard("naive-fp32")
    systems: dict[str, Any] = {
        "ours": lambda: run_ours(model, tokenizer, prompts, args, precision),
        "naive": lambda: run_naive(model, tokenizer, prompts, args, bf16),
        "naive-fp32": lambda: run_naive(model, tokenizer, prompts, args, False),
    }
    systems = {name: run for name, run in systems.items() if name in chosen}
    # Warm-up (not timed): first calls build kernels and caches.
    generate(model, tokenizer, prompts[:2], args.max_prompt_tokens, 2, 2, log=lambda line: None, precision=precision)
    run_naive(model, tokenizer, prompts[:1], argparse.Namespace(**{**vars(args), "max_new_tokens": 2}), bf16)

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in systems}
    outputs: dict[str, list[str]] = {}
    deterministic = True
    other = OtherCpu()
    for repeat in range(args.repeat):
        for name in systems if repeat % 2 == 0 else reversed(systems):
            other.start()
            t0 = time.perf_counter()
            texts, counts, finished = systems[name]()
            seconds = time.perf_counter() - t0
            others = other.stop()
            runs[name].append({"seconds": round(seconds, 2), "new_tokens": sum(counts), "finished": finished,
                                "other_cpu_seconds": others})
            if name in outputs and outputs[name] != texts:
                deterministic = False
            outputs.setdefault(name, texts)
            print(f"  {name} run {repeat + 1}/{args.repeat}: {seconds:.1f}s, {len(prompts) / seconds:.3f} rows/s, "
                  f"{sum(counts) / seconds:.1f} new tokens/s; CPU used by other processes meanwhile: {others}s",
                  flush=True)

    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join(["python -m bench.generation", *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"cpus": os.cpu_count(), "threads": torch.get_num_threads(), "python": sys.version.split()[0],
                    "torch": torch.__version__, "device": device.type},
        "code": code_version(),
        "settings": {"rows": len(prompts), "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size,
                     "max_prompt_tokens": args.max_prompt_tokens, "precision": precision, "repeat": args.repeat,
                     "prompt_tokens": {"min": min(lengths), "max": max(lengths), "mean": statistics.mean(lengths)}},
        "systems": {},
        "outputs_repeat_identically": deterministic,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    for name, system_runs in runs.items():
        seconds = statistics.median(r["seconds"] for r in system_runs)
        new_tokens = statistics.median(r["new_tokens"] for r in system_runs)
        results["systems"][name] = {
            "seconds": round(seconds, 2), "rows_per_second": round(len(prompts) / seconds, 3),
            "new_tokens": new_tokens, "new_tokens_per_second": round(new_tokens / seconds, 1), "runs": system_runs,
            "finished_before_max_new_tokens": system_runs[0]["finished"],
        }
    for reference in ("naive", "naive-fp32"):
        if {"ours", reference} <= set(systems):
            key = reference.replace("-", "_")
            results[f"speedup_vs_{key}"] = round(results["systems"]["ours"]["rows_per_second"]
                                                 / results["systems"][reference]["rows_per_second"], 2)
            results[f"identical_vs_{key}"] = compare(outputs["ours"], outputs[reference], prompts)


    print()
    print(f"{'':12}{'rows/s':>10}{'new tok/s':>12}{'seconds':>10}")
    for name, system in results["systems"].items():
        print(f"{name:12}{system['rows_per_second']:>10.3f}{system['new_tokens_per_second']:>12.1f}"
              f"{system['seconds']:>10.1f}")
    same = results.get("identical_vs_naive", {"differing": []})
    if "speedup_vs_naive" in results:
        print(f"\nspeed-up ours/naive ({precision} both): {results['speedup_vs_naive']:.2f}x; identical outputs: "
              f"{same['identical']}/{same['rows']} ({same['identical_share']:.1%})")
    if "speedup_vs_naive_fp32" in results:
        fp32 = results["identical_vs_naive_fp32"]
        print(f"speed-up ours ({precision}) / naive fp32: {results['speedup_vs_naive_fp32']:.2f}x; identical outputs "
              f"(different precisions): {fp32['identical']}/{fp32['rows']} ({fp32['identical_share']:.1%})")
    for row in same["differing"][:5]:
        print(f"  row {row['row']} differs after {row['common_prefix_chars']} characters:\n"
              f"    ours:  ...{row['ours']!r}\n    naive: ...{row['other']!r}")
    if not deterministic:
        print("warning: a system's outputs changed between repeats")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    print(f"peak RSS {results['peak_rss_mb']} MB; results: {args.results} (total {time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()

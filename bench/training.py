"""Training benchmark: our LoRA trainer against a plain transformers ``Trainer`` + peft, as the tutorials write it.

Both fine-tune the demo base model (SmolLM2-135M-Instruct, built into ``models/base/`` if absent, ~20 s, no
network) on the same real rows with the same hyperparameters for the same number of optimizer steps, each in its own
subprocess (so each has its own peak memory), one after the other:

- **ours**: ``tuneforge.modeling.train.run_training`` on JSONL split files, the demo profile's training config with
  the benchmark's overrides; precision ``--precision`` (default ``auto``, as the pipeline).
- **baseline**: ``get_peft_model`` with the same ``LoraConfig``, a ``Trainer`` with ``DataCollatorForSeq2Seq``
  (dynamic padding of input_ids and labels, labels -100 on the prompt) and ``TrainingArguments`` with the same batch
  size, learning rate, warm-up, cosine schedule, ``max_steps`` and seed, fp32 (``bf16=False``, the default; on this
  CPU bf16 matmuls are slower than fp32), ``report_to="none"``; weight decay and gradient clipping from the profile
  (which are also the ``Trainer`` defaults), so the losses compare code, not hyperparameters.

Rows: the embedded ACLSum corpus, papers sorted by id, three rows a paper (one per aspect, with the per-aspect
instructions of ``ACLSUM_INSTRUCTIONS``): training rows from the first papers, validation rows from the last ones.
Both sides encode with ``encode_for_training``, so their token streams are identical. By default there are exactly
``steps × batch size`` training rows: one epoch, so both sides train on the same sequences, whatever their order.

Printed and saved (``bench/.work/training.json``):

- trained tokens per second (non-padding tokens of the batches trained on, over the training loop's wall time) of
  each side and their ratio;
- validation loss of each adapter, measured the same way for both in a third subprocess: the token-weighted mean
  cross-entropy over the summary tokens of the validation rows, fp32, full logits, no dropout (and the base model's);
- peak RSS of each subprocess (``ru_maxrss``);
- model-FLOPs utilization against this machine's matmul peak in the precision used, measured in the same run
  (``bench.matmul_peak``: median GFLOP/s of 2048² matmuls, before and after the training runs; the higher is used).

Model FLOPs of LoRA training (frozen base, trainable adapters), for a sequence of n tokens with t summary tokens:

    4·N·n − 2·N₀·n  +  6·N_lora·n  +  12·L·d_attn·n(n+1)/2  +  4·V·d·t

N: weights of the transformer's linear layers (not the embedding, a lookup): forward 2N per token, backward with
respect to activations 2N (no weight gradients: the base is frozen); N₀: the first layer's q/k/v projections, whose
input (the normalized embeddings) needs no gradient. N_lora: adapter weights, forward 2, input gradients 2 and
weight gradients 2 per weight and token. Attention (L layers, d_attn = heads × head dim): QKᵀ and AV cost 4·d_attn
per (query, key) pair forward, backward twice that, over the n(n+1)/2 pairs a causal mask keeps. LM head (V × d,
tied to the frozen embedding): forward and input gradient at the t positions whose prediction the loss uses.
Element-wise work (norms, activations, softmax, rotary, loss) is not counted. Both sides get the same model FLOPs;
work a side does beyond them (e.g. the LM head at every position) counts as waste, not as utilization.

Usage: ``python -m bench.training [--steps 24] [--batch-size 4] [--max-seq-len 448] [--validation-rows 24]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.machine import OtherCpu

ALL_LINEAR = "all-linear"
REPO = Path(__file__).resolve().parents[1]
WORK_DIR = REPO / "bench" / ".work"
SIDES = ("ours", "baseline")


# ---------------------------------------------------------------------------------------------------------- rows


def benchmark_rows(train_rows: int, validation_rows: int) -> tuple[list, list]:
    """Training rows from the first ACLSum papers by id, validation rows from the last; three rows a paper."""
    from tuneforge.corpus.aclsum import ASPECTS, SECTIONS, papers
    from tuneforge.corpus.records import Example

    all_papers = papers()
    needed = math.ceil(train_rows / 3) + math.ceil(validation_rows / 3)
    if needed > len(all_papers):
        raise ValueError(f"--train-rows {train_rows} and --validation-rows {validation_rows} need {needed} ACLSum "
                         f"papers; the corpus has {len(all_papers)}")

    def rows_of(selected: list[dict]) -> list[Example]:
        return [
            Example(id=f"{paper['id']}-{aspect}", source=f"aclsum-{aspect}", group=str(paper["id"]),
                    document=" ".join(s for section in SECTIONS for s in paper["sentences"].get(section, [])),
                    summary=paper["summary"][aspect])
            for paper in selected for aspect in ASPECTS
        ]

    train = rows_of(all_papers[: math.ceil(train_rows / 3)])[:train_rows]
    validation = rows_of(all_papers[-math.ceil(validation_rows / 3):])[:validation_rows]
    return train, validation


def encoded(spec: dict[str, Any], path: str, tokenizer) -> list:
    from tuneforge.corpus.records import read_examples
    from tuneforge.modeling.prompts import encode_for_training

    return [encode_for_training(tokenizer, spec["instructions"][row.source], row.document, row.summary,
                                spec["config"]["max_seq_len"]) for row in read_examples(Path(path))]


# ------------------------------------------------------------------------------------------------- model FLOPs


def model_flops_per_sequence(shapes: dict[str, Any], tokens: int, targets: int) -> float:
    """Model FLOPs of one training step's work on one sequence (see the module docstring for the formula)."""
    return (4 * shapes["linear_weights"] * tokens - 2 * shapes["first_layer_qkv_weights"] * tokens
            + 6 * shapes["lora_weights"] * tokens
            + 12 * shapes["layers"] * shapes["attention_width"] * tokens * (tokens + 1) / 2
            + 4 * shapes["vocab"] * shapes["hidden"] * targets)


def lora_targets(config: dict[str, Any]) -> str | list[str]:
    """``LoraConfig.target_modules`` for the config: "all-linear" or the list of module names."""
    from tuneforge.modeling.preflight import peft_target_modules
    from tuneforge.profiles import TrainingConfig

    return peft_target_modules(TrainingConfig.model_validate(config))


def model_shapes(base_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Weight counts the FLOPs formula needs, read off the model built on the meta device (no memory, no weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    model_config = AutoConfig.from_pretrained(base_dir)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(model_config)
    targets = lora_targets(config)
    linear = lora = first_qkv = 0
    for name, module in model.get_decoder().named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        weights = module.in_features * module.out_features
        linear += weights
        if targets == ALL_LINEAR or name.rsplit(".", 1)[-1] in targets:
            lora += config["lora_rank"] * (module.in_features + module.out_features)
        if name.startswith("layers.0.") and name.rsplit(".", 1)[-1] in ("q_proj", "k_proj", "v_proj"):
            first_qkv += weights
    head_dim = getattr(model_config, "head_dim", None) or model_config.hidden_size // model_config.num_attention_heads
    return {"linear_weights": linear, "first_layer_qkv_weights": first_qkv, "lora_weights": lora,
            "layers": model_config.num_hidden_layers, "attention_width": model_config.num_attention_heads * head_dim,
            "hidden": model_config.hidden_size, "vocab": model_config.vocab_size}


# ---------------------------------------------------------------------------------------------------- children


def peak_rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def run_ours(spec: dict[str, Any]) -> dict[str, Any]:
    from tuneforge.modeling.records import TrainingJob
    from tuneforge.modeling.train import run_training

    work = Path(spec["work_dir"])
    out_dir, checkpoint_dir = work / "ours-adapter", work / "ours-checkpoints"
    for stale in (out_dir, checkpoint_dir):
        shutil.rmtree(stale, ignore_errors=True)
    job = TrainingJob(base_dir=spec["base_dir"], train_path=spec["train_path"],
                      validation_path=spec["validation_path"], instructions=spec["instructions"],
                      config=spec["config"], out_dir=str(out_dir), checkpoint_dir=str(checkpoint_dir))
    result = run_training(job)
    return {"adapter_dir": str(out_dir), "seconds": result.seconds, "trained_tokens": result.trained_tokens,
            "reported_tokens_per_second": result.tokens_per_second, "precision": result.precision,
            "reported_validation_loss": result.validation_loss, "reported_peak_memory_mb": result.peak_memory_mb,
            "train_loss_curve": [list(point) for point in result.train_loss_curve]}


def run_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    """What a user writes from the tutorials: peft + Trainer + DataCollatorForSeq2Seq."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )

    config, work = spec["config"], Path(spec["work_dir"])
    out_dir = work / "baseline-adapter"
    shutil.rmtree(out_dir, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(spec["base_dir"])
    set_seed(config["seed"])
    model_config = AutoConfig.from_pretrained(spec["base_dir"])
    # The snapshot's config.json still carries the GGUF file's quantization_config although its weights are plain
    # fp32; Trainer refuses a model loaded with it ("quantized with GGUF ... do not support training"). Same weights.
    if hasattr(model_config, "quantization_config"):
        del model_config.quantization_config
    model = AutoModelForCausalLM.from_pretrained(spec["base_dir"], config=model_config, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=config["lora_rank"], lora_alpha=config["lora_alpha"],
                                             lora_dropout=config["lora_dropout"],
                                             target_modules=lora_targets(config), task_type="CAUSAL_LM"))
    train_set = [{"input_ids": e.input_ids, "attention_mask": [1] * len(e.input_ids), "labels": e.labels}
                 for e in encoded(spec, spec["train_path"], tokenizer)]

    batch_tokens: list[int] = []  # non-padding tokens of every batch collated, in order

    class CountingCollator(DataCollatorForSeq2Seq):
        def __call__(self, features, return_tensors=None):
            batch = super().__call__(features, return_tensors)
            batch_tokens.append(int(batch["attention_mask"].sum()))
            return batch

    class LoopTimer(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_train_end(self, args, state, control, **kwargs):
            self.seconds = time.perf_counter() - self.started

    timer = LoopTimer()
    args = TrainingArguments(
        output_dir=str(work / "baseline-trainer"), per_device_train_batch_size=config["batch_size"],
        gradient_accumulation_steps=config["gradient_accumulation_steps"], max_steps=config["max_steps"],
        learning_rate=config["learning_rate"], lr_scheduler_type=config["lr_schedule"],
        warmup_steps=config["warmup_steps"], weight_decay=spec["baseline_weight_decay"],
        max_grad_norm=spec["baseline_max_grad_norm"], seed=config["seed"], bf16=spec["baseline_bf16"],
        logging_steps=max(1, config["max_steps"] // 10), save_strategy="no", report_to="none", disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=train_set,
                      data_collator=CountingCollator(tokenizer, padding=True, label_pad_token_id=-100),
                      callbacks=[timer])
    trainer.train()
    model.save_pretrained(out_dir)
    trainable, _ = model.get_nb_trainable_parameters()
    # The data loader may collate one batch ahead of the loop; the batches trained on are the first ones.
    trained = batch_tokens[: config["max_steps"] * config["gradient_accumulation_steps"]]
    losses = [(entry["step"], entry["loss"]) for entry in trainer.state.log_history if "loss" in entry]
    return {"adapter_dir": str(out_dir), "seconds": timer.seconds, "trained_tokens": sum(trained),
            "batches_collated": len(batch_tokens), "precision": "bf16" if spec["baseline_bf16"] else "fp32",
            "trainable_parameters": trainable, "train_loss_curve": losses}


def validation_losses(spec: dict[str, Any], adapters: dict[str, str | None]) -> dict[str, float]:
    """Token-weighted mean cross-entropy over the validation rows' summary tokens, fp32, full logits, eval mode."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(spec["base_dir"])
    examples = encoded(spec, spec["validation_path"], tokenizer)
    batch_size = spec["config"]["batch_size"]
    losses = {}
    for name, adapter in adapters.items():
        model = AutoModelForCausalLM.from_pretrained(spec["base_dir"], dtype=torch.float32)
        if adapter is not None:
            model = PeftModel.from_pretrained(model, adapter)
        model.eval()
        total, count = 0.0, 0
        with torch.inference_mode():
            for start in range(0, len(examples), batch_size):
                chunk = examples[start : start + batch_size]
                width = max(len(e.input_ids) for e in chunk)
                input_ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
                labels = torch.full((len(chunk), width), -100, dtype=torch.long)
                attention = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, example in enumerate(chunk):
                    input_ids[row, : len(example.input_ids)] = torch.tensor(example.input_ids)
                    labels[row, : len(example.labels)] = torch.tensor(example.labels)
                    attention[row, : len(example.input_ids)] = 1
                logits = model(input_ids=input_ids, attention_mask=attention).logits[:, :-1]
                total += torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels[:, 1:].flatten(),
                                                           ignore_index=-100, reduction="sum").item()
                count += int((labels[:, 1:] != -100).sum())
        losses[name] = total / count
        del model
    return losses


def child_main(side: str, spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    started = time.perf_counter()
    if side == "ours":
        result = run_ours(spec)
    elif side == "baseline":
        result = run_baseline(spec)
    else:
        adapters = {"base": None, **{name: str(Path(spec["work_dir"]) / f"{name}-adapter") for name in spec["sides"]}}
        result = {"validation_loss": validation_losses(spec, adapters)}
    result.update(process_seconds=round(time.perf_counter() - started, 1), peak_rss_mb=peak_rss_mb())
    (Path(spec["work_dir"]) / f"{side}.json").write_text(json.dumps(result, indent=2) + "\n")


# ------------------------------------------------------------------------------------------------------ parent


def run_child(side: str, spec_path: Path) -> dict[str, Any]:
    other = OtherCpu()
    other.start()
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench.training", "--child", side, "--spec", str(spec_path)], cwd=REPO,
                   check=True)
    result = json.loads((spec_path.parent / f"{side}.json").read_text())
    result.update(wall_seconds=round(time.perf_counter() - started, 1), other_cpu_seconds=other.stop())
    return result


def code_version() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "tuneforge/modeling/train.py"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + (" (train.py modified)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Our LoRA trainer against transformers Trainer + peft.")
    parser.add_argument("--steps", type=int, default=24, help="optimizer steps of each side (default 24)")
    parser.add_argument("--batch-size", type=int, default=4, help="as the demo profile (4)")
    parser.add_argument("--max-seq-len", type=int, default=448, help="as the demo profile (448)")
    parser.add_argument("--train-rows", type=int, default=None, help="default: steps × batch size (one epoch)")
    parser.add_argument("--validation-rows", type=int, default=24, help="as the demo profile's max (24)")
    parser.add_argument("--learning-rate", type=float, default=None, help="default: the demo profile's")
    parser.add_argument("--warmup-steps", type=int, default=None, help="default: the demo profile's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                        help="ours: auto (as the pipeline) picks what this machine multiplies faster")
    parser.add_argument("--baseline-precision", choices=("fp32", "bf16"), default="fp32",
                        help="baseline: fp32 (TrainingArguments' default) or bf16=True")
    parser.add_argument("--sides", default="ours,baseline", help="comma-separated subset of ours,baseline, in order")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models" / "base")
    parser.add_argument("--work-dir", type=Path, default=WORK_DIR / "training")
    parser.add_argument("--results", type=Path, default=WORK_DIR / "training.json")
    parser.add_argument("--child", choices=(*SIDES, "evaluate"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child, args.spec)
        return

    from bench.matmul_peak import matmul_peaks
    from tuneforge.corpus.records import write_jsonl
    from tuneforge.modeling.base import resolve_base_model
    from tuneforge.profiles import load_profile

    sides = [name.strip() for name in args.sides.split(",") if name.strip()]
    if not sides or not set(sides) <= set(SIDES):
        parser.error(f"--sides {args.sides!r}: choose from {', '.join(SIDES)}")
    started = time.perf_counter()
    profile = load_profile("demo")
    overrides = {"max_steps": args.steps, "batch_size": args.batch_size, "max_seq_len": args.max_seq_len,
                 "max_train_rows": None, "max_validation_rows": args.validation_rows, "seed": args.seed,
                 "precision": args.precision,
                 # the Trainer baseline batches rows and trains exactly max_steps: so do we, here (epochs enough
                 # for max_steps to bind)
                 "batching": "rows", "time_budget_minutes": None, "epochs": float(args.steps)}
    if args.learning_rate is not None:
        overrides["learning_rate"] = args.learning_rate
    if args.warmup_steps is not None:
        overrides["warmup_steps"] = args.warmup_steps
    config = type(profile.training).model_validate({**profile.training.model_dump(), **overrides}).model_dump()
    train_rows = args.train_rows or args.steps * args.batch_size
    train, validation = benchmark_rows(train_rows, args.validation_rows)

    snapshot = resolve_base_model(profile.base_model, args.models_dir)
    print(f"base model: {snapshot.path} ({'reused' if snapshot.reused else 'built'})", flush=True)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    train_path, validation_path = args.work_dir / "train.jsonl", args.work_dir / "validation.jsonl"
    write_jsonl(train_path, train)
    write_jsonl(validation_path, validation)
    spec = {
        "base_dir": str(snapshot.path), "work_dir": str(args.work_dir), "train_path": str(train_path),
        "validation_path": str(validation_path), "sides": sides, "config": config,
        "instructions": {source: profile.instruction_for(source) for source in sorted({r.source for r in train
                                                                                           + validation})},
        "baseline_weight_decay": config["weight_decay"],
        "baseline_max_grad_norm": config["max_grad_norm"],
        "baseline_bf16": args.baseline_precision == "bf16",
    }
    spec_path = args.work_dir / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(snapshot.path)
    train_set = encoded(spec, str(train_path), tokenizer)
    lengths = [len(e.input_ids) for e in train_set]
    shapes = model_shapes(snapshot.path, config)
    epoch_tokens = sum(lengths)
    epoch_flops = sum(model_flops_per_sequence(shapes, len(e.input_ids), e.target_tokens) for e in train_set)
    flops_per_token = epoch_flops / epoch_tokens
    print(f"{len(train)} training rows ({sum(lengths)} tokens, {min(lengths)}-{max(lengths)} a row), "
          f"{len(validation)} validation rows; {args.steps} steps of {args.batch_size}, seq len {args.max_seq_len}, "
          f"lr {config['learning_rate']}, warm-up {config['warmup_steps']}, LoRA r={config['lora_rank']}; "
          f"model FLOPs {flops_per_token / 1e6:.0f} M a trained token", flush=True)

    import torch

    peaks_before = matmul_peaks()
    print("matmul peak before: " + ", ".join(f"{k} {v['median_gflops']:.0f} GFLOP/s" for k, v in
                                             peaks_before.items()), flush=True)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join(["python -m bench.training", *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"cpus": os.cpu_count(), "threads": torch.get_num_threads(), "python": sys.version.split()[0],
                    "torch": torch.__version__, "load_average_at_start": os.getloadavg()},
        "code": code_version(),
        "settings": {"train_rows": len(train), "validation_rows": len(validation), "config": config,
                     "baseline": {k: v for k, v in spec.items() if k.startswith("baseline_")},
                     "train_tokens_per_epoch": epoch_tokens, "row_tokens": {"min": min(lengths), "max": max(lengths),
                                                                           "mean": statistics.mean(lengths)}},
        "model_shapes": shapes, "model_flops_per_token": round(flops_per_token),
        "sides": {},
    }
    for side in sides:
        print(f"--- {side}", flush=True)
        results["sides"][side] = run_child(side, spec_path)
        print(f"    {side}: {results['sides'][side]['seconds']:.1f}s training loop, "
              f"{results['sides'][side]['wall_seconds']:.0f}s in all; other processes' CPU meanwhile "
              f"{results['sides'][side]['other_cpu_seconds']}s", flush=True)
    print("--- validation losses (fp32, same rows and code for every adapter)", flush=True)
    evaluation = run_child("evaluate", spec_path)
    results["validation_loss"] = {k: round(v, 4) for k, v in evaluation["validation_loss"].items()}
    results["evaluation"] = {k: evaluation[k] for k in ("wall_seconds", "peak_rss_mb", "other_cpu_seconds")}
    peaks_after = matmul_peaks()
    print("matmul peak after: " + ", ".join(f"{k} {v['median_gflops']:.0f} GFLOP/s" for k, v in
                                            peaks_after.items()), flush=True)
    peaks = {name: max(peaks_before[name]["median_gflops"], peaks_after[name]["median_gflops"])
             for name in peaks_before}
    results["matmul_peak"] = {"before": peaks_before, "after": peaks_after, "used_gflops": peaks}

    full_epochs = train_rows == args.steps * args.batch_size
    for side, result in results["sides"].items():
        # With exactly one epoch, both sides train on every row once: the epoch's tokens and FLOPs, in any order.
        tokens = result["trained_tokens"]
        if full_epochs and tokens != epoch_tokens:
            print(f"warning: {side} reports {tokens} trained tokens; the epoch has {epoch_tokens} non-padding tokens")
        flops = epoch_flops if full_epochs else tokens * flops_per_token
        result["tokens_per_second"] = round(tokens / result["seconds"], 1)
        result["model_gflops_per_second"] = round(flops / result["seconds"] / 1e9, 1)
        result["mfu"] = round(result["model_gflops_per_second"] / peaks[result["precision"]], 4)
        result["validation_loss"] = results["validation_loss"][side]
    if set(SIDES) <= set(results["sides"]):
        results["speedup"] = round(results["sides"]["ours"]["tokens_per_second"]
                                   / results["sides"]["baseline"]["tokens_per_second"], 2)

    print()
    print(f"{'':10}{'precision':>10}{'tokens/s':>10}{'loop s':>8}{'tokens':>8}{'val loss':>10}{'peak RSS MB':>13}"
          f"{'model GFLOP/s':>15}{'MFU':>8}")
    for side, r in results["sides"].items():
        print(f"{side:10}{r['precision']:>10}{r['tokens_per_second']:>10.1f}{r['seconds']:>8.1f}"
              f"{r['trained_tokens']:>8}{r['validation_loss']:>10.4f}{r['peak_rss_mb']:>13}"
              f"{r['model_gflops_per_second']:>15.1f}{r['mfu']:>8.1%}")
    print(f"{'base':10}{'':>10}{'':>10}{'':>8}{'':>8}{results['validation_loss']['base']:>10.4f}")
    if "speedup" in results:
        print(f"\ntokens/s ours/baseline: {results['speedup']:.2f}x")
    if "ours" in results["sides"]:
        print(f"ours' own validation loss (its loop, {results['sides']['ours']['precision']}): "
              f"{results['sides']['ours']['reported_validation_loss']:.4f}")
    print(f"validation-loss subprocess: {results['evaluation']['wall_seconds']:.0f}s, peak RSS "
          f"{results['evaluation']['peak_rss_mb']} MB")
    print(f"matmul peak (2048², median, higher of before/after): fp32 {peaks['fp32']:.0f}, bf16 {peaks['bf16']:.0f} "
          f"GFLOP/s; model FLOPs {flops_per_token / 1e6:.0f} M a token")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {args.results} (total {time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()

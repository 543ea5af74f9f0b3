"""LoRA fine-tuning: a training loop short enough to read in one sitting.

peft wraps the base model with LoRA adapters; accelerate places it on the device, handles precision (bf16 autocast
where it is faster) and, under ``torchrun``/``accelerate launch``, data parallelism (NCCL on GPUs, gloo on CPUs).
Batches are grouped by length so little compute goes to padding; the loss covers the summary tokens only; every
``checkpoint_every`` steps an atomic checkpoint lets a killed run resume where it stopped.

Run standalone, in one process or N: ``python -m tuneforge.modeling.train JOB.json`` or
``torchrun --nproc_per_node N -m tuneforge.modeling.train JOB.json`` (a JOB.json is a saved ``TrainingJob``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from tuneforge.atomic import atomic_directory
from tuneforge.corpus.records import Example, read_examples
from tuneforge.modeling.batching import batches_per_epoch, collate, step_batches
from tuneforge.modeling.checkpoint import load_latest_checkpoint, remove_checkpoints, save_checkpoint
from tuneforge.modeling.device import autocast, pick_device, training_precision
from tuneforge.modeling.fast_dropout import use_uniform_mask_dropout
from tuneforge.modeling.loading import load_for_training, use_4bit
from tuneforge.modeling.plan import REFIT_AT, TrainingPlan, fit_time_budget, learning_rate_factor, plan_training
from tuneforge.modeling.preflight import (
    TrainingConfigError,
    check_against_model,
    parse_training_config,
    peft_target_modules,
)
from tuneforge.modeling.prompts import EncodedExample, SummaryTooLong, encode_for_training
from tuneforge.modeling.records import TrainingJob, TrainingResult, save_training_result
from tuneforge.modeling.reporting import Fanout, LogReporter, PipesReporter, Reporter
from tuneforge.modeling.window import resolve_max_seq_len
from tuneforge.profiles import TrainingConfig

LOG_LINES = 10  # step lines per run in the log (metrics go to the reporters every step)


class TrainingOutOfMemory(RuntimeError):
    pass


@dataclass
class LoopState:
    """The loop's counters: with the weights, optimizer, schedule and random states, all a checkpoint needs."""

    step: int = 0
    trained_tokens: int = 0
    seconds: float = 0.0
    train_loss_curve: list[tuple[int, float]] = field(default_factory=list)
    validation_curve: list[tuple[int, float]] = field(default_factory=list)
    validation_loss_before: float = math.nan
    last_validation: float = math.nan
    best_loss: float = math.inf
    best_step: int = 0
    validations_without_improvement: int = 0
    mlflow_run_id: str | None = None
    plan: dict = field(default_factory=dict)  # a TrainingPlan; its steps may shrink once the first steps are timed
    unbudgeted_plan: dict = field(default_factory=dict)  # the plan before the time budget


def encode_rows(
    tokenizer, rows: list[Example], instructions: dict[str, str], max_seq_len: int, report: Reporter | None = None
) -> list[EncodedExample]:
    """Rows whose summary cannot fit ``max_seq_len`` are left out (and reported): cut, they would teach the model
    never to stop."""
    encoded, too_long = [], []
    for row in rows:
        try:
            encoded.append(encode_for_training(tokenizer, instructions[row.source], row.document, row.summary,
                                               max_seq_len))
        except SummaryTooLong:
            too_long.append(row.id)
    if too_long and report is not None:
        report.log(f"left out {len(too_long)} of {len(rows)} rows whose summary does not fit training.max_seq_len="
                   f"{max_seq_len} with some of its document (e.g. {', '.join(too_long[:3])}); raise max_seq_len to "
                   "train on them")
    return encoded


def summary_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy over the summary tokens, projecting to the vocabulary only where a summary token is
    predicted: with a 49k vocabulary the output layer is a fifth of the model's compute, and most positions are
    prompt."""
    labels = batch["labels"]
    predicts_target = (labels[:, 1:] != -100).any(dim=0)
    positions = predicts_target.nonzero().squeeze(-1)  # position t predicts token t + 1
    logits = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=positions,
        use_cache=False,  # a training forward needs no key/value cache
    ).logits
    targets = labels[:, positions + 1]
    return torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100)


@torch.no_grad()
def mean_loss(model, examples: list[EncodedExample], pad_id: int, batch_size: int, accelerator, bf16: bool) -> float:
    """Token-weighted mean loss over the examples' summary tokens, each process scoring its share."""
    model = accelerator.unwrap_model(model)  # uneven shards must not go through DDP's synchronised forward
    model.eval()
    totals = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    shard = examples[accelerator.process_index :: accelerator.num_processes]
    for start in range(0, len(shard), batch_size):
        chunk = shard[start : start + batch_size]
        batch = {k: v.to(accelerator.device) for k, v in collate(chunk, pad_id).items()}
        with autocast(accelerator.device, bf16):
            loss = summary_loss(model, batch)
        tokens = sum(e.target_tokens for e in chunk)
        totals += torch.tensor([loss.item() * tokens, tokens], dtype=torch.float64, device=accelerator.device)
    model.train()
    if accelerator.num_processes > 1:
        totals = accelerator.reduce(totals, reduction="sum")
    return (totals[0] / totals[1].clamp(min=1)).item()


def fresh_accelerator(device: torch.device):
    """An ``Accelerator`` that carries no precision of its own. accelerate keeps process-wide state, and a second
    ``Accelerator`` asking for another mixed precision raises; so each training autocasts in its own precision and
    accelerate always runs with ``mixed_precision="no"``. State another caller left with a mixed precision is reset
    (the distributed set-up, ``PartialState``, is kept)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state and AcceleratorState._shared_state.get("_mixed_precision", "no") != "no":
        AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(cpu=device.type == "cpu", mixed_precision="no")


def run_training(job: TrainingJob, reporters: list[Reporter] | tuple[Reporter, ...] = ()) -> TrainingResult:
    """Train (or resume) the adapter ``job`` describes and write it to ``job.out_dir``. Every data-parallel process
    calls this; only the first reports and writes files."""
    config = parse_training_config(job.config)
    check_against_model(config, Path(job.base_dir))
    if config.max_seq_len is None:  # the lora_adapter asset resolves it first; other callers get the same rule
        config, _ = resolve_max_seq_len(config, Path(job.base_dir), read_examples(Path(job.train_path)),
                                        job.instructions.values())

    device = pick_device()
    use_4bit(config, device)  # a 4-bit request without CUDA fails here, before any compute
    config = config.model_copy(update={"precision": training_precision(config.precision, device)})
    bf16 = config.precision == "bf16"
    accelerator = fresh_accelerator(device)
    checkpoint = load_latest_checkpoint(Path(job.checkpoint_dir))
    loop = LoopState(**checkpoint["loop"]) if checkpoint else LoopState()
    report = Fanout(list(reporters) if accelerator.is_main_process else [])
    if accelerator.is_main_process and job.tracking:
        from tuneforge.tracking import MlflowTrainingReporter

        tracker = MlflowTrainingReporter(job.tracking, run_id=loop.mlflow_run_id)
        loop.mlflow_run_id = tracker.run_id
        if not checkpoint:
            tracker.log_params(config.model_dump())
        report = Fanout([report, tracker])
    try:
        result = _train(job, config, accelerator, bf16, checkpoint, loop, report)
    except BaseException as error:
        report.fail(error)
        raise
    report.finish(result)
    return result


def _train(job, config: TrainingConfig, accelerator, bf16: bool, checkpoint, loop: LoopState, report) -> TrainingResult:
    from accelerate.utils import set_seed
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from transformers import AutoTokenizer

    rank, world = accelerator.process_index, accelerator.num_processes
    train_rows, validation_rows = read_examples(Path(job.train_path)), read_examples(Path(job.validation_path))
    if not train_rows:
        raise TrainingConfigError(f"{job.train_path} has no rows: add data or lower the test/validation shares")
    set_seed(config.seed)
    base_dir = Path(job.base_dir)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model = load_for_training(base_dir, config, accelerator.device, bf16)
    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=peft_target_modules(config), task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    if accelerator.device.type == "cpu":
        use_uniform_mask_dropout(model)
    train_set = encode_rows(tokenizer, train_rows[: config.max_train_rows], job.instructions, config.max_seq_len,
                            report)
    if not train_set:
        raise TrainingConfigError(f"no training row's summary fits training.max_seq_len={config.max_seq_len}: raise it")
    validation_set = encode_rows(
        tokenizer, validation_rows[: config.max_validation_rows], job.instructions, config.max_seq_len, report
    )
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate, weight_decay=config.weight_decay
    )
    lengths = [len(e.input_ids) for e in train_set]
    max_tokens = config.batch_size * config.max_seq_len if config.batching == "tokens" else None
    if not loop.plan:
        steps_per_epoch = math.ceil(batches_per_epoch(lengths, config.batch_size, config.seed, max_tokens)
                                    / (config.gradient_accumulation_steps * world))
        loop.plan = loop.unbudgeted_plan = plan_training(len(train_set), steps_per_epoch, config).as_dict()
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate_factor(
        step, config.warmup_steps, loop.plan["steps"], config.lr_schedule))
    best_weights = None
    if checkpoint:
        set_peft_model_state_dict(model, checkpoint["adapter"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        schedule.load_state_dict(checkpoint["schedule"])
        best_weights = checkpoint["best_weights"]
        if len(checkpoint["random"]) == world:
            _set_random_state(checkpoint["random"][rank])
        report.log(f"resuming from the checkpoint of step {loop.step} in {job.checkpoint_dir}")
    else:
        torch.manual_seed(config.seed + rank)  # same LoRA init on every process, different dropout
    resumed_from = loop.step
    model = accelerator.prepare(model)

    result = TrainingResult(
        adapter_dir=job.out_dir, steps=loop.plan["steps"], precision="bf16" if bf16 else "fp32",
        device=str(accelerator.device), world_size=world, instructions=job.instructions, config=config.model_dump(),
        resumed_from_step=resumed_from,
    )
    batch = f"{max_tokens} padded tokens" if max_tokens else f"{config.batch_size} rows"
    report.log(f"training {len(train_set)} rows on {world} × {accelerator.device} ({result.precision}), micro-batches "
               f"of {batch} × {config.gradient_accumulation_steps} × {world}; plan: "
               f"{TrainingPlan(**loop.plan).describe()}")

    def validate(step: int) -> float:
        loss = mean_loss(model, validation_set, pad_id, config.batch_size, accelerator, bf16)
        loop.last_validation = loss
        loop.validation_curve.append((step, round(loss, 5)))
        report.metrics(step, {"validation/loss": loss})
        return loss

    if validation_set and not checkpoint:
        loop.validation_loss_before = validate(0)
        report.log(f"validation loss before training: {loop.validation_loss_before:.4f}")

    batches = step_batches(lengths, config.batch_size, config.seed, config.gradient_accumulation_steps, rank, world,
                           loop.step, max_tokens)
    params = [p for p in model.parameters() if p.requires_grad]
    log_every = max(1, loop.plan["steps"] // LOG_LINES)
    probe_start = 0.0
    model.train()
    clock = time.perf_counter() - loop.seconds
    session_start, session_tokens = time.perf_counter(), 0
    try:
        while loop.step < loop.plan["steps"]:
            micro_batches = next(batches)
            totals = _accumulate_gradients(model, [[train_set[i] for i in ids] for ids in micro_batches], pad_id,
                                           accelerator, bf16)
            accelerator.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            loop.step += 1
            if world > 1:
                totals = accelerator.reduce(totals.to(accelerator.device), reduction="sum").cpu()
            step_loss = totals[0].item() / (len(micro_batches) * world)
            loop.trained_tokens += int(totals[1].item())
            session_tokens += int(totals[1].item())
            loop.train_loss_curve.append((loop.step, round(step_loss, 5)))
            rate = session_tokens / max(time.perf_counter() - session_start, 1e-9)
            report.metrics(loop.step, {"train/loss": step_loss, "train/learning_rate": schedule.get_last_lr()[0],
                                       "train/tokens_per_second": rate})
            if loop.step == resumed_from + 1:
                probe_start = time.perf_counter()
            elif loop.step - resumed_from in REFIT_AT and config.time_budget_minutes is not None:
                timed = loop.step - resumed_from - 1
                _fit_plan_to_budget(loop, config, accelerator, (time.perf_counter() - probe_start) / timed, timed,
                                    report)
                log_every = max(1, loop.plan["steps"] // LOG_LINES)
            if loop.step % log_every == 0 or loop.step == loop.plan["steps"]:
                seconds_per_step = (time.perf_counter() - session_start) / (loop.step - resumed_from)
                eta = (loop.plan["steps"] - loop.step) * seconds_per_step
                report.log(f"step {loop.step}/{loop.plan['steps']} loss {step_loss:.4f} "
                           f"lr {schedule.get_last_lr()[0]:.2e} {rate:.0f} tokens/s, ETA {eta:.0f}s")
            if validation_set and config.eval_every and loop.step % config.eval_every == 0:
                best_weights = _track_best(loop, validate(loop.step), config, model, accelerator,
                                           get_peft_model_state_dict, best_weights, report)
                if config.early_stopping_patience and (
                    loop.validations_without_improvement >= config.early_stopping_patience
                ):
                    result.stopped_early = True
                    report.log(f"early stopping at step {loop.step}: validation loss has not improved for "
                               f"{loop.validations_without_improvement} validations (best {loop.best_loss:.4f} "
                               f"at step {loop.best_step})")
                    break
            if config.checkpoint_every and loop.step % config.checkpoint_every == 0 and loop.step < loop.plan["steps"]:
                loop.seconds = time.perf_counter() - clock
                _save_checkpoint(job, config, loop, model, optimizer, schedule, best_weights, accelerator)
    except (torch.OutOfMemoryError, RuntimeError) as error:
        if isinstance(error, torch.OutOfMemoryError) or "can't allocate memory" in str(error):
            raise TrainingOutOfMemory(_out_of_memory_advice(config, accelerator, loop.step)) from error
        raise

    loop.seconds = time.perf_counter() - clock
    if validation_set:
        if not loop.validation_curve or loop.validation_curve[-1][0] != loop.step:
            best_weights = _track_best(loop, validate(loop.step), config, model, accelerator,
                                       get_peft_model_state_dict, best_weights, report)
        if best_weights is not None and loop.best_loss < loop.last_validation:
            set_peft_model_state_dict(accelerator.unwrap_model(model), best_weights)
            report.log(f"keeping the best adapter, from step {loop.best_step} (validation loss {loop.best_loss:.4f} "
                       f"against {loop.last_validation:.4f} at step {loop.step})")
        else:
            loop.best_loss, loop.best_step = loop.last_validation, loop.step
        report.log(f"validation loss after training: {loop.best_loss:.4f}")
    if not validation_set:
        loop.best_loss, loop.best_step = math.nan, loop.step
    result.validation_loss, result.best_step = loop.best_loss, loop.best_step
    result.train_loss_curve, result.validation_curve = loop.train_loss_curve, loop.validation_curve
    result.validation_loss_before, result.mlflow_run_id = loop.validation_loss_before, loop.mlflow_run_id
    result.trained_tokens, result.seconds = loop.trained_tokens, loop.seconds
    result.steps, result.plan = loop.step, loop.plan
    result.tokens_per_second = session_tokens / max(time.perf_counter() - session_start, 1e-9)
    result.peak_memory_mb = _peak_memory_mb(accelerator.device)
    if accelerator.is_main_process:
        save_adapter(accelerator.unwrap_model(model), tokenizer, result, Path(job.out_dir))
        remove_checkpoints(Path(job.checkpoint_dir))
    accelerator.wait_for_everyone()
    return result


def _fit_plan_to_budget(
    loop: LoopState, config: TrainingConfig, accelerator, seconds_per_step: float, timed: int, report
) -> None:
    """Shorten the plan to the time budget at the slowest process's measured speed."""
    if accelerator.num_processes > 1:
        seconds_per_step = accelerator.gather(torch.tensor([seconds_per_step], device=accelerator.device)).max().item()
    before = loop.plan["steps"]
    loop.plan = fit_time_budget(TrainingPlan(**loop.plan), TrainingPlan(**loop.unbudgeted_plan), seconds_per_step,
                                config.time_budget_minutes, loop.step).as_dict()
    if loop.plan["steps"] != before:
        report.log(f"time budget of {config.time_budget_minutes:g} minutes at {seconds_per_step:.2f} s per step "
                   f"(measured over {timed} steps): {loop.plan['steps']} steps instead of {before}")


def _accumulate_gradients(
    model, micro_batches: list[list[EncodedExample]], pad_id: int, accelerator, bf16: bool
) -> torch.Tensor:
    """Backward over one optimizer step's micro-batches, synchronising gradients across processes only on the last.
    Returns (sum of micro-batch losses, non-padding tokens)."""
    totals = torch.zeros(2, dtype=torch.float64)
    for index, examples in enumerate(micro_batches):
        batch = {k: v.to(accelerator.device) for k, v in collate(examples, pad_id).items()}
        last = index == len(micro_batches) - 1
        with contextlib.nullcontext() if last else accelerator.no_sync(model):
            with autocast(accelerator.device, bf16):
                loss = summary_loss(model, batch)
            accelerator.backward(loss / len(micro_batches))
        totals += torch.tensor([loss.item(), float(batch["attention_mask"].sum())], dtype=torch.float64)
    return totals


def _save_checkpoint(job, config, loop, model, optimizer, schedule, best_weights, accelerator) -> None:
    """Every process contributes its random state; the first writes."""
    from accelerate.utils import gather_object
    from peft import get_peft_model_state_dict

    random_states = gather_object([_random_state()])
    if accelerator.is_main_process:
        adapter = _cpu(get_peft_model_state_dict(accelerator.unwrap_model(model)))
        state = {"loop": asdict(loop), "adapter": adapter, "optimizer": optimizer.state_dict(),
                 "schedule": schedule.state_dict(), "random": random_states, "best_weights": best_weights}
        save_checkpoint(Path(job.checkpoint_dir), loop.step, state, config.keep_checkpoints)
    accelerator.wait_for_everyone()


def _track_best(loop: LoopState, loss: float, config: TrainingConfig, model, accelerator, state_dict, best, report):
    """Record a validation; returns the best weights so far (copied only when they improve)."""
    if loss < loop.best_loss - config.early_stopping_min_delta:
        loop.best_loss, loop.best_step, loop.validations_without_improvement = loss, loop.step, 0
        best = _cpu(state_dict(accelerator.unwrap_model(model)))
    else:
        loop.validations_without_improvement += 1
    report.log(f"validation loss at step {loop.step}: {loss:.4f} (best {loop.best_loss:.4f} at step {loop.best_step})")
    return best


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in state.items()}


def _random_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_random_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _out_of_memory_advice(config: TrainingConfig, accelerator, step: int) -> str:
    return (
        f"out of memory on {accelerator.device} at step {step + 1} with training.batch_size={config.batch_size} × "
        f"training.max_seq_len={config.max_seq_len}. Lower training.batch_size (raise "
        f"training.gradient_accumulation_steps by the same factor to keep the effective batch of "
        f"{config.batch_size * config.gradient_accumulation_steps}), or lower training.max_seq_len or "
        f"training.lora_rank, or run on a larger device (the compute resource)."
    )


def save_adapter(model, tokenizer, result: TrainingResult, out_dir: Path) -> None:
    """Write the adapter, tokenizer and training manifest to a temp dir, then rename it into place."""
    with atomic_directory(out_dir) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        save_training_result(result, staging)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tuneforge.modeling.train", description=__doc__)
    parser.add_argument("job", type=Path, help="a TrainingJob saved as JSON")
    args = parser.parse_args(argv)
    job = TrainingJob.load(args.job)
    first_process = os.environ.get("RANK", "0") == "0"
    with contextlib.ExitStack() as stack:
        reporters: list[Reporter] = [LogReporter(lambda line: print(line, flush=True))]
        if first_process:
            from dagster_pipes import DAGSTER_PIPES_CONTEXT_ENV_VAR, open_dagster_pipes

            if DAGSTER_PIPES_CONTEXT_ENV_VAR in os.environ:  # launched by Dagster through Pipes
                reporters = [PipesReporter(stack.enter_context(open_dagster_pipes()))]
        try:
            result = run_training(job, reporters)
        except (TrainingConfigError, TrainingOutOfMemory) as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from None
    if first_process:
        print(json.dumps({"adapter": result.adapter_dir, "validation_loss": result.validation_loss,
                          "world_size": result.world_size}))


if __name__ == "__main__":
    main()

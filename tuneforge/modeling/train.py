"""LoRA fine-tuning: a training loop short enough to read in one sitting.

peft wraps the base model with LoRA adapters; accelerate places it on the device and handles precision (bf16
autocast where the hardware has it) and, under ``accelerate launch``, data parallelism. Batches are grouped by
length so little compute goes to padding. The loss covers the summary tokens only.

Run standalone: ``python -m tuneforge.modeling.train --base DIR --train FILE --validation FILE --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from tuneforge.atomic import atomic_directory
from tuneforge.corpus.records import Example, read_examples
from tuneforge.modeling.device import pick_device, use_bf16
from tuneforge.modeling.prompts import EncodedExample, encode_for_training
from tuneforge.profiles import TrainingConfig

TRAINING_MANIFEST = "tuneforge_training.json"
Log = Callable[[str], None]


@dataclass
class TrainingResult:
    adapter_dir: str
    steps: int
    train_loss_curve: list[tuple[int, float]] = field(default_factory=list)
    validation_loss_before: float = math.nan
    validation_loss: float = math.nan
    trained_tokens: int = 0
    tokens_per_second: float = 0.0
    seconds: float = 0.0
    precision: str = "fp32"
    device: str = "cpu"
    instructions: dict[str, str] = field(default_factory=dict)
    config: dict = field(default_factory=dict)


def encode_rows(tokenizer, rows: list[Example], instructions: dict[str, str], max_seq_len: int) -> list[EncodedExample]:
    return [
        encode_for_training(tokenizer, instructions[row.source], row.document, row.summary, max_seq_len) for row in rows
    ]


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int) -> Iterator[list[int]]:
    """Endless stream of index batches: shuffle, sort within windows of 50 batches by length, shuffle batches."""
    rng = random.Random(seed)
    window = batch_size * 50
    while True:
        order = list(range(len(lengths)))
        rng.shuffle(order)
        batches = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
            batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
        rng.shuffle(batches)
        yield from batches


def collate(examples: list[EncodedExample], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        attention[row, :n] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention}


def summary_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy over the summary tokens, projecting to the vocabulary only where a summary token is
    predicted: with a 49k vocabulary the output layer is a fifth of the model's compute, and most positions are
    prompt."""
    labels = batch["labels"]
    predicts_target = (labels[:, 1:] != -100).any(dim=0)
    positions = predicts_target.nonzero().squeeze(-1)  # position t predicts token t + 1
    logits = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=positions
    ).logits
    targets = labels[:, positions + 1]
    return torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100)


@torch.no_grad()
def mean_loss(model, examples: list[EncodedExample], pad_id: int, batch_size: int, accelerator) -> float:
    """Token-weighted mean loss over the examples' target tokens."""
    model.eval()
    total, tokens = 0.0, 0
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        batch = {k: v.to(accelerator.device) for k, v in collate(chunk, pad_id).items()}
        with accelerator.autocast():
            loss = summary_loss(model, batch)
        n = sum(e.target_tokens for e in chunk)
        total += loss.item() * n
        tokens += n
    model.train()
    return total / max(tokens, 1)


def train_adapter(
    base_dir: Path,
    train_rows: list[Example],
    validation_rows: list[Example],
    instructions: dict[str, str],
    config: TrainingConfig,
    out_dir: Path,
    log: Log = print,
) -> TrainingResult:
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_cosine_schedule_with_warmup

    if not train_rows:
        raise ValueError("the training split is empty; add data or lower the test/validation shares")
    device = pick_device()
    bf16 = use_bf16(device, config.precision)
    accelerator = Accelerator(cpu=device.type == "cpu", mixed_precision="bf16" if bf16 else "no")
    set_seed(config.seed)

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    context = getattr(model.config, "max_position_embeddings", None)
    if context and config.max_seq_len > context:
        raise ValueError(f"training.max_seq_len={config.max_seq_len} exceeds the base model's context of {context}")
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)

    rows = train_rows[: config.max_train_rows] if config.max_train_rows else train_rows
    train_set = encode_rows(tokenizer, rows, instructions, config.max_seq_len)
    validation_set = encode_rows(
        tokenizer, validation_rows[: config.max_validation_rows], instructions, config.max_seq_len
    )
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    schedule = get_cosine_schedule_with_warmup(optimizer, config.warmup_steps, config.max_steps)
    model, optimizer, schedule = accelerator.prepare(model, optimizer, schedule)

    result = TrainingResult(
        adapter_dir=str(out_dir), steps=config.max_steps, precision="bf16" if bf16 else "fp32",
        device=str(accelerator.device), instructions=instructions, config=config.model_dump(),
    )
    if validation_set:
        result.validation_loss_before = mean_loss(model, validation_set, pad_id, config.batch_size, accelerator)
        log(f"validation loss before training: {result.validation_loss_before:.4f}")

    batches = length_grouped_batches([len(e.input_ids) for e in train_set], config.batch_size, config.seed)
    model.train()
    started = time.perf_counter()
    log_every = max(1, config.max_steps // 10)
    for step in range(1, config.max_steps + 1):
        chunk = [train_set[i] for i in next(batches)]
        batch = {k: v.to(accelerator.device) for k, v in collate(chunk, pad_id).items()}
        with accelerator.autocast():
            loss = summary_loss(model, batch)
        accelerator.backward(loss)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        result.trained_tokens += int(batch["attention_mask"].sum())
        result.train_loss_curve.append((step, round(loss.item(), 5)))
        if step % log_every == 0 or step == config.max_steps:
            elapsed = time.perf_counter() - started
            rate = result.trained_tokens / elapsed
            eta = (config.max_steps - step) * elapsed / step
            log(f"step {step}/{config.max_steps} loss {loss.item():.4f} lr {schedule.get_last_lr()[0]:.2e} "
                f"{rate:.0f} tokens/s, ETA {eta:.0f}s")
    result.seconds = time.perf_counter() - started
    result.tokens_per_second = result.trained_tokens / max(result.seconds, 1e-9)
    if validation_set:
        result.validation_loss = mean_loss(model, validation_set, pad_id, config.batch_size, accelerator)
        log(f"validation loss after training: {result.validation_loss:.4f}")

    save_adapter(accelerator.unwrap_model(model), tokenizer, result, out_dir)
    return result


def save_adapter(model, tokenizer, result: TrainingResult, out_dir: Path) -> None:
    """Write the adapter, tokenizer and training manifest to a temp dir, then rename it into place."""
    with atomic_directory(out_dir) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / TRAINING_MANIFEST).write_text(json.dumps(asdict(result), indent=2) + "\n")


def load_training_result(adapter_dir: Path) -> TrainingResult | None:
    manifest = adapter_dir / TRAINING_MANIFEST
    if not manifest.exists():
        return None
    data = json.loads(manifest.read_text())
    data["train_loss_curve"] = [tuple(point) for point in data["train_loss_curve"]]
    return TrainingResult(**data)


def main(argv: list[str] | None = None) -> None:
    from tuneforge.profiles import load_profile

    parser = argparse.ArgumentParser(prog="python -m tuneforge.modeling.train", description=__doc__)
    parser.add_argument("--base", type=Path, required=True, help="base model snapshot directory")
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--validation", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    profile = load_profile()
    train_rows, validation_rows = read_examples(args.train), read_examples(args.validation)
    sources = {row.source for row in train_rows + validation_rows}
    instructions = {source: profile.instruction_for(source) for source in sorted(sources)}
    result = train_adapter(args.base, train_rows, validation_rows, instructions, profile.training, args.out)
    print(json.dumps({"adapter": result.adapter_dir, "validation_loss": result.validation_loss}))


if __name__ == "__main__":
    main()

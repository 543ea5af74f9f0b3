"""Batched greedy generation: prompts sorted by length, left-padded, KV cache on."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from tuneforge.modeling.device import autocast, pick_device, use_bf16
from tuneforge.modeling.prompts import prompt_ids


@dataclass
class Prompt:
    instruction: str
    document: str


def load_for_inference(base_dir: Path, adapter_dir: Path | None = None):
    """The base model, with the LoRA adapter merged in when one is given (same outputs, no adapter overhead)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    model.to(pick_device()).eval()
    return model, tokenizer


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: list[Prompt],
    max_prompt_tokens: int,
    max_new_tokens: int,
    batch_size: int,
    log: Callable[[str], None] = print,
) -> list[str]:
    """Greedy completions, in the order of ``prompts``."""
    device = next(model.parameters()).device
    bf16 = use_bf16(device)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = [prompt_ids(tokenizer, p.instruction, p.document, max_prompt_tokens) for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    outputs: list[str] = [""] * len(prompts)
    started = time.perf_counter()
    for done, start in enumerate(range(0, len(order), batch_size), start=1):
        indices = order[start : start + batch_size]
        width = max(len(encoded[i]) for i in indices)
        input_ids = torch.full((len(indices), width), pad_id, dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for row, i in enumerate(indices):
            input_ids[row, width - len(encoded[i]) :] = torch.tensor(encoded[i])
            attention[row, width - len(encoded[i]) :] = 1
        with autocast(device, bf16):
            generated = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad_id,
                use_cache=True,
            )
        for row, i in enumerate(indices):
            outputs[i] = tokenizer.decode(generated[row, width:], skip_special_tokens=True).strip()
        total_batches = -(-len(order) // batch_size)
        elapsed = time.perf_counter() - started
        eta = elapsed / done * (total_batches - done)
        log(f"generated batch {done}/{total_batches} ({elapsed:.0f}s, ETA {eta:.0f}s)")
    return outputs

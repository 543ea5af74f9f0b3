"""Micro-batches for training: length-grouped so little compute goes to padding, deterministic so a resumed run
sees the same batches as an uninterrupted one, and split across data-parallel processes without overlap."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

import torch

from tuneforge.modeling.prompts import EncodedExample

WINDOW_BATCHES = 50  # rows are sorted by length within windows of this many batches, then batches are shuffled


def length_grouped_batches(
    lengths: list[int], batch_size: int, seed: int, max_tokens: int | None = None
) -> Iterator[list[int]]:
    """Endless stream of index batches: each epoch shuffles, sorts windows by length and shuffles the batches.
    With ``max_tokens``, a batch holds as many rows as fit that many padded tokens (at least one); otherwise
    ``batch_size`` rows."""
    rng = random.Random(seed)
    while True:
        yield from _epoch(rng, lengths, batch_size, max_tokens)


def batches_per_epoch(lengths: list[int], batch_size: int, seed: int, max_tokens: int | None = None) -> int:
    """Batches in the stream's first epoch (later epochs pack within a batch or two of it)."""
    return len(_epoch(random.Random(seed), lengths, batch_size, max_tokens))


def _epoch(rng: random.Random, lengths: list[int], batch_size: int, max_tokens: int | None) -> list[list[int]]:
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * WINDOW_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches.extend(_pack(chunk, lengths, max_tokens) if max_tokens else
                       [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)])
    rng.shuffle(batches)
    return batches


def _pack(ascending: list[int], lengths: list[int], max_tokens: int) -> list[list[int]]:
    """Consecutive rows (sorted by length, so the newest is the longest) while rows × longest fits."""
    batches: list[list[int]] = []
    current: list[int] = []
    for index in ascending:
        if current and (len(current) + 1) * lengths[index] > max_tokens:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def step_batches(
    lengths: list[int], batch_size: int, seed: int, micro_batches: int, rank: int, world_size: int, start_step: int,
    max_tokens: int | None = None,
) -> Iterator[list[list[int]]]:
    """This process's micro-batches for each optimizer step, from ``start_step`` on.

    Every process walks the same stream; step s takes the stream's next ``micro_batches × world_size`` batches and
    process r keeps every world_size-th of them. Skipping to ``start_step`` only advances index lists, so resuming is
    instant and sees exactly the batches an uninterrupted run would.
    """
    stream = length_grouped_batches(lengths, batch_size, seed, max_tokens)
    per_step = micro_batches * world_size
    for _ in itertools.islice(stream, start_step * per_step):
        pass
    while True:
        step = list(itertools.islice(stream, per_step))
        yield step[rank::world_size]


def collate(examples: list[EncodedExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest row; labels are -100 on padding and prompt."""
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

"""Dynamic batching: requests that arrive together are decoded together, on whichever model is served at the time.

One thread owns the model. It takes the first waiting request, lets others join for ``batch_wait_ms`` (or until
``max_batch_size``), groups them by decoding settings and runs each group through the same batched decoding loop
evaluation uses (``tuneforge.modeling.generate.decode_batch``), each row with its own ``max_tokens``. Every token
is handed to its request as it is chosen, so responses stream. ``swap`` replaces the served model between batches:
a batch that started on the old model finishes on it, so a promotion or rollback drops no request.

A request that arrives while a batch decodes waits for it to finish (batches are not joined mid-decode; continuous
batching is what vLLM adds on a GPU).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tuneforge.modeling.device import autocast
from tuneforge.modeling.generate import decode_batch
from tuneforge.profiles import DecodingConfig


@dataclass(frozen=True)
class ServedModel:
    """A loaded model and what identifies it: the registry version and the adapter's fingerprint."""

    model: Any
    tokenizer: Any
    name: str  # the registered model's name: the id clients ask for
    version: str
    fingerprint: str
    instructions: dict[str, str]  # source -> the instruction its adapter was trained with
    eos: frozenset[int]
    pad_id: int
    device: torch.device
    bf16: bool
    context: int | None  # the model's context length, when its config says
    directory: Path | None = None  # the merged export it was loaded from


class QueueFull(RuntimeError):
    """More requests are waiting or decoding than ``max_queue`` allows."""


# Events a request receives, in order: Started, Token*, then Done or Failed.
@dataclass(frozen=True)
class Started:
    version: str
    fingerprint: str


@dataclass(frozen=True)
class Token:
    token: int


@dataclass(frozen=True)
class Done:
    tokens: list[int]
    finished: bool  # ended with end-of-sequence rather than at max_tokens


@dataclass(frozen=True)
class Failed:
    message: str


Event = Started | Token | Done | Failed


@dataclass
class Job:
    prompt: list[int]
    max_tokens: int
    decoding: DecodingConfig
    emit: Callable[[Event], None]  # called from the engine's thread
    seed: int = 0
    _limits: list[int] | None = field(default=None, repr=False)
    _row: int = field(default=-1, repr=False)
    cancelled: bool = False

    def cancel(self) -> None:
        """Stop decoding this request (its client went away); the rest of its batch goes on."""
        self.cancelled = True
        if self._limits is not None:
            self._limits[self._row] = 0


@dataclass
class BatchStats:
    rows: int
    new_tokens: int
    seconds: float


class BatchEngine:
    def __init__(self, served: ServedModel, max_batch_size: int = 32, batch_wait_ms: float = 5.0,
                 max_queue: int = 256, on_batch: Callable[[BatchStats], None] | None = None) -> None:
        self._served = served
        self.max_batch_size, self.batch_wait = max_batch_size, batch_wait_ms / 1000
        self.max_queue = max_queue
        self._on_batch = on_batch
        self._waiting: queue.Queue[Job | None] = queue.Queue()
        self._depth = 0
        self._depth_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="tuneforge-batch-engine", daemon=True)
        self._thread.start()

    @property
    def served(self) -> ServedModel:
        return self._served

    def swap(self, served: ServedModel) -> None:
        """Serve ``served`` from the next batch on."""
        self._served = served

    def depth(self) -> int:
        """Requests waiting or decoding."""
        return self._depth

    def submit(self, job: Job) -> None:
        with self._depth_lock:
            if self._depth >= self.max_queue:
                raise QueueFull(f"{self._depth} requests are waiting or being answered (serving.max_queue="
                                f"{self.max_queue}); retry shortly")
            self._depth += 1
        self._waiting.put(job)

    def stop(self) -> None:
        """Finish the batch in progress, fail what still waits, and end the thread."""
        self._waiting.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            first = self._waiting.get()
            if first is None:
                self._fail_waiting("the server is shutting down")
                return
            batch, stopping = self._gather(first)
            groups: dict[str, list[Job]] = {}
            for job in batch:
                groups.setdefault(job.decoding.model_dump_json(), []).append(job)
            for jobs in groups.values():
                self._decode(jobs)
            if stopping:
                self._fail_waiting("the server is shutting down")
                return

    def _gather(self, first: Job) -> tuple[list[Job], bool]:
        batch = [first]
        deadline = time.monotonic() + self.batch_wait
        while len(batch) < self.max_batch_size:
            try:
                job = self._waiting.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                return batch, True
            batch.append(job)
        return batch, False

    def _decode(self, group: list[Job]) -> None:
        jobs = [job for job in group if not job.cancelled]  # a client gone before its batch started
        served = self._served  # a swap during this batch leaves it on the model it started with
        limits = [job.max_tokens for job in jobs]
        for row, job in enumerate(jobs):
            job._limits, job._row = limits, row
            job.emit(Started(served.version, served.fingerprint))
        started = time.perf_counter()
        try:
            if jobs:
                with torch.inference_mode(), autocast(served.device, served.bf16):
                    outputs = decode_batch(
                        served.model, [job.prompt for job in jobs], max(limits), served.pad_id, set(served.eos),
                        jobs[0].decoding, [job.seed for job in jobs], served.device, limits=limits,
                        on_token=lambda row, token: jobs[row].emit(Token(token)),
                    )
                for job, (tokens, finished) in zip(jobs, outputs, strict=True):
                    job.emit(Done(tokens, finished))
                if self._on_batch is not None:
                    self._on_batch(BatchStats(len(jobs), sum(len(t) for t, _ in outputs),
                                              time.perf_counter() - started))
        except Exception as error:  # noqa: BLE001 - every request of the batch gets the error, the engine lives on
            for job in jobs:
                job.emit(Failed(f"generation failed: {type(error).__name__}: {error}"))
        finally:
            with self._depth_lock:
                self._depth -= len(group)

    def _fail_waiting(self, message: str) -> None:
        while True:
            try:
                job = self._waiting.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job.emit(Failed(message))
                with self._depth_lock:
                    self._depth -= 1

"""Where the data funnel's per-chunk work runs: this process, a pool of local processes, or a Ray cluster.

Every engine maps a function over chunks and yields the results in input order, with a bounded number in flight,
so memory stays flat and the outputs are the same bytes whichever engine ran them: the chunk functions are pure and
everything order-dependent (row numbers, dedup decisions, file writes) happens in the caller, in input order.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from tuneforge.corpus.shards import FileShards, RayShards

ENGINES = ("local", "ray")
MIN_SHARDS, MAX_SHARDS = 16, 4096
SHARD_INPUT_BYTES = 256 << 20  # about 230k rows of 1.1 KB: a shard's keys take tens of MB to process
# Below this much input, starting worker processes costs more than they save (for cleaning's per-row work; a stage
# with lighter rows passes a higher bar to ``workers_for``).
PARALLEL_MIN_BYTES = 16 << 20


class EngineConfig(BaseModel):
    """Which engine runs the data funnel, and where (``environment.data_engine`` in tuneforge.yaml)."""

    model_config = ConfigDict(extra="forbid")

    engine: Literal["local", "ray"] = Field(
        "local", description="local: worker processes on this machine (cleaning.workers); ray: tasks on a Ray "
        "cluster (a local one started on demand unless address is set).")
    address: str = Field("", description="ray only: the cluster to join (ray://host:10001, or auto); empty: start a "
                         "local Ray for the run.")
    num_cpus: int | None = Field(None, ge=1, description="ray only, local Ray: CPUs it may use (None: all).")
    object_store_mb: int | None = Field(
        None, ge=75, description="ray only, local Ray: MiB of its object store, the shared memory holding the dedup "
        "shuffle (beyond it Ray spills objects to disk). The processes that put objects map the pages they wrote, so "
        "this bounds what the shuffle adds to a process's RSS. None: Ray's default, 30% of the memory.")
    tasks_per_cpu: int = Field(2, ge=1, description="Chunks in flight per worker or CPU: bounds memory.")
    dedup_shards: int | None = Field(
        None, ge=1, le=MAX_SHARDS, description="Shards the dedup keys (and ingestion's ids) are partitioned into: a "
        "shard holds about 1/dedup_shards of them. None: one per 256 MB of input, at least 16 and at most 4096, so a "
        "shard's keys stay about the same size however large the corpus.")

    def shards_for(self, input_bytes: int) -> int:
        """``dedup_shards`` as set, else sized to ``input_bytes`` of input (see the field)."""
        if self.dedup_shards is not None:
            return self.dedup_shards
        return min(MAX_SHARDS, max(MIN_SHARDS, math.ceil(input_bytes / SHARD_INPUT_BYTES)))


def engine_config(fields: dict[str, Any], workspace_root: Path) -> EngineConfig:
    """The engine ``environment.data_engine`` describes; a KubeRay cluster (``kubernetes``) is joined through its head
    service (the ``DataEngine`` resource also writes and applies it; ``python -m tuneforge.corpus`` only joins)."""
    from tuneforge.corpus.ray_cluster import RayClusterSettings, client_address

    known = {key: value for key, value in fields.items() if key in EngineConfig.model_fields}
    if fields.get("kubernetes"):
        settings = RayClusterSettings(**{"name": "tuneforge-data", "namespace": "default",
                                         "workspace_path": str(workspace_root), **fields["kubernetes"]})
        known["address"] = client_address(settings)
    return EngineConfig(**known)


class Engine(Protocol):
    workers: int

    def map_ordered(self, function: Callable[..., Any], items: Iterable[Any], *args: Any) -> Iterator[Any]: ...

    def warm(self, function: Callable[..., Any], *args: Any) -> None: ...

    def key_shards(self, directory: Path, count: int) -> FileShards | RayShards: ...


class InProcess:
    """No parallelism: the caller's process does the work (small inputs, tests)."""

    workers = 1

    def map_ordered(self, function: Callable[..., Any], items: Iterable[Any], *args: Any) -> Iterator[Any]:
        for item in items:
            yield function(item, *args)

    def warm(self, function: Callable[..., Any], *args: Any) -> None:
        return None

    def key_shards(self, directory: Path, count: int) -> FileShards:
        return FileShards(directory, count)


class LocalProcesses:
    """``workers`` spawned processes (spawn, not fork: the caller may be a threaded Dagster process)."""

    def __init__(self, pool: ProcessPoolExecutor, workers: int, tasks_per_worker: int = 2) -> None:
        self._pool, self.workers, self._in_flight = pool, workers, workers * tasks_per_worker

    def map_ordered(self, function: Callable[..., Any], items: Iterable[Any], *args: Any) -> Iterator[Any]:
        pending: deque = deque()
        for item in items:
            pending.append(self._pool.submit(function, item, *args))
            if len(pending) >= self._in_flight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def warm(self, function: Callable[..., Any], *args: Any) -> None:
        for _ in range(self.workers):  # one task each: a process pool starts a process per pending task
            self._pool.submit(function, *args)

    def key_shards(self, directory: Path, count: int) -> FileShards:
        return FileShards(directory, count)


class RayTasks:
    """Ray tasks, one per chunk; the chunk travels through Ray's object store and its result comes back in order."""

    def __init__(self, ray: Any, workers: int, tasks_per_cpu: int = 2) -> None:
        self._ray, self.workers, self._in_flight = ray, workers, workers * tasks_per_cpu
        self._remote: dict[Callable[..., Any], Any] = {}

    def _task(self, function: Callable[..., Any]) -> Any:
        if function not in self._remote:
            self._remote[function] = self._ray.remote(function)
        return self._remote[function]

    def map_ordered(self, function: Callable[..., Any], items: Iterable[Any], *args: Any) -> Iterator[Any]:
        task, ray = self._task(function), self._ray
        shared = [ray.put(arg) for arg in args]  # a config is shipped once, not with every chunk
        pending: deque = deque()
        for item in items:
            pending.append(task.remote(item, *shared))
            if len(pending) >= self._in_flight:
                yield ray.get(pending.popleft())
        while pending:
            yield ray.get(pending.popleft())

    def warm(self, function: Callable[..., Any], *args: Any) -> None:
        task = self._task(function)
        for _ in range(self.workers):
            task.remote(*args)

    def key_shards(self, directory: Path, count: int) -> RayShards:
        return RayShards(self._ray, count)


def workers_for(input_bytes: int, configured: int = 0, override: int | None = None,
                  minimum_bytes: int = PARALLEL_MIN_BYTES) -> int:
    """The processes the local engine uses for ``input_bytes`` of input: ``override`` when given (1: this process);
    none below ``minimum_bytes``, where starting them costs more than they save; else ``configured`` (0: one per
    CPU)."""
    if override is not None:
        return max(1, override)
    if input_bytes < minimum_bytes:
        return 1
    return configured or os.cpu_count() or 1


@contextlib.contextmanager
def open_engine(config: EngineConfig, local_workers: int) -> Iterator[Engine]:
    """The engine ``config`` names; ``local_workers`` is how many processes the local engine would use (1: none)."""
    if config.engine == "ray":
        with _ray_session(config) as ray:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
            yield RayTasks(ray, workers, config.tasks_per_cpu)
        return
    if local_workers <= 1:
        yield InProcess()
        return
    with ProcessPoolExecutor(local_workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield LocalProcesses(pool, local_workers, config.tasks_per_cpu)


@contextlib.contextmanager
def _ray_session(config: EngineConfig) -> Iterator[Any]:
    """Ray, initialised for this run unless the process already joined a cluster (then it is left as it was)."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("environment.data_engine.engine is 'ray' but Ray is not installed: "
                           "pip install 'tuneforge[ray]' (ray==2.60.0)") from None
    if ray.is_initialized():
        yield ray
        return
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if config.address:
        options["address"] = config.address
    else:
        options["num_cpus"] = config.num_cpus or os.cpu_count() or 1
        if config.object_store_mb is not None:
            options["object_store_memory"] = config.object_store_mb << 20
    ray.init(**options)
    try:
        yield ray
    finally:
        ray.shutdown()

"""Where the data funnel runs: worker processes on this machine, or a Ray cluster (``environment.data_engine`` in
tuneforge.yaml). The outputs are the same bytes on either; only speed and the machines used differ."""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field

from tuneforge.corpus.engines import EngineConfig


class DataEngine(dg.ConfigurableResource):
    engine: Literal["local", "ray"] = Field(
        "local", description="local: worker processes on this machine (cleaning.workers); ray: tasks on a Ray "
        "cluster (a local Ray started for the run unless address is set).")
    address: str = Field("", description="ray only: the cluster to join (ray://head:10001 for a KubeRay or any "
                         "remote cluster, auto for one this machine belongs to); empty: a local Ray for the run.")
    num_cpus: int | None = Field(None, ge=1, description="ray only, local Ray: CPUs it may use (None: all).")
    tasks_per_cpu: int = Field(2, ge=1, description="Chunks in flight per worker or CPU: bounds memory.")

    def config(self) -> EngineConfig:
        return EngineConfig(engine=self.engine, address=self.address, num_cpus=self.num_cpus,
                            tasks_per_cpu=self.tasks_per_cpu)

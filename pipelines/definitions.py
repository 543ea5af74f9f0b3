"""The code location: every asset, job and resource, loaded by workspace.yaml."""

import dagster as dg

from assets import ALL_ASSETS
from pipelines.jobs import JOBS
from resources import Compute, DvcRepository, ModelRegistry, Workspace

defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=JOBS,
    resources={"workspace": Workspace(), "dvc": DvcRepository(), "registry": ModelRegistry(), "compute": Compute()},
)

"""Dagster resources: where the workspace is, how data is versioned (DVC), and the model registry (MLflow)."""

from resources.compute import Compute
from resources.dvc import DvcRepository
from resources.registry import ModelRegistry
from resources.workspace import Workspace

__all__ = ["Compute", "DvcRepository", "ModelRegistry", "Workspace"]

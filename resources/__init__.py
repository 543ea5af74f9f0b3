"""Dagster resources: where the workspace is, how data is versioned (DVC), the model registry (MLflow), where
training runs (compute) and where the champion is served (serving)."""

from resources.compute import Compute
from resources.dvc import DvcRepository
from resources.registry import ModelRegistry
from resources.serving import Serving
from resources.workspace import Workspace

__all__ = ["Compute", "DvcRepository", "ModelRegistry", "Serving", "Workspace"]

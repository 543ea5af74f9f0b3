"""Dagster resources: where the workspace is, how data is versioned (DVC), the model registry (MLflow), where
training runs (compute), where the data funnel runs (data_engine) and where the champion is served (serving)."""

from resources.compute import Compute
from resources.data_engine import DataEngine
from resources.dvc import DvcRepository
from resources.registry import ModelRegistry
from resources.serving import Serving
from resources.workspace import Workspace

__all__ = ["Compute", "DataEngine", "DvcRepository", "ModelRegistry", "Serving", "Workspace"]

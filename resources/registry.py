"""The model registry resource: where MLflow lives (a local sqlite store by default) and the registered model's name."""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from resources.workspace import resolve_root
from tuneforge.layout import Layout
from tuneforge.registry import ChampionRegistry


class ModelRegistry(dg.ConfigurableResource):
    tracking_uri: str = Field("", description="Empty: $MLFLOW_TRACKING_URI, else sqlite under <root>/mlruns.")
    root: str = Field("", description="Workspace root for the default store; empty means the workspace root.")
    model_name: str = "tuneforge-summarizer"
    experiment: str = "tuneforge"

    @property
    def layout(self) -> Layout:
        return Layout(resolve_root(self.root))

    def tracking(self) -> str:
        if self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"):
            return self.tracking_uri or os.environ["MLFLOW_TRACKING_URI"]
        self.layout.mlflow_db.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.layout.mlflow_db}"

    def open(self) -> ChampionRegistry:
        return ChampionRegistry(self.tracking(), self.model_name, self.experiment, self.layout)

"""The MLflow model registry (a local sqlite store by default) behind a small promotion API."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field

from resources.workspace import resolve_root
from tuneforge.layout import Layout

CHAMPION = "champion"
PREVIOUS = "previous"


@dataclass
class RegisteredAdapter:
    version: str
    adapter_dir: str
    run_id: str
    tags: dict[str, str]


class ModelRegistry(dg.ConfigurableResource):
    tracking_uri: str = Field("", description="Empty: $MLFLOW_TRACKING_URI, else sqlite under <root>/mlruns.")
    root: str = Field("", description="Workspace root for the default store; empty means the workspace root.")
    model_name: str = "tuneforge-summarizer"
    experiment: str = "tuneforge"

    def _uri(self) -> str:
        if self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"):
            return self.tracking_uri or os.environ["MLFLOW_TRACKING_URI"]
        layout = Layout(resolve_root(self.root))
        layout.mlflow_db.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{layout.mlflow_db}"

    def _client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self._uri(), registry_uri=self._uri())

    def champion(self) -> RegisteredAdapter | None:
        from mlflow.exceptions import MlflowException

        client = self._client()
        try:
            version = client.get_model_version_by_alias(self.model_name, CHAMPION)
        except MlflowException:
            return None
        return RegisteredAdapter(version.version, version.tags.get("adapter_dir", ""), version.run_id, version.tags)

    def _experiment_id(self, client) -> str:
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is not None:
            return experiment.experiment_id
        artifacts = Layout(resolve_root(self.root)).mlflow_artifacts
        return client.create_experiment(self.experiment, artifact_location=artifacts.as_uri())

    def promote(self, adapter_dir: Path, params: dict, metrics: dict[str, float], tags: dict[str, str]) -> str:
        """Log the adapter as an MLflow run, register it as a new version and move the champion alias to it."""
        from mlflow.exceptions import MlflowException

        client = self._client()
        run = client.create_run(self._experiment_id(client), tags={"mlflow.runName": f"promote-{adapter_dir.name}"})
        run_id = run.info.run_id
        for key, value in params.items():
            client.log_param(run_id, key, str(value)[:6000])
        for key, value in metrics.items():
            client.log_metric(run_id, key, float(value))
        client.log_artifacts(run_id, str(adapter_dir), artifact_path="adapter")
        client.set_terminated(run_id)
        try:
            client.get_registered_model(self.model_name)
        except MlflowException:
            client.create_registered_model(self.model_name, description="LoRA adapters promoted by tuneforge")
        previous = self.champion()
        version = client.create_model_version(
            self.model_name, source=f"{run.info.artifact_uri}/adapter", run_id=run_id,
            tags={**tags, "adapter_dir": str(adapter_dir)},
        )
        if previous is not None:
            client.set_registered_model_alias(self.model_name, PREVIOUS, previous.version)
        client.set_registered_model_alias(self.model_name, CHAMPION, version.version)
        return version.version

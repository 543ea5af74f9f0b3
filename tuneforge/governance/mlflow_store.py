"""MLflow runs whose artifacts hold erased data or were trained on a dataset version that held it, and deleting
those artifacts (MLflow's API deletes runs only softly: their artifacts would stay)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from tuneforge.governance.matching import Needles
from tuneforge.governance.stored import files_under, holding

DATASET_TAG = "dataset_version"
ERASED_RUN_TAG = "tuneforge.erased"


@dataclass(frozen=True)
class RunHit:
    run_id: str
    name: str
    why: str  # "trained on <dataset version>", "artifacts hold erased data", "registered version N"


def local_artifact_dir(artifact_uri: str) -> Path:
    """The directory of a run's artifacts in a local (file:) artifact store; others are refused, by name."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"artifact store {artifact_uri} is not local: erasing from {parsed.scheme}:// stores is not "
                         "supported yet; delete the run's artifacts there by hand")
    return Path(unquote(parsed.path))


def runs_holding(client, needles: Needles, dataset_versions: set[str], run_ids: set[str]) -> list[RunHit]:
    """Runs tagged with one of ``dataset_versions``, in ``run_ids``, or whose artifacts hold needles."""
    from mlflow.entities import ViewType

    hits = []
    experiments = client.search_experiments(view_type=ViewType.ALL)
    for experiment in experiments:
        for run in client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL, max_results=50000):
            if ERASED_RUN_TAG in run.data.tags:
                continue
            name = run.data.tags.get("mlflow.runName", run.info.run_id)
            version = run.data.tags.get(DATASET_TAG)
            why = None
            if version in dataset_versions:
                why = f"trained on dataset version {version}"
            elif run.info.run_id in run_ids:
                why = "registered a model version trained on erased data"
            elif needles and next(holding(files_under(local_artifact_dir(run.info.artifact_uri)), needles), None):
                why = "its artifacts hold erased data"
            if why:
                hits.append(RunHit(run.info.run_id, name, why))
    return hits


def delete_artifacts(client, run_id: str, request: str) -> None:
    """Remove every artifact of the run and tag it with the request (idempotent)."""
    run = client.get_run(run_id)
    directory = local_artifact_dir(run.info.artifact_uri)
    if directory.exists():
        shutil.rmtree(directory)
    client.set_tag(run_id, ERASED_RUN_TAG, request)

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def no_stale_defs_state_storage():
    """Entering a DagsterInstance sets a context variable to its defs-state storage, which holds the instance by weak
    reference; an instance disposed in another context (a fixture's teardown) leaves it behind, and the next test
    loading Definitions fails with "Attempted to resolve undefined DagsterInstance weakref". Start each test clean."""
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    with set_defs_state_storage(None):
        yield


@pytest.fixture(scope="session")
def smoke_base_models(tmp_path_factory) -> Path:
    """The smoke profile's tiny base model, built once per session and copied into each workspace."""
    from tuneforge.modeling.base import resolve_base_model
    from tuneforge.profiles import load_profile

    models = tmp_path_factory.mktemp("base-models")
    resolve_base_model(load_profile("smoke").base_model, models)
    return models


def workspace_env(root: Path, smoke_base_models: Path) -> dict[str, str]:
    """Lay out a fresh tuneforge workspace (dvc.yaml, a Dagster home, the tiny base model) at ``root``; returns the
    environment that points every entry point at it on the smoke profile."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    home = root / ".dagster"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    shutil.copytree(smoke_base_models, root / "models" / "base")
    return {"TUNEFORGE_ROOT": str(root), "TUNEFORGE_PROFILE": "smoke", "DAGSTER_HOME": str(home)}


def enter_workspace(patch: pytest.MonkeyPatch, root: Path, env: dict[str, str]) -> None:
    for name, value in env.items():
        patch.setenv(name, value)
    patch.delenv("MLFLOW_TRACKING_URI", raising=False)
    patch.chdir(root)


@pytest.fixture
def workspace(tmp_path, monkeypatch, smoke_base_models) -> Path:
    """A fresh tuneforge workspace (dvc.yaml, Dagster home, smoke profile) in a temporary directory."""
    root = tmp_path / "ws"
    enter_workspace(monkeypatch, root, workspace_env(root, smoke_base_models))
    return root


@pytest.fixture(params=["fp32", "bf16"])
def precision(request, monkeypatch) -> str:
    """Run the test once in each precision, whatever ``auto`` would pick on this machine: every entry point (the
    trainer in this process or a subprocess, the assets) follows ``TUNEFORGE_PRECISION``."""
    monkeypatch.setenv("TUNEFORGE_PRECISION", request.param)
    return request.param

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def smoke_base_models(tmp_path_factory) -> Path:
    """The smoke profile's tiny base model, built once per session and copied into each workspace."""
    from tuneforge.modeling.base import resolve_base_model
    from tuneforge.profiles import load_profile

    models = tmp_path_factory.mktemp("base-models")
    resolve_base_model(load_profile("smoke").base_model, models)
    return models


@pytest.fixture
def workspace(tmp_path, monkeypatch, smoke_base_models) -> Path:
    """A fresh tuneforge workspace (dvc.yaml, Dagster home, smoke profile) in a temporary directory."""
    root = tmp_path / "ws"
    root.mkdir()
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    home = root / ".dagster"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    shutil.copytree(smoke_base_models, root / "models" / "base")
    monkeypatch.setenv("TUNEFORGE_ROOT", str(root))
    monkeypatch.setenv("TUNEFORGE_PROFILE", "smoke")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(root)
    return root

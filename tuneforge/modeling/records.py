"""What a training run is given and what it leaves behind, as plain JSON records.

Torch-free on purpose: the compute resource, the tracking reporter and the promotion assets read and write these
records without loading the training stack.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tuneforge.layout import Layout

TRAINING_MANIFEST = "tuneforge_training.json"
TRAINING_INPUTS = "tuneforge_inputs.json"  # the digests of the data an adapter was trained on (its lineage)
JOB_FILE = "job.json"


@dataclass
class TrackingTarget:
    """Where a training run is recorded and what it is tagged with (dataset_version, base_sha256, config_hash...)."""

    tracking_uri: str
    experiment: str
    run_name: str
    tags: dict[str, str] = field(default_factory=dict)
    # None: ``<db dir>/artifacts`` beside a sqlite store (MLflow's own default is ./mlruns under the working
    # directory), the store's default otherwise.
    artifact_location: str | None = None
    # The file lock held while the store is opened and the experiment created (a fresh sqlite store creates its
    # schema when opened: two processes must not both do it). None: ``<db>.lock`` beside a sqlite store.
    lock_path: str | None = None

    @classmethod
    def in_workspace(
        cls, layout: Layout, tracking_uri: str, experiment: str, run_name: str, tags: Mapping[str, str]
    ) -> TrackingTarget:
        """A target sharing the workspace's artifact directory and store lock with ``ChampionRegistry``."""
        return cls(tracking_uri, experiment, run_name, dict(tags),
                   artifact_location=layout.mlflow_artifacts.as_uri(),
                   lock_path=str(layout.registry_lock))


@dataclass
class TrainingJob:
    """Everything a training process needs, as JSON: it may run in this process, a subprocess or a pod."""

    base_dir: str
    train_path: str
    validation_path: str
    instructions: dict[str, str]
    config: dict
    out_dir: str
    checkpoint_dir: str
    tracking: TrackingTarget | None = None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainingJob:
        data = json.loads(Path(path).read_text())
        tracking = data.pop("tracking", None)
        return cls(**data, tracking=TrackingTarget(**tracking) if tracking else None)


@dataclass
class TrainingResult:
    adapter_dir: str
    steps: int
    train_loss_curve: list[tuple[int, float]] = field(default_factory=list)
    validation_curve: list[tuple[int, float]] = field(default_factory=list)
    validation_loss_before: float = math.nan
    validation_loss: float = math.nan
    best_step: int = 0
    stopped_early: bool = False
    resumed_from_step: int = 0
    trained_tokens: int = 0
    tokens_per_second: float = 0.0
    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    precision: str = "fp32"
    device: str = "cpu"
    world_size: int = 1
    mlflow_run_id: str | None = None
    instructions: dict[str, str] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    plan: dict = field(default_factory=dict)  # tuneforge.modeling.plan.TrainingPlan: why this many steps


def save_training_result(result: TrainingResult, adapter_dir: Path) -> None:
    """Write the training manifest into ``adapter_dir``."""
    (adapter_dir / TRAINING_MANIFEST).write_text(json.dumps(asdict(result), indent=2) + "\n")


def load_training_result(adapter_dir: Path) -> TrainingResult | None:
    """The training manifest in ``adapter_dir``, or None where there is none."""
    manifest = adapter_dir / TRAINING_MANIFEST
    if not manifest.exists():
        return None
    data = json.loads(manifest.read_text())
    for curve in ("train_loss_curve", "validation_curve"):
        data[curve] = [tuple(point) for point in data.get(curve, [])]
    return TrainingResult(**data)


def save_training_inputs(adapter_dir: Path, inputs: Mapping[str, object]) -> None:
    """Record beside the adapter the inputs its fingerprint was made from (the train and validation files' md5s,
    which are their DVC object ids): an erasure finds the adapters trained on a file by them."""
    path = adapter_dir / TRAINING_INPUTS
    if adapter_dir.is_dir() and not path.exists():
        path.write_text(json.dumps(dict(inputs), indent=2, sort_keys=True, default=str) + "\n")


def load_training_inputs(adapter_dir: Path) -> dict | None:
    path = adapter_dir / TRAINING_INPUTS
    return json.loads(path.read_text()) if path.is_file() else None

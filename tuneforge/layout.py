"""Where every artifact lives inside a tuneforge workspace (a project checkout, or a temporary directory in tests)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "data" / "raw"

    @property
    def ingested(self) -> Path:
        return self.root / "data" / "ingested"

    @property
    def cleaned(self) -> Path:
        return self.root / "data" / "cleaned"

    @property
    def curated(self) -> Path:
        return self.root / "data" / "curated"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def base_models(self) -> Path:
        return self.models / "base"

    @property
    def adapters(self) -> Path:
        return self.models / "adapters"

    @property
    def checkpoints(self) -> Path:
        """Resumable training checkpoints, one directory per adapter fingerprint, removed once it is trained."""
        return self.models / "checkpoints"

    @property
    def registry_lock(self) -> Path:
        """Held while the MLflow store is opened or the champion changes."""
        return self.models / ".registry.lock"

    @property
    def experiments_file(self) -> Path:
        return self.root / "experiments.yaml"

    @property
    def exports(self) -> Path:
        """Merged full-weight exports, one directory per adapter."""
        return self.models / "exports"

    @property
    def champion_export(self) -> Path:
        """A symlink to the champion's merged export: what a server loads."""
        return self.models / "champion"

    @property
    def promotions_log(self) -> Path:
        """The audit log: one JSON line per promotion and rollback."""
        return self.models / "promotions.jsonl"

    @property
    def deployments(self) -> Path:
        """Serving manifests rendered for each champion (Kubernetes)."""
        return self.models / "deployments"

    @property
    def request_logs(self) -> Path:
        """What the server answered, one JSONL file per day (redacted)."""
        return self.root / "logs" / "requests"

    @property
    def feedback_logs(self) -> Path:
        """Users' ratings and corrections, one JSONL file per day (redacted)."""
        return self.root / "logs" / "feedback"

    @property
    def governance(self) -> Path:
        """Erasure requests, tombstones and their audit log: hashes only, never the erased values (commit it)."""
        return self.root / "governance"

    @property
    def tombstones(self) -> Path:
        """Records erased on request, which ingestion skips when a file brings them back."""
        return self.governance / "tombstones.jsonl"

    @property
    def erasure_log(self) -> Path:
        """The append-only audit log of erasure requests: who, when, what (as hashes and counts)."""
        return self.governance / "erasures.jsonl"

    @property
    def erasure_requests(self) -> Path:
        """One JSON file per erasure request: its targets and the steps done, so a killed erasure resumes."""
        return self.governance / "requests"

    @property
    def restored(self) -> Path:
        return self.root / "data" / "restored"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlruns" / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlruns" / "artifacts"


def user_cache_dir() -> Path:
    """Where tuneforge keeps what it works out once per machine (``$XDG_CACHE_HOME/tuneforge``, else
    ``~/.cache/tuneforge``): outside any workspace, since it depends on the machine and the installed packages."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "tuneforge"

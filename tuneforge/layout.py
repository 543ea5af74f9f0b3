"""Where every artifact lives inside a tuneforge workspace (a project checkout, or a temporary directory in tests)."""

from __future__ import annotations

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
    def base_models(self) -> Path:
        return self.root / "models" / "base"

    @property
    def adapters(self) -> Path:
        return self.root / "models" / "adapters"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlruns" / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlruns" / "artifacts"

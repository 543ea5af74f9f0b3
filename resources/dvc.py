"""DVC through its CLI, serialized by a file lock: DVC's own repo lock fails instead of waiting."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import yaml
from filelock import FileLock
from pydantic import Field

from resources.workspace import resolve_root

DEFAULT_REMOTE = "local"


class DvcError(RuntimeError):
    pass


class DvcRepository(dg.ConfigurableResource):
    root: str = Field("", description="DVC repository root; empty means the workspace root.")
    remote_url: str = Field("", description="Default remote when the repository has none; empty: <root>/.dvcstore.")

    @property
    def path(self) -> Path:
        return resolve_root(self.root)

    def _dvc(self, *args: str) -> str:
        executable = Path(sys.executable).with_name("dvc")
        command = [str(executable) if executable.exists() else (shutil.which("dvc") or "dvc"), *args]
        done = subprocess.run(command, cwd=self.path, capture_output=True, text=True)
        if done.returncode != 0:
            raise DvcError(f"`dvc {' '.join(args)}` failed in {self.path}:\n{done.stderr.strip() or done.stdout}")
        return done.stdout

    def _locked(self) -> FileLock:
        return FileLock(self.path / ".dvc" / "tmp" / "tuneforge.lock")

    def ensure_initialized(self) -> None:
        """`dvc init` (without git outside a git checkout) and a default local remote, if missing."""
        if not (self.path / "dvc.yaml").exists():
            raise DvcError(f"{self.path / 'dvc.yaml'} is missing: the workspace root must hold tuneforge's dvc.yaml.")
        if not (self.path / ".dvc").is_dir():
            self._dvc("init", "-q", *([] if (self.path / ".git").exists() else ["--no-scm"]))
        (self.path / ".dvc" / "tmp").mkdir(parents=True, exist_ok=True)
        with self._locked():
            if not self._dvc("remote", "list").strip():
                url = self.remote_url or str(self.path / ".dvcstore")
                self._dvc("remote", "add", "-d", DEFAULT_REMOTE, url)

    def add(self, target: Path) -> str:
        """Track a file or directory; returns its DVC hash (``<md5>`` or ``<md5>.dir``)."""
        with self._locked():
            self._dvc("add", "-q", str(target.relative_to(self.path)))
        record = yaml.safe_load(target.with_name(target.name + ".dvc").read_text())
        return record["outs"][0]["md5"]

    def commit(self, stage: str) -> dict[str, str]:
        """Record a ``dvc.yaml`` stage's current outputs in ``dvc.lock`` and the cache; returns {out path: hash}."""
        with self._locked():
            self._dvc("commit", "-f", "-q", stage)
        lock = yaml.safe_load((self.path / "dvc.lock").read_text())
        return {out["path"]: out["md5"] for out in lock["stages"][stage].get("outs", [])}

    def push(self) -> None:
        with self._locked():
            self._dvc("push", "-q")

    def status(self) -> str:
        with self._locked():
            return self._dvc("status")

"""DVC through its CLI, serialized by a file lock: DVC's own repo lock fails instead of waiting.

The default remote is ``<root>/.dvcstore`` unless the repository has one. ``remote_url`` (``environment.dvc`` in
tuneforge.yaml) makes the workspace push to and pull from another: a path, or ``s3://bucket/prefix`` through the
dvc-s3 plugin, on AWS or on any S3-compatible server named by ``remote_endpoint_url``. It is written as the remote
``tuneforge`` to the workspace's own ``.dvc/config.local`` (not versioned, so each workspace names its own store)
and made the default there; credentials come from the environment (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an instance role) and are never written to any DVC file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import dagster as dg
import yaml
from filelock import FileLock
from pydantic import Field, model_validator

from resources.workspace import resolve_root
from tuneforge.corpus.objectstore import check_remote

DEFAULT_REMOTE = "local"
CONFIGURED_REMOTE = "tuneforge"  # the remote remote_url describes, in .dvc/config.local


class DvcError(RuntimeError):
    pass


class DvcObjectMissing(DvcError):
    """The object is neither in the local cache nor on the default remote."""


class DvcRepository(dg.ConfigurableResource):
    root: str = Field("", description="DVC repository root; empty means the workspace root.")
    remote_url: str = Field(
        "", description="The workspace's default remote: a path, or s3://bucket/prefix (dvc-s3); empty: the "
        "repository's default remote, else <root>/.dvcstore.")
    remote_endpoint_url: str = Field(
        "", description="s3:// remotes: an S3-compatible server (MinIO, Ceph, ...), http(s)://host:port; empty: AWS.")
    remote_region: str = Field("", description="s3:// remotes: the bucket's region; empty: the AWS default.")

    @model_validator(mode="after")
    def _check_remote(self) -> DvcRepository:
        try:
            check_remote(self.remote_url, self.remote_endpoint_url, self.remote_region)
        except ValueError as error:
            raise ValueError(f"DvcRepository config: {error}") from None
        return self

    @property
    def path(self) -> Path:
        return resolve_root(self.root)

    def _dvc(self, *args: str) -> str:
        executable = Path(sys.executable).with_name("dvc")
        command = [str(executable) if executable.exists() else (shutil.which("dvc") or "dvc"), *args]
        # No usage report: it forks a daemon per command that tries the network (unreachable here).
        env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
        done = subprocess.run(command, cwd=self.path, capture_output=True, text=True, env=env)
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
            if self.remote_url:
                self._configure_remote()
            elif not self._dvc("remote", "list").strip():
                self._dvc("remote", "add", "-d", DEFAULT_REMOTE, str(self.path / ".dvcstore"))

    def _remote_settings(self) -> dict[str, str]:
        """The remote's DVC options (``dvc remote modify`` names); no credentials: those come from the environment."""
        # A path is made absolute (as DVC would store it relative to .dvc/), so the comparison below finds it again.
        url = self.remote_url if "://" in self.remote_url else str((self.path / self.remote_url).resolve())
        settings = {"url": url, "endpointurl": self.remote_endpoint_url, "region": self.remote_region}
        return {key: value for key, value in settings.items() if value}

    def _configure_remote(self) -> None:
        """Make the workspace's local config name ``remote_url`` (and its options) as the default remote, unless it
        does already (one ``dvc config`` call when nothing changed)."""
        wanted = {f"remote.{CONFIGURED_REMOTE}.{key}": value for key, value in self._remote_settings().items()}
        wanted["core.remote"] = CONFIGURED_REMOTE
        listed = self._dvc("config", "--local", "--list") if (self.path / ".dvc" / "config.local").exists() else ""
        current = dict(line.split("=", 1) for line in listed.splitlines() if "=" in line)
        ours = {key: value for key, value in current.items()
                if key == "core.remote" or key.startswith(f"remote.{CONFIGURED_REMOTE}.")}
        if ours == wanted:
            return
        # --force replaces the remote's whole section, so options no longer configured go with it.
        settings = self._remote_settings()
        self._dvc("remote", "add", "--local", "--force", "--default", CONFIGURED_REMOTE, settings.pop("url"))
        for key, value in settings.items():
            self._dvc("remote", "modify", "--local", CONFIGURED_REMOTE, key, value)

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
        """Push to the default remote (``remote_url``'s, as the settings say now, when one is configured)."""
        with self._locked():
            if self.remote_url:
                self._configure_remote()
            self._dvc("push", "-q")

    def status(self) -> str:
        with self._locked():
            return self._dvc("status")

    def restore(self, md5: str, target: Path) -> Path:
        """Check out the object ``md5`` (a file's md5, or ``<md5>.dir`` for a directory) at ``target``, fetching it
        from the default remote when the local cache lacks it; returns ``target``."""
        target = Path(target).resolve()
        if target.exists() and (target.is_file() or any(target.iterdir())):
            raise DvcError(f"{target} already exists and is not empty: remove it or restore somewhere else.")
        if not (self.path / ".dvc").is_dir():
            raise DvcError(f"{self.path} is not a DVC repository (no .dvc/): there is nothing to restore from here.")
        (self.path / ".dvc" / "tmp").mkdir(parents=True, exist_ok=True)
        if self.remote_url:
            with self._locked():
                self._configure_remote()
        # DVC 3 drops external outputs, so the object is checked out inside the repository through a throwaway
        # .dvc file and then moved; `hash: md5` marks it as a DVC 3 hash (without it DVC looks in the 2.x cache).
        with self._locked(), tempfile.TemporaryDirectory(prefix=".restore-", dir=self.path) as staging:
            record = Path(staging) / "out.dvc"
            record.write_text(yaml.safe_dump({"outs": [{"md5": md5, "hash": "md5", "path": "out"}]}))
            self._pull(record, md5)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir():
                target.rmdir()
            shutil.move(record.with_suffix(""), target)
        return target

    def _pull(self, record: Path, md5: str) -> None:
        try:
            self._dvc("pull", str(record.relative_to(self.path)))
        except DvcError as error:
            if "Missing cache files" not in str(error):
                raise
            raise DvcObjectMissing(
                f"DVC object {md5} is neither in the local cache ({self._dvc('cache', 'dir').strip()}) nor on the "
                f"default remote ({self._default_remote()}). Push it from the workspace that produced it "
                "(`dvc push`), or point this workspace at the remote holding it (environment.dvc.remote_url in "
                "tuneforge.yaml, with remote_endpoint_url for an S3-compatible server)."
            ) from None

    def _default_remote(self) -> str:
        remotes = self._dvc("remote", "list").splitlines()
        default = next((line for line in remotes if line.endswith("(default)")), remotes[0] if remotes else "none")
        return " ".join(default.removesuffix("(default)").split())

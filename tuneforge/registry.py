"""The champion: which promoted model serves, kept in the MLflow model registry and on disk.

The registry's ``champion`` alias is the source of truth; the former champion keeps the ``previous`` alias.
``models/champion`` is a symlink to the champion's merged export, swapped atomically after the alias moves (and
re-synced from the alias whenever the registry is locked, so a crash between the two heals itself). Every change
takes one file lock and is a compare-and-swap on the champion the caller evaluated against, so two promotions racing
cannot interleave: the second finds the champion changed and is refused. Each promotion and rollback is appended to
``models/promotions.jsonl``, the audit log.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from filelock import FileLock

from tuneforge import prompt_registry
from tuneforge.audit_log import append_entry, now, read_entries, user
from tuneforge.layout import Layout

CHAMPION = "champion"
PREVIOUS = "previous"
CANARY = "canary"
ERASED_TAG = "tuneforge.erased"
PROMPT_TAG = "prompt."
LOCK_TIMEOUT_SECONDS = 600


class RegistryError(RuntimeError):
    """A registry operation that cannot be carried out; the message says why and what to do."""


class ChampionChanged(RegistryError):
    pass


@dataclass
class RegisteredModel:
    version: str
    run_id: str
    tags: dict[str, str]
    created: float  # seconds since the epoch

    @property
    def adapter_dir(self) -> str:
        return self.tags.get("adapter_dir", "")

    @property
    def export_dir(self) -> str:
        return self.tags.get("export_dir", "")


def prompts_of(model: RegisteredModel) -> dict[str, str]:
    """Source -> the prompt version the model's adapter was trained with (from its version tags)."""
    return {key.removeprefix(PROMPT_TAG): uri for key, uri in model.tags.items() if key.startswith(PROMPT_TAG)}


@dataclass
class Candidate:
    """What a promotion registers: the adapter, its merged export, and what to record about them."""

    adapter_dir: Path
    export_dir: Path
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[Path] = field(default_factory=list)  # files logged beside the adapter (report, model card)
    prompts: dict[str, str] = field(default_factory=dict)  # source -> the prompt version it was trained with


@dataclass
class AuditEntry:
    event: str  # "promote" or "rollback"
    version: str  # the champion afterwards
    replaced: str | None  # the champion before
    at: str
    by: str
    detail: dict = field(default_factory=dict)


class ChampionRegistry:
    def __init__(self, tracking_uri: str, model_name: str, experiment: str, layout: Layout):
        from mlflow import MlflowClient

        self.model_name = model_name
        self.experiment = experiment
        self.layout = layout
        with self._lock():  # a fresh sqlite store creates its schema when opened: two processes must not both do it
            self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
            self.client.search_registered_models(max_results=1)

    # ------------------------------------------------------------------------------------------------ reading

    def by_alias(self, alias: str) -> RegisteredModel | None:
        from mlflow.exceptions import MlflowException

        try:
            version = self.client.get_model_version_by_alias(self.model_name, alias)
        except MlflowException:
            return None
        return self._registered(version)

    def champion(self) -> RegisteredModel | None:
        return self.by_alias(CHAMPION)

    def previous(self) -> RegisteredModel | None:
        return self.by_alias(PREVIOUS)

    def canary(self) -> RegisteredModel | None:
        """The version taking a share of served traffic before it may become champion (``tuneforge canary``)."""
        return self.by_alias(CANARY)

    def version(self, version: str) -> RegisteredModel:
        from mlflow.exceptions import MlflowException

        try:
            return self._registered(self.client.get_model_version(self.model_name, version))
        except MlflowException:
            known = ", ".join(v.version for v in self.versions()) or "none"
            raise RegistryError(f"{self.model_name} has no version {version} (registered versions: {known})") from None

    def versions(self) -> list[RegisteredModel]:
        found = self.client.search_model_versions(f"name='{self.model_name}'")
        return sorted((self._registered(v) for v in found), key=lambda m: int(m.version))

    def run_metrics(self, model: RegisteredModel) -> dict[str, float]:
        return dict(self.client.get_run(model.run_id).data.metrics)

    def history(self) -> list[AuditEntry]:
        return [AuditEntry(**entry) for entry in read_entries(self.layout.promotions_log)]

    @staticmethod
    def _registered(version) -> RegisteredModel:
        return RegisteredModel(str(version.version), version.run_id, dict(version.tags),
                               version.creation_timestamp / 1000)

    def local_adapter(self, model: RegisteredModel) -> Path | None:
        """The model's adapter directory, downloaded from its MLflow run (under ``models/adapters/from-registry/``)
        when it is gone from disk."""
        if Path(model.adapter_dir, "adapter_config.json").is_file():
            return Path(model.adapter_dir)
        download_to = self.layout.adapters / "from-registry" / model.version
        try:
            self.client.download_artifacts(model.run_id, "adapter", str(download_to))
        except Exception:  # noqa: BLE001 - an unreachable or pruned artifact store: the caller falls back
            return None
        adapter = download_to / "adapter"
        return adapter if (adapter / "adapter_config.json").is_file() else None

    def log_evaluation(
        self, name: str, params: dict[str, str], metrics: dict[str, float], artifacts: list[Path]
    ) -> str:
        """An MLflow run holding an evaluation's figures and report files; returns its run id."""
        tags = {"mlflow.runName": name, "tuneforge.kind": "evaluation"}
        run = self.client.create_run(self._experiment_id(), tags=tags)
        for key, value in params.items():
            self.client.log_param(run.info.run_id, key, str(value)[:6000])
        for key, value in metrics.items():
            self.client.log_metric(run.info.run_id, key, float(value))
        for path in artifacts:
            self.client.log_artifact(run.info.run_id, str(path))
        self.client.set_terminated(run.info.run_id)
        return run.info.run_id

    # ------------------------------------------------------------------------------------------------ changing

    def promote(self, candidate: Candidate, expected_champion: str | None) -> str:
        """Register the candidate and make it champion, if the champion is still ``expected_champion``."""
        with self._locked():
            current = self._expect_champion(expected_champion)
            found = current.version if current else None
            version = self._register(candidate)
            if current is not None:
                self.client.set_registered_model_alias(self.model_name, PREVIOUS, current.version)
            self.client.set_registered_model_alias(self.model_name, CHAMPION, version)
            prompt_registry.set_alias(self.client, candidate.prompts)
            self._sync_export_link()
            self._audit("promote", version, found, {"adapter_dir": str(candidate.adapter_dir),
                                                    "export_dir": str(candidate.export_dir), **candidate.tags})
            return version

    def start_canary(self, candidate: Candidate, expected_champion: str | None) -> str:
        """Register the candidate and give it the ``canary`` alias (the champion stays), if the champion is still
        ``expected_champion``; a canary already running is replaced."""
        with self._locked():
            current = self._expect_champion(expected_champion)
            found = current.version if current else None
            if current is None:
                raise RegistryError("there is no champion to compare a canary with: promote the first model directly "
                                    "(promotion.rollout: direct)")
            version = self._register(candidate)
            self.client.set_registered_model_alias(self.model_name, CANARY, version)
            self._audit("canary", version, None, {"champion": found, "adapter_dir": str(candidate.adapter_dir),
                                                  "export_dir": str(candidate.export_dir)})
            return version

    def stop_canary(self) -> str:
        """Take the canary alias away (its version stays registered); returns the version it named."""
        with self._locked():
            canary = self._require_canary()
            self.client.delete_registered_model_alias(self.model_name, CANARY)
            self._audit("canary-stopped", canary.version, None, {})
            return canary.version

    def promote_canary(self) -> tuple[str, str]:
        """Make the canary champion (the champion becomes ``previous``); returns (former champion, new champion)."""
        with self._locked():
            canary, current = self._require_canary(), self.champion()
            if current is not None:
                self.client.set_registered_model_alias(self.model_name, PREVIOUS, current.version)
            self.client.set_registered_model_alias(self.model_name, CHAMPION, canary.version)
            self.client.delete_registered_model_alias(self.model_name, CANARY)
            prompt_registry.set_alias(self.client, prompts_of(canary))
            self._sync_export_link()
            former = current.version if current else None
            self._audit("promote", canary.version, former, {"from": "canary", "export_dir": canary.export_dir})
            return former or "", canary.version

    def _expect_champion(self, expected: str | None) -> RegisteredModel | None:
        """The champion, if it is still the ``expected`` version (the one a candidate was evaluated against)."""
        current = self.champion()
        found = current.version if current else None
        if found != expected:
            raise ChampionChanged(
                f"the champion changed while this candidate was evaluated (expected version {expected or 'none'}, "
                f"found {found}); re-evaluate it against the new champion"
            )
        return current

    def _require_canary(self) -> RegisteredModel:
        canary = self.canary()
        if canary is None:
            raise RegistryError(f"{self.model_name} has no canary (promotion.rollout: canary starts one)")
        return canary

    def rollback(self, to: str | None = None) -> tuple[str, str]:
        """Make ``to`` (default: the ``previous`` alias) champion again; returns (former champion, new champion)."""
        with self._locked():
            current = self.champion()
            if current is None:
                raise RegistryError("nothing is promoted yet: there is no champion to roll back")
            target = self.version(to) if to else self.previous()
            if target is None:
                raise RegistryError(
                    f"version {current.version} is the first champion: there is no previous one to roll back to"
                )
            if target.version == current.version:
                raise RegistryError(f"version {target.version} is already the champion")
            if ERASED_TAG in target.tags:
                raise RegistryError(f"version {target.version} was trained on data erased by request "
                                    f"{target.tags[ERASED_TAG]}: it cannot serve again")
            if not Path(target.export_dir, "config.json").is_file():
                raise RegistryError(
                    f"version {target.version}'s merged export {target.export_dir or '(not recorded)'} is missing; "
                    "re-materialize merged_export for its adapter, or roll back to another version with --to"
                )
            self.client.set_registered_model_alias(self.model_name, CHAMPION, target.version)
            prompt_registry.set_alias(self.client, prompts_of(target))
            before = self._champion_before(target.version)
            if before is None:
                self.client.delete_registered_model_alias(self.model_name, PREVIOUS)
            else:
                self.client.set_registered_model_alias(self.model_name, PREVIOUS, before)
            self._sync_export_link()
            self._audit("rollback", target.version, current.version, {"export_dir": target.export_dir})
            return current.version, target.version

    def demote(self, versions: set[str], request: str) -> dict[str, str | None]:
        """Erasure: mark ``versions`` (``tuneforge.erased`` = the request) and take every alias off them. A champion
        among them gives way to the newest other version whose export is on disk, or to none. Returns the aliases
        that moved: {alias: the version it names now, or None when it was removed}."""
        with self._locked():
            moved: dict[str, str | None] = {}
            for version in sorted(versions, key=int):
                self.client.set_model_version_tag(self.model_name, version, ERASED_TAG, request)
            for alias in (CANARY, PREVIOUS):
                holder = self.by_alias(alias)
                if holder is not None and holder.version in versions:
                    self.client.delete_registered_model_alias(self.model_name, alias)
                    moved[alias] = None
            current = self.champion()
            if current is not None and current.version in versions:
                fallback = next((m for m in reversed(self.versions()) if m.version not in versions
                                 and ERASED_TAG not in m.tags and Path(m.export_dir, "config.json").is_file()), None)
                if fallback is None:
                    self.client.delete_registered_model_alias(self.model_name, CHAMPION)
                    self.layout.champion_export.unlink(missing_ok=True)
                else:
                    self.client.set_registered_model_alias(self.model_name, CHAMPION, fallback.version)
                    prompt_registry.set_alias(self.client, prompts_of(fallback))
                    previous = self.previous()
                    if previous is not None and previous.version == fallback.version:
                        self.client.delete_registered_model_alias(self.model_name, PREVIOUS)
                        moved[PREVIOUS] = None
                moved[CHAMPION] = fallback.version if fallback else None
                self._sync_export_link()
                self._audit("erase", moved[CHAMPION] or "", current.version, {"request": request})
            return moved

    def _champion_before(self, version: str) -> str | None:
        """The champion that ``version`` replaced when it was last made champion, per the audit log."""
        for entry in reversed(self.history()):
            if entry.version == version and entry.replaced and entry.replaced != version:
                return entry.replaced
        return None

    def _register(self, candidate: Candidate) -> str:
        from mlflow.exceptions import MlflowException

        client = self.client
        run = client.create_run(self._experiment_id(), tags={"mlflow.runName": f"promote-{candidate.adapter_dir.name}"})
        run_id = run.info.run_id
        for key, value in candidate.params.items():
            client.log_param(run_id, key, str(value)[:6000])
        for key, value in candidate.metrics.items():
            client.log_metric(run_id, key, float(value))
        client.log_artifacts(run_id, str(candidate.adapter_dir), artifact_path="adapter")
        for path in candidate.artifacts:
            client.log_artifact(run_id, str(path))
        client.set_terminated(run_id)
        try:
            client.get_registered_model(self.model_name)
        except MlflowException:
            client.create_registered_model(self.model_name, description="LoRA adapters promoted by tuneforge")
        tags = {**candidate.tags, "adapter_dir": str(candidate.adapter_dir), "export_dir": str(candidate.export_dir),
                "promoted_at": now(), **{PROMPT_TAG + source: uri for source, uri in candidate.prompts.items()}}
        version = client.create_model_version(
            self.model_name, source=f"{run.info.artifact_uri}/adapter", run_id=run_id, tags=tags
        )
        return str(version.version)

    def _experiment_id(self) -> str:
        experiment = self.client.get_experiment_by_name(self.experiment)
        if experiment is not None:
            return experiment.experiment_id
        return self.client.create_experiment(self.experiment, artifact_location=self.layout.mlflow_artifacts.as_uri())

    # ------------------------------------------------------------------------------------------------ on disk

    def register_prompts(self, instructions: dict[str, str], run_id: str | None = None) -> dict[str, str]:
        """Each source's instruction as a prompt version (new only where the text changed), linked to ``run_id``."""
        with self._lock():
            uris = prompt_registry.register_instructions(self.client, instructions)
        if run_id:
            prompt_registry.link_to_run(self.client, run_id, uris)
        return uris

    def _lock(self) -> FileLock:
        self.layout.models.mkdir(parents=True, exist_ok=True)
        return FileLock(self.layout.registry_lock, timeout=LOCK_TIMEOUT_SECONDS)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock():
            self._sync_export_link()
            yield

    def _sync_export_link(self) -> None:
        """Point ``models/champion`` at the champion's export (atomically: a new symlink renamed over the old)."""
        champion = self.champion()
        link = self.layout.champion_export
        if champion is None or not champion.export_dir:
            return
        target = os.path.relpath(champion.export_dir, link.parent)
        if link.is_symlink() and os.readlink(link) == target:
            return
        staging = link.with_name(f".{link.name}.{os.getpid()}")
        staging.unlink(missing_ok=True)
        staging.symlink_to(target, target_is_directory=True)
        os.replace(staging, link)

    def _audit(self, event: str, version: str, replaced: str | None, detail: dict) -> None:
        append_entry(self.layout.promotions_log, asdict(AuditEntry(event, version, replaced, now(), user(), detail)))

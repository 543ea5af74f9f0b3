"""The project file, ``tuneforge.yaml`` at the workspace root: the one place that decides a workspace's settings.

Every key is optional::

    profile: demo                  # the built-in profile the settings start from (demo, smoke)
    environment:                   # where and how things run
      executor: local              # local (processes forked from a preloaded server) or k8s (a pod per step)
      schedule_timezone: UTC       # of the weekly retrain and nightly monitoring schedules
      compute: {mode: local, processes: 2}   # fields of the compute resource (resources/compute.py)
      dvc: {remote_url: s3://bucket/tuneforge, remote_endpoint_url: http://minio:9000}  # where data versions go
    training: {lora_rank: 8}       # any profile setting: cleaning, split, validation, base_model, training,
    evaluation: {max_new_tokens: 96}  # evaluation, promotion, drift, retrain, instructions, default_instruction

Precedence, lowest first: the profile's defaults, ``tuneforge.yaml``, environment variables (``TUNEFORGE_PROFILE``,
``TUNEFORGE_EXECUTOR``, ``TUNEFORGE_SCHEDULE_TIMEZONE``; ``TUNEFORGE_PRECISION`` for the training precision), and
for one run the Dagster launchpad. Unknown keys and bad values fail naming the file and the key.
``tuneforge config`` prints every effective setting and where it came from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tuneforge.profiles import DEFAULT_PROFILE, PROFILE_ENV_VAR, PROFILES, Profile

PROJECT_FILE = "tuneforge.yaml"
ENVIRONMENT_VARIABLES = {
    "profile": PROFILE_ENV_VAR,
    "executor": "TUNEFORGE_EXECUTOR",
    "schedule_timezone": "TUNEFORGE_SCHEDULE_TIMEZONE",
}
PRECISION_ENV_VAR = "TUNEFORGE_PRECISION"  # the training precision (tuneforge.modeling.device); shown here
NOT_SETTINGS = {"name", "embedded_rows_per_source"}  # fixed by the profile itself


class ProjectFileError(ValueError):
    """The project file cannot be used; the message names the file and the key."""


class DvcSettings(BaseModel):
    """Where the workspace's data versions are pushed and pulled from: fields of the dvc resource (resources/dvc.py,
    docs/object-storage.md). Credentials are not settings: they come from the environment."""

    model_config = ConfigDict(extra="forbid")

    remote_url: str = Field("", description="The default DVC remote: a path, or s3://bucket/prefix; empty: the "
                            "repository's default remote, else <root>/.dvcstore.")
    remote_endpoint_url: str = Field("", description="s3:// remotes: an S3-compatible server, http(s)://host:port.")
    remote_region: str = Field("", description="s3:// remotes: the bucket's region.")

    @model_validator(mode="after")
    def _no_credentials(self) -> DvcSettings:
        from tuneforge.corpus.objectstore import check_remote

        check_remote(self.remote_url, self.remote_endpoint_url, self.remote_region)
        return self


class Environment(BaseModel):
    """Where and how the pipeline runs, as opposed to what it computes."""

    model_config = ConfigDict(extra="forbid")

    executor: Literal["local", "k8s"] = Field(
        "local", description="local: step processes forked from a server that imported the code once; k8s: a pod "
        "per step (dagster-k8s).",
    )
    schedule_timezone: str = Field("UTC", description="Time zone of the retrain and monitoring schedules.")
    compute: dict[str, Any] = Field(
        default_factory=dict, description="Fields of the compute resource: mode (in_process, local, kubernetes), "
        "processes, image, gpus, ...",
    )
    data_engine: dict[str, Any] = Field(
        default_factory=dict, description="Fields of the data engine resource: engine (local, ray), address (a Ray "
        "cluster), num_cpus, object_store_mb, tasks_per_cpu, dedup_shards.",
    )
    dvc: DvcSettings = Field(default_factory=DvcSettings, description="The DVC remote data versions go to.")
    serving: dict[str, Any] = Field(
        default_factory=dict, description="Fields of the serving resource: mode (local, kubernetes), engine "
        "(tuneforge, vllm), image, gpus, workspace_claim, apply, ...",
    )

    @field_validator("schedule_timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (an IANA name such as UTC or Europe/Paris)") from None
        return name


@dataclass
class Project:
    root: Path
    profile_name: str
    profile: Profile
    environment: Environment
    origins: dict[str, str] = field(default_factory=dict)  # dotted setting -> where its value came from

    @property
    def file(self) -> Path:
        return self.root / PROJECT_FILE

    def settings(self) -> list[tuple[str, Any, str]]:
        """(dotted name, effective value, origin) of every setting, environment first."""
        values = {"profile": self.profile_name}
        values |= _dotted(self.environment.model_dump(), "environment")
        values |= _dotted(self.profile.model_dump(exclude=NOT_SETTINGS))
        return [(name, value, self.origins.get(name, self._default_origin(name))) for name, value in values.items()]

    def _default_origin(self, name: str) -> str:
        return "default" if name.startswith("environment.") else f"profile {self.profile_name}"


def load_project(root: Path, profile: str | None = None) -> Project:
    """The workspace's effective settings. ``profile`` (a resource's explicit choice) outranks every other source."""
    path = root / PROJECT_FILE
    data = _read(path)
    origins: dict[str, str] = {}
    environment_data = data.pop("environment", None) or {}
    if not isinstance(environment_data, dict):
        raise ProjectFileError(f"{path}: environment: expected a mapping of settings, got {environment_data!r}")
    origins |= {name: PROJECT_FILE for name in _dotted(environment_data, "environment")}
    name = data.pop("profile", None)
    origins["profile"] = PROJECT_FILE if name else f"default ({DEFAULT_PROFILE})"
    for key, variable in ENVIRONMENT_VARIABLES.items():
        value = os.environ.get(variable, "").strip()
        if not value:
            continue
        if key == "profile":
            name = value
        else:
            environment_data[key] = value
        origins[key if key == "profile" else f"environment.{key}"] = f"${variable}"
    if profile:
        name, origins["profile"] = profile, "the workspace resource"
    name = name or DEFAULT_PROFILE
    if name not in PROFILES:
        raise ProjectFileError(f"unknown profile {name!r} (from {origins['profile']}); choose one of: "
                               f"{', '.join(sorted(PROFILES))}")
    environment = _validated(Environment, environment_data, path, "environment.")
    _reject_unknown(data, Profile, path, "")
    base = PROFILES[name]().model_dump()
    effective = _validated(Profile, _merged(base, data), path, "")
    origins |= {setting: PROJECT_FILE for setting in _dotted(data)}
    if os.environ.get(PRECISION_ENV_VAR, "").strip():
        origins["training.precision"] = f"${PRECISION_ENV_VAR} (overrides it at run time)"
    return Project(root=root, profile_name=name, profile=effective, environment=environment, origins=origins)


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ProjectFileError(f"{path} is not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ProjectFileError(f"{path}: expected a mapping of settings at the top level, got {type(data).__name__}")
    return data


def _reject_unknown(data: dict[str, Any], model: type[BaseModel], path: Path, prefix: str) -> None:
    """Unknown keys fail, naming the file and the key: a misspelt setting must not silently keep its default."""
    fields = {name: info for name, info in model.model_fields.items() if not (prefix == "" and name in NOT_SETTINGS)}
    for key, value in data.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ProjectFileError(f"{path}: {prefix}{key}: unknown setting; known here: {known}")
        annotation = fields[key].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if not isinstance(value, dict):
                raise ProjectFileError(f"{path}: {prefix}{key}: expected a mapping of settings, got {value!r}")
            _reject_unknown(value, annotation, path, f"{prefix}{key}.")


def _validated(model: type[BaseModel], data: dict[str, Any], path: Path, prefix: str):
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = [f"{prefix}{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
                    f"{_shown(problem.get('input'))}" for problem in error.errors()]
        raise ProjectFileError(f"{path}: " + "; ".join(problems)) from None


def _shown(value: Any) -> str:
    """The bad value, for the error; not a whole section (the message names the fields) nor a URL holding
    credentials."""
    if isinstance(value, dict) or (isinstance(value, str) and "://" in value and "@" in value):
        return ""
    return f" (got {value!r})"


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) \
            else value
    return merged


def _dotted(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat |= _dotted(value, name)
        else:
            flat[name] = value
    return flat


def settings_markdown(project: Project) -> str:
    """The effective settings as a Markdown table (the code location's metadata in the UI)."""
    rows = [f"| `{name}` | `{value!r}` | {origin} |" for name, value, origin in project.settings()]
    return "\n".join(["| setting | value | from |", "|---|---|---|", *rows])

"""Named training experiments from a versioned file (``experiments.yaml``): one Dagster partition each.

An experiment overrides some of the profile's training settings; its config hash identifies the exact
hyperparameters an adapter was trained with, so a sweep's adapters can be compared and the best one chosen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tuneforge.fingerprint import fingerprint
from tuneforge.modeling.preflight import parse_training_config
from tuneforge.profiles import TrainingConfig

DEFAULT_EXPERIMENT = "baseline"
ENTRY_KEYS = ("description", "training", "instruction", "instructions")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class ExperimentsError(ValueError):
    pass


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    instruction: str | None = None  # every source's instruction in this experiment
    instructions: dict[str, str] = field(default_factory=dict)  # per source, over ``instruction``

    def instruction_for(self, source: str, otherwise: str) -> str:
        """This experiment's instruction for ``source``, else ``otherwise`` (the project's)."""
        return self.instructions.get(source) or self.instruction or otherwise

    def config(self, profile_training: TrainingConfig, overrides: dict[str, Any] | None = None) -> TrainingConfig:
        """The profile's settings, then this experiment's, then launch-time ``overrides`` (None values ignored)."""
        values = profile_training.model_dump() | self.training
        values |= {key: value for key, value in (overrides or {}).items() if value is not None}
        return parse_training_config(values, where=f"experiment {self.name!r}: training")


def load_experiments(path: Path) -> dict[str, Experiment]:
    """The experiments in ``path``; without the file, only the default experiment (the profile's settings)."""
    if not path.exists():
        return {DEFAULT_EXPERIMENT: Experiment(DEFAULT_EXPERIMENT, "The profile's settings.")}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ExperimentsError(f"{path} is not valid YAML: {error}") from None
    entries = data.get("experiments") if isinstance(data, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise ExperimentsError(f"{path} must hold a mapping 'experiments: {{name: {{training: {{...}}}}}}'")
    experiments = {}
    for name, entry in entries.items():
        where = f"{path}: experiment {name!r}"
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise ExperimentsError(f"{where}: names are lower-case letters, digits, '.', '_' or '-' (a partition key)")
        entry = entry or {}
        unknown = sorted(set(entry) - set(ENTRY_KEYS)) if isinstance(entry, dict) else ["(not a mapping)"]
        if unknown:
            raise ExperimentsError(f"{where}: only {', '.join(ENTRY_KEYS)} are allowed, found {unknown}")
        training = entry.get("training") or {}
        if not isinstance(training, dict):
            raise ExperimentsError(f"{where}: 'training' must be a mapping of hyperparameters")
        instruction = entry.get("instruction")
        if instruction is not None and (not isinstance(instruction, str) or not instruction.strip()):
            raise ExperimentsError(f"{where}: 'instruction' must be a non-empty string")
        instructions = entry.get("instructions") or {}
        if not isinstance(instructions, dict) or not all(
            isinstance(text, str) and text.strip() for text in instructions.values()
        ):
            raise ExperimentsError(f"{where}: 'instructions' must map source names to non-empty strings")
        experiments[name] = Experiment(name, str(entry.get("description", "")), dict(training), instruction,
                                       {str(source): text for source, text in instructions.items()})
    return experiments


def validate_experiments(experiments: dict[str, Experiment], profile_training: TrainingConfig) -> None:
    """Every experiment resolves to a valid training config (errors name the experiment and the field)."""
    for experiment in experiments.values():
        experiment.config(profile_training)


def config_hash(config: TrainingConfig) -> str:
    return fingerprint(training=config.model_dump())[:12]

"""Checks a training config against the base model before any compute, with errors that name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from tuneforge.profiles import TrainingConfig

ALL_LINEAR = "all-linear"


class TrainingConfigError(ValueError):
    pass


def parse_training_config(values: dict[str, Any], where: str = "training") -> TrainingConfig:
    """Validate hyperparameters; the error lists each bad field as ``<where>.<field>: <problem> (got <value>)``."""
    try:
        return TrainingConfig.model_validate(values)
    except ValidationError as error:
        problems = []
        for issue in error.errors():
            field = ".".join(str(part) for part in issue["loc"]) or "(config)"
            got = f" (got {issue['input']!r})" if issue["type"] != "missing" and issue["loc"] else ""
            problems.append(f"{where}.{field}: {issue['msg']}{got}")
        raise TrainingConfigError("invalid training config:\n  " + "\n  ".join(problems)) from None


def check_against_model(config: TrainingConfig, base_dir: Path) -> None:
    """Sequence length within the model's context; every target module names a linear layer of the model."""
    from transformers import AutoConfig, AutoModelForCausalLM

    model_config = AutoConfig.from_pretrained(base_dir)
    context = getattr(model_config, "max_position_embeddings", None)
    if context and config.max_seq_len is not None and config.max_seq_len > context:
        raise TrainingConfigError(
            f"training.max_seq_len: {config.max_seq_len} exceeds the context of the base model {base_dir.name} "
            f"({context} tokens); lower it"
        )
    if config.target_modules == [ALL_LINEAR]:
        return
    with torch.device("meta"):  # module names without allocating weights
        model = AutoModelForCausalLM.from_config(model_config)
    linear = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    unknown = [t for t in config.target_modules if not any(n == t or n.endswith(f".{t}") for n in linear)]
    if unknown:
        known = sorted({name.rsplit(".", 1)[-1] for name in linear})
        raise TrainingConfigError(
            f"training.target_modules: {', '.join(unknown)} match no linear layer of the base model {base_dir.name}; "
            f"its linear layers are {', '.join(known)} (or use ['{ALL_LINEAR}'])"
        )


def peft_target_modules(config: TrainingConfig) -> str | list[str]:
    return ALL_LINEAR if config.target_modules == [ALL_LINEAR] else list(config.target_modules)

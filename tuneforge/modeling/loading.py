"""The base model as training needs it: fp32 weights, or 4-bit NF4 weights (QLoRA) on a CUDA GPU with bitsandbytes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from tuneforge.modeling.preflight import TrainingConfigError
from tuneforge.profiles import TrainingConfig


def bitsandbytes_available() -> bool:
    return importlib.util.find_spec("bitsandbytes") is not None


def use_4bit(config: TrainingConfig, device: torch.device) -> bool:
    """``auto`` quantizes exactly where QLoRA runs: a CUDA device with bitsandbytes installed."""
    possible = device.type == "cuda" and bitsandbytes_available()
    if config.quantization == "4bit" and not possible:
        raise TrainingConfigError(
            "training.quantization: '4bit' (QLoRA) needs a CUDA GPU and the bitsandbytes package "
            f"(device: {device.type}, bitsandbytes installed: {bitsandbytes_available()}); use 'auto' or 'none'"
        )
    return config.quantization == "4bit" or (config.quantization == "auto" and possible)


def load_for_training(base_dir: Path, config: TrainingConfig, device: torch.device, bf16: bool):
    from transformers import AutoModelForCausalLM

    if not use_4bit(config, device):
        return AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    from peft import prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    quantization = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if bf16 else torch.float16,
    )
    model = AutoModelForCausalLM.from_pretrained(
        base_dir, quantization_config=quantization, device_map={"": device.index or 0}
    )
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)

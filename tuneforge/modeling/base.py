"""Resolve the configured base model, once, into a local safetensors snapshot with a manifest.

The snapshot directory (``<models>/<name>-<spec hash>/``) holds ``model.safetensors``, the tokenizer and
``tuneforge_model.json`` (spec, sha256 checksum, license, parameter count). A snapshot whose manifest matches the
spec is reused, so the 20-second GGUF dequantization happens once per workspace.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from tuneforge.atomic import atomic_directory
from tuneforge.embedded import MissingPackageError, package_dir
from tuneforge.profiles import BaseModelConfig

MANIFEST = "tuneforge_model.json"


class BaseModelError(ValueError):
    """The configured base model cannot be found or loaded; the message names the fix."""


@dataclass
class BaseModelSnapshot:
    path: Path
    sha256: str
    license: str
    parameters: int
    reused: bool

    @classmethod
    def from_manifest(cls, path: Path, reused: bool) -> BaseModelSnapshot:
        manifest = json.loads((path / MANIFEST).read_text())
        return cls(path, manifest["sha256"], manifest["license"], manifest["parameters"], reused)


def spec_hash(config: BaseModelConfig) -> str:
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:12]


def snapshot_dir(models_dir: Path, config: BaseModelConfig) -> Path:
    return models_dir / f"{config.name}-{spec_hash(config)}"


def resolve_base_model(config: BaseModelConfig, models_dir: Path) -> BaseModelSnapshot:
    target = snapshot_dir(models_dir, config)
    if (target / MANIFEST).exists():
        return BaseModelSnapshot.from_manifest(target, reused=True)
    model, tokenizer = _load(config)
    with atomic_directory(target) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        manifest = {
            "spec": config.model_dump(),
            "sha256": _sha256_of_weights(staging),
            "license": config.license,
            "parameters": sum(p.numel() for p in model.parameters()),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return BaseModelSnapshot.from_manifest(target, reused=False)


def _sha256_of_weights(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.safetensors")):
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def _gguf_file(config: BaseModelConfig) -> Path:
    try:
        path = package_dir(config.package, config.package.replace("_", "-")) / config.file
    except MissingPackageError as error:
        raise BaseModelError(str(error)) from error
    if not path.exists():
        raise BaseModelError(f"GGUF file {config.file!r} not found in package {config.package!r} (looked at {path}).")
    return path


def _load(config: BaseModelConfig):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if config.kind == "gguf":
        gguf = _gguf_file(config)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
        # A GGUF-loaded model refuses save_pretrained, so copy its weights into a fresh model of the same config.
        model = AutoModelForCausalLM.from_config(quantized.config, dtype="float32")
        model.load_state_dict(quantized.state_dict())
        model.generation_config = quantized.generation_config
        return model, tokenizer
    if config.kind == "pretrained":
        return _load_pretrained(config)
    return _build_random(config)


def _load_pretrained(config: BaseModelConfig):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    location = config.path or config.name
    if config.path and not Path(config.path).is_dir():
        raise BaseModelError(
            f"Base model path {config.path!r} does not exist; point base_model.path at a directory with "
            "config.json and weights, or set base_model.kind to 'gguf' for the embedded model."
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            location, local_files_only=True, trust_remote_code=config.trust_remote_code
        )
        model = AutoModelForCausalLM.from_pretrained(
            location, local_files_only=True, trust_remote_code=config.trust_remote_code, dtype="float32"
        )
    except OSError as error:
        raise BaseModelError(
            f"Cannot load base model {location!r} from local files ({error}). This machine resolves models offline: "
            "use a local directory or a Hugging Face id already in the cache."
        ) from error
    return model, tokenizer


def _build_random(config: BaseModelConfig):
    """A tiny Llama with random weights and the embedded model's real tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf = _gguf_file(config.model_copy(update={"kind": "gguf"}))
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    torch.manual_seed(config.seed)
    model_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.tiny_hidden_size,
        intermediate_size=config.tiny_hidden_size * 2,
        num_hidden_layers=config.tiny_layers,
        num_attention_heads=config.tiny_heads,
        num_key_value_heads=config.tiny_heads,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(model_config), tokenizer

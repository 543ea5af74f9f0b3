"""Merge a LoRA adapter into its base model, save the full weights, check the export generates what the adapter does.

A merged export serves without peft and without the adapter's extra matrix products. Merging is exact in real
arithmetic but not in floating point, so :func:`check_parity` compares greedy outputs of the adapter (unmerged, on the
base) and of the export, and the first decoding step's logits: outputs that differ while the logits agree to rounding
error are near-ties, not a broken export.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TypedDict

import torch

from tuneforge.atomic import atomic_directory
from tuneforge.hashing import file_digest
from tuneforge.modeling.base import MANIFEST as BASE_MANIFEST
from tuneforge.modeling.device import pick_device
from tuneforge.modeling.generate import Prompt
from tuneforge.modeling.prompts import prompt_ids

EXPORT_MANIFEST = "tuneforge_export.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
TOKENIZER_CONFIG = "tokenizer_config.json"
# Merging moves fp32 logits by ~1e-6 (tiny test model) to ~1e-4 (SmolLM2-135M); a broken merge by far more.
NEAR_TIE_LOGIT_DIFFERENCE = 1e-3

Log = Callable[[str], None]


@dataclass
class ExportedFile:
    name: str
    sha256: str
    size_bytes: int


@dataclass
class ExportResult:
    path: Path
    files: list[ExportedFile]  # everything in the export but its manifest
    size_bytes: int
    parameters: int
    seconds: float = 0.0

    @property
    def weight_files(self) -> list[ExportedFile]:
        return [file for file in self.files if file.name.endswith(".safetensors")]


class Mismatch(TypedDict):
    index: int  # position in the prompts given to check_parity
    adapter_output: str
    export_output: str
    first_step_logit_difference: float  # max |adapter - export| over the vocabulary, for this prompt


@dataclass
class ParityResult:
    matches: int
    total: int
    mismatches: list[Mismatch]
    max_logit_difference: float  # over all prompts, first decoding step
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.matches == self.total

    @property
    def likely_near_ties(self) -> bool:
        """Outputs differ although the logits agree to rounding error: greedy decoding broke a near-tie."""
        return not self.passed and self.max_logit_difference <= NEAR_TIE_LOGIT_DIFFERENCE

    def summary(self) -> str:
        outcome = f"{self.matches}/{self.total} greedy outputs identical"
        logits = f"first-step logits differ by at most {self.max_logit_difference:.2e}"
        if self.passed:
            return f"{outcome}; {logits}"
        indices = ", ".join(str(m["index"]) for m in self.mismatches)
        cause = (
            "likely near-ties broken by floating-point rounding, not a broken export"
            if self.likely_near_ties
            else "the export does not compute what the adapter does"
        )
        return f"{outcome} (prompts {indices} differ); {logits}: {cause}"


def export_merged(base_dir: Path, adapter_dir: Path, out_dir: Path, log: Log = print) -> ExportResult:
    """Write the base model with the adapter merged in (fp32 safetensors), its tokenizer and a manifest through
    :func:`atomic_directory`: a failure leaves the previous export untouched, and ``out_dir`` never holds part of one
    (it is briefly absent while a previous export is swapped out)."""
    started = time.perf_counter()
    model = _base_with_adapter(base_dir, adapter_dir, merge=True)
    _forget_gguf_origin(model)
    tokenizer_dir = adapter_dir if (adapter_dir / TOKENIZER_CONFIG).exists() else base_dir
    tokenizer = _load_tokenizer(tokenizer_dir)
    parameters = sum(p.numel() for p in model.parameters())
    with atomic_directory(out_dir) as staging:
        model.save_pretrained(staging)  # transformers 5 writes safetensors only
        tokenizer.save_pretrained(staging)
        files = _describe_files(staging)
        if not any(file.name.endswith(".safetensors") for file in files):
            raise RuntimeError(f"save_pretrained wrote no safetensors weights to {staging}")
        manifest = _manifest(base_dir, adapter_dir, tokenizer_dir, files, parameters)
        (staging / EXPORT_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    result = ExportResult(
        path=out_dir, files=files, size_bytes=sum(f.size_bytes for f in files), parameters=parameters,
        seconds=time.perf_counter() - started,
    )
    log(f"exported {parameters:,} parameters ({result.size_bytes / 1e6:.1f} MB) to {out_dir} in {result.seconds:.1f}s")
    return result


def load_export_result(export_dir: Path) -> ExportResult | None:
    """The result recorded in an export's manifest, or None when ``export_dir`` holds no export."""
    manifest_path = export_dir / EXPORT_MANIFEST
    if not manifest_path.exists():
        return None
    manifest = json.loads(manifest_path.read_text())
    files = [ExportedFile(**file) for file in manifest["files"]]
    return ExportResult(export_dir, files, sum(f.size_bytes for f in files), manifest["parameters"])


def check_parity(
    base_dir: Path,
    adapter_dir: Path,
    export_dir: Path,
    prompts: list[Prompt],
    max_prompt_tokens: int,
    max_new_tokens: int,
    batch_size: int = 8,
    log: Log = print,
) -> ParityResult:
    """Greedy outputs and first-step logits of the unmerged adapter on the base vs the merged export, both fp32 on
    the same device with the same batching. Each side uses its own tokenizer (the adapter side the base's, as
    adapter inference does), so a wrong exported tokenizer shows too."""
    if not prompts:
        raise ValueError("check_parity needs at least one prompt")
    started = time.perf_counter()
    sides = {
        "adapter": lambda: (_base_with_adapter(base_dir, adapter_dir, merge=False), _load_tokenizer(base_dir)),
        "export": lambda: (_load_fp32(export_dir), _load_tokenizer(export_dir)),
    }
    runs = {}
    for side, load in sides.items():  # one model in memory at a time
        log(f"parity: generating {len(prompts)} outputs with the {side}")
        model, tokenizer = load()
        model.to(pick_device()).eval()
        runs[side] = _greedy_run(model, tokenizer, prompts, max_prompt_tokens, max_new_tokens, batch_size)
        del model
    (adapter_texts, adapter_logits), (export_texts, export_logits) = runs["adapter"], runs["export"]
    differences = _max_abs_differences(adapter_logits, export_logits)
    mismatches = [
        Mismatch(index=i, adapter_output=a, export_output=e, first_step_logit_difference=differences[i])
        for i, (a, e) in enumerate(zip(adapter_texts, export_texts, strict=True))
        if a != e
    ]
    result = ParityResult(
        matches=len(prompts) - len(mismatches), total=len(prompts), mismatches=mismatches,
        max_logit_difference=max(differences), seconds=time.perf_counter() - started,
    )
    log(f"parity: {result.summary()} ({result.seconds:.1f}s)")
    return result


def _load_fp32(model_dir: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)


def _base_with_adapter(base_dir: Path, adapter_dir: Path, merge: bool):
    from peft import PeftModel

    model = PeftModel.from_pretrained(_load_fp32(base_dir), adapter_dir)
    # safe_merge refuses to write weights that the merge turned into NaN.
    return model.merge_and_unload(safe_merge=True) if merge else model


def _forget_gguf_origin(model) -> None:
    """A base snapshot dequantized from GGUF keeps the GGUF quantization_config in its config.json, so transformers
    marks the loaded model as GGUF-quantized and refuses to save it, although every weight is a plain fp32 tensor.
    Other quantization methods really store quantized weights, which a full-precision export must not silently keep."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None:
        return
    method = getattr(model, "quantization_method", None)
    if getattr(method, "value", method) != "gguf":
        raise ValueError(f"the base model is quantized ({method}); export needs full-precision base weights")
    model.hf_quantizer, model.is_quantized, model.quantization_method = None, False, None
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")


def _load_tokenizer(directory: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(directory)


def _greedy_run(
    model, tokenizer, prompts: list[Prompt], max_prompt_tokens: int, max_new_tokens: int, batch_size: int
) -> tuple[list[str], torch.Tensor]:
    """Greedy texts and the first decoding step's logits (one row per prompt) of one model."""
    encoded = [prompt_ids(tokenizer, p.instruction, p.document, max_prompt_tokens) for p in prompts]
    return _greedy_texts(model, tokenizer, encoded, max_new_tokens, batch_size), _first_step_logits(model, encoded)


@torch.no_grad()
def _greedy_texts(model, tokenizer, encoded: list[list[int]], max_new_tokens: int, batch_size: int) -> list[str]:
    # Not tuneforge.modeling.generate.generate: it autocasts to bf16 where the CPU or GPU supports it, and bf16
    # rounds merged and unmerged weights differently, which would fail parity on near-ties of a correct export.
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    texts = []
    for start in range(0, len(encoded), batch_size):
        input_ids, attention = _left_padded(encoded[start : start + batch_size], pad_id)
        generated = model.generate(
            input_ids=input_ids.to(device), attention_mask=attention.to(device), max_new_tokens=max_new_tokens,
            do_sample=False, num_beams=1, pad_token_id=pad_id, use_cache=True,
        )
        new_tokens = generated[:, input_ids.shape[1] :]
        texts += [tokenizer.decode(row, skip_special_tokens=True).strip() for row in new_tokens]
    return texts


def _left_padded(batch: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    for row, ids in enumerate(batch):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        attention[row, width - len(ids) :] = 1
    return input_ids, attention


@torch.no_grad()
def _first_step_logits(model, encoded: list[list[int]]) -> torch.Tensor:
    # One prompt at a time, unpadded: padding would add its own (legitimate) differences to the comparison.
    device = next(model.parameters()).device
    rows = [model(input_ids=torch.tensor([ids], device=device), logits_to_keep=1).logits[0, -1] for ids in encoded]
    return torch.stack(rows).float().cpu()


def _max_abs_differences(first: torch.Tensor, second: torch.Tensor) -> list[float]:
    if first.shape != second.shape:  # different vocabularies: no logit is comparable
        return [float("inf")] * first.shape[0]
    return (first - second).abs().amax(dim=-1).tolist()


def _describe_files(directory: Path) -> list[ExportedFile]:
    return [
        ExportedFile(path.name, file_digest(path), path.stat().st_size)
        for path in sorted(directory.iterdir())
        if path.is_file() and path.name != EXPORT_MANIFEST
    ]


def _manifest(
    base_dir: Path, adapter_dir: Path, tokenizer_dir: Path, files: list[ExportedFile], parameters: int
) -> dict:
    adapter_weights = adapter_dir / ADAPTER_WEIGHTS
    return {
        "base_dir": str(base_dir),
        "base_sha256": _base_sha256(base_dir),
        "adapter_dir": str(adapter_dir),
        "adapter_sha256": file_digest(adapter_weights) if adapter_weights.exists() else None,
        "tokenizer_from": "adapter" if tokenizer_dir == adapter_dir else "base",
        "dtype": "float32",
        "parameters": parameters,
        "files": [vars(file) for file in files],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {package: version(package) for package in ("torch", "transformers", "peft")},
    }


def _base_sha256(base_dir: Path) -> str | None:
    """The checksum recorded when the base snapshot was resolved (see tuneforge.modeling.base), if there is one."""
    manifest = base_dir / BASE_MANIFEST
    return json.loads(manifest.read_text()).get("sha256") if manifest.exists() else None

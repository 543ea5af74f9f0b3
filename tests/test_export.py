import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from tuneforge.hashing import file_digest
from tuneforge.model_card import ModelLineage, render_model_card
from tuneforge.modeling.export import EXPORT_MANIFEST, check_parity, export_merged, load_export_result
from tuneforge.modeling.generate import Prompt

INSTRUCTION = "Summarize the following text in one sentence."
DOCUMENTS = [
    "We propose a method for aligning parallel corpora with little supervision and evaluate it on four languages.",
    "The committee met on Tuesday to review the budget, which grew by twelve percent after the new hires.",
    "Transformers are slow on long inputs, so we sparsify attention and keep the accuracy of the dense model.",
    "A storm closed the harbour for three days; fishing boats stayed in port and prices at the market rose.",
]
PROMPTS = [Prompt(INSTRUCTION, document) for document in DOCUMENTS]
GENERATION = {"max_prompt_tokens": 96, "max_new_tokens": 12, "batch_size": 2}


@pytest.fixture(scope="module")
def base_dir(smoke_base_models) -> Path:
    return next(smoke_base_models.iterdir())


def _random_adapter(base_dir: Path, out_dir: Path, seed: int) -> Path:
    """A LoRA adapter with random A and B (so it changes the model), saved with the tokenizer like training does."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    lora = LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(model, lora).save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="module")
def adapter_dir(base_dir, tmp_path_factory) -> Path:
    return _random_adapter(base_dir, tmp_path_factory.mktemp("adapter") / "adapter", seed=1)


@pytest.fixture(scope="module")
def export(base_dir, adapter_dir, tmp_path_factory):
    return export_merged(base_dir, adapter_dir, tmp_path_factory.mktemp("exports") / "merged", log=lambda _: None)


def _weights_file(export_dir: Path) -> Path:
    return next(export_dir.glob("*.safetensors"))


def test_export_writes_merged_safetensors_tokenizer_and_manifest(base_dir, export):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    names = {file.name for file in export.files}
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"} <= names
    assert not any("adapter" in name for name in names)
    manifest = json.loads((export.path / EXPORT_MANIFEST).read_text())
    base_manifest = json.loads((base_dir / "tuneforge_model.json").read_text())
    assert manifest["base_sha256"] == base_manifest["sha256"]
    assert manifest["tokenizer_from"] == "adapter" and manifest["adapter_sha256"]
    for file in export.weight_files:
        assert file.sha256 == file_digest(export.path / file.name)
        assert file.size_bytes == (export.path / file.name).stat().st_size
    assert load_export_result(export.path).files == export.files

    model = AutoModelForCausalLM.from_pretrained(export.path)
    assert AutoTokenizer.from_pretrained(export.path).encode("hello") == AutoTokenizer.from_pretrained(
        base_dir
    ).encode("hello")
    assert sum(p.numel() for p in model.parameters()) == export.parameters == manifest["parameters"]
    # The adapter really was merged: the projections differ from the base model's.
    base_weights = load_file(_weights_file(base_dir))
    merged_weights = load_file(_weights_file(export.path))
    assert base_weights.keys() == merged_weights.keys()
    changed = [name for name in base_weights if not torch.equal(base_weights[name], merged_weights[name])]
    assert changed and all("proj" in name for name in changed)


def test_export_works_from_a_base_dequantized_from_gguf(base_dir, adapter_dir, tmp_path):
    # Snapshots resolved from GGUF keep the GGUF quantization_config, which makes transformers refuse to save.
    gguf_base = shutil.copytree(base_dir, tmp_path / "gguf-base")
    config = json.loads((gguf_base / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "gguf", "gguf_file": "model.gguf", "dequantize": False}
    (gguf_base / "config.json").write_text(json.dumps(config))

    exported = export_merged(gguf_base, adapter_dir, tmp_path / "merged", log=lambda _: None)
    assert "quantization_config" not in json.loads((exported.path / "config.json").read_text())


def test_parity_passes_for_a_correct_export(base_dir, adapter_dir, export, precision):
    # Parity compares in fp32 whatever precision training used: bf16 rounds merged and unmerged weights apart.
    result = check_parity(base_dir, adapter_dir, export.path, PROMPTS, **GENERATION, log=lambda _: None)
    assert result.passed, result.summary()
    assert (result.matches, result.total, result.mismatches) == (4, 4, [])
    assert result.max_logit_difference < 1e-4


def test_parity_fails_and_names_the_prompts_when_the_export_is_corrupted(base_dir, adapter_dir, export, tmp_path):
    corrupted = tmp_path / "corrupted"
    shutil.copytree(export.path, corrupted)
    weights_path = _weights_file(corrupted)
    with safe_open(weights_path, "pt") as handle:
        metadata = handle.metadata()
    weights = load_file(weights_path)
    generator = torch.Generator().manual_seed(0)
    name = "model.layers.1.mlp.down_proj.weight"
    weights[name] = weights[name] + torch.randn(weights[name].shape, generator=generator)
    save_file(weights, weights_path, metadata=metadata)

    result = check_parity(base_dir, adapter_dir, corrupted, PROMPTS, **GENERATION, log=lambda _: None)
    assert not result.passed and not result.likely_near_ties
    assert result.matches + len(result.mismatches) == result.total == 4
    assert result.max_logit_difference > 1e-2
    mismatch = result.mismatches[0]
    assert mismatch["adapter_output"] != mismatch["export_output"]
    assert f"prompts {mismatch['index']}" in result.summary()


def test_parity_fails_against_the_export_of_another_adapter(base_dir, adapter_dir, tmp_path):
    other = export_merged(base_dir, _random_adapter(base_dir, tmp_path / "other", seed=2), tmp_path / "merged",
                          log=lambda _: None)
    result = check_parity(base_dir, adapter_dir, other.path, PROMPTS, **GENERATION, log=lambda _: None)
    assert not result.passed and result.mismatches


def test_a_failed_export_leaves_the_previous_one_intact(base_dir, adapter_dir, export, tmp_path, monkeypatch):
    from transformers import PreTrainedModel

    out_dir = tmp_path / "exports" / "merged"
    shutil.copytree(export.path, out_dir)
    before = {path.name: file_digest(path) for path in out_dir.iterdir()}

    def save_half_then_fail(self, directory, **kwargs):
        (Path(directory) / "model.safetensors").write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", save_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        export_merged(base_dir, adapter_dir, out_dir, log=lambda _: None)
    assert {path.name: file_digest(path) for path in out_dir.iterdir()} == before
    assert [path.name for path in out_dir.parent.iterdir()] == ["merged"]  # no staging directory left behind


def _lineage() -> ModelLineage:
    return ModelLineage(
        name="tuneforge-summarizer", model_version="3",
        base_model="SmolLM2-135M-Instruct", base_model_sha256="ab12" * 16, base_model_license="Apache-2.0",
        base_model_parameters=134_515_008,
        dataset_version="0f3c9a7be1d24c55a1b2c3d4e5f60718", sources=["aclsum-approach", "aclsum-outcome"],
        languages=["en"], split_sizes={"train": 350, "validation": 50, "test": 100},
        cleaning_funnel=[
            {"step": "read", "rows_in": 520, "removed": 4, "rows_out": 516},
            {"step": "quality", "rows_in": 516, "removed": 16, "rows_out": 500},
        ],
        hyperparameters={"lora_rank": 16, "learning_rate": 0.001, "max_steps": 32, "target_modules": "all-linear"},
        metrics={
            "candidate": {"rougeL": (31.25, 29.5, 33.01), "rouge1": (40.0, 38.2, 41.9)},
            "base": {"rougeL": (22.4, 20.87, 24.0)},
            "champion": {"rougeL": (30.1, 28.3, 31.95)},
        },
        primary_metric="rougeL", test_rows=48,
        faithfulness={"candidate": {"unsupported_number_share": 0.031, "unsupported_entity_share": 0.05,
                                    "unsupported_numbers": 4, "numbers": 129},
                      "base": {"unsupported_number_share": 0.1, "unsupported_entity_share": 0.2}},
        degenerate={"candidate": {"any": 0.02}, "base": {"any": 0.25}},
        safety={"candidate": {"probes": 6, "flagged": 0, "rate": 0.0}},
        decoding={"strategy": "greedy", "temperature": 0.7}, max_new_tokens=64,
        promoted=True, decision_reasons=["rougeL 31.25 beats the champion's 30.10"],
    )


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_model_card_records_lineage_metrics_and_parseable_front_matter():
    lineage = _lineage()
    card = render_model_card(lineage)
    metadata = _front_matter(card)
    assert metadata["license"] == "apache-2.0" and metadata["library_name"] == "peft"
    assert metadata["base_model"] == "SmolLM2-135M-Instruct" and metadata["pipeline_tag"] == "text-generation"
    result = metadata["model-index"][0]["results"][0]
    assert result["dataset"]["revision"] == lineage.dataset_version
    assert {"type": "rougeL", "name": "ROUGE-L (F1 x 100, mean)", "value": 31.25} in result["metrics"]

    assert lineage.base_model_sha256 in card and lineage.dataset_version in card
    for name, value in lineage.hyperparameters.items():
        assert f"| {name} | `{value}` |" in card
    assert "| ROUGE-L | 31.25 [29.50, 33.01] | 22.40 [20.87, 24.00] | 30.10 [28.30, 31.95] |" in card
    assert "| ROUGE-1 | 40.00 [38.20, 41.90] | unknown | unknown |" in card
    assert "520 rows read, 20 removed, 500 kept" in card
    assert "| degenerate outputs | 2.0% | 25.0% |" in card
    assert "Promoted to champion." in card and lineage.decision_reasons[0] in card
    for fact in ("48 test rows of aclsum-approach, aclsum-outcome", "English only", "not correctness", "3.1%",
                 "flagged 0 of 6", "3.1% (4 of 129)", "greedy decoding, at most 64 new tokens"):
        assert fact in card


def test_model_card_renders_unknown_for_missing_facts():
    card = render_model_card(ModelLineage())
    metadata = _front_matter(card)
    assert metadata["license"] == "unknown" and "base_model" not in metadata and "model-index" not in metadata
    assert "| unknown | `unknown` | unknown | unknown |" in card
    assert "Promotion decision: unknown." in card and "Safety probe result: unknown." in card

"""Model assets: the base model snapshot and the LoRA adapter trained on the curated dataset."""


from pathlib import Path

import dagster as dg

from assets.corpora import curated_dataset
from resources import Workspace
from tuneforge.corpus.records import SPLITS, file_md5, read_examples
from tuneforge.fingerprint import fingerprint
from tuneforge.modeling.base import resolve_base_model
from tuneforge.modeling.train import load_training_result, train_adapter


@dg.asset(group_name="model", kinds={"pytorch"})
def base_model(context: dg.AssetExecutionContext, workspace: Workspace) -> dg.Output[dict]:
    """The configured base model as a local safetensors snapshot, resolved once."""
    config = workspace.load_profile().base_model
    snapshot = resolve_base_model(config, workspace.layout.base_models)
    context.log.info(f"{'reused' if snapshot.reused else 'built'} base model snapshot {snapshot.path}")
    return dg.Output(
        {"path": str(snapshot.path), "sha256": snapshot.sha256},
        metadata={
            "path": dg.MetadataValue.path(str(snapshot.path)),
            "sha256": snapshot.sha256,
            "license": snapshot.license,
            "parameters": snapshot.parameters,
            "source": config.kind,
            "reused": snapshot.reused,
        },
        data_version=dg.DataVersion(snapshot.sha256),
    )


@dg.asset(deps=[curated_dataset], group_name="model", kinds={"pytorch"})
def lora_adapter(context: dg.AssetExecutionContext, workspace: Workspace, base_model: dict) -> dg.Output[dict]:
    """A peft LoRA adapter; loss on summary tokens only, one instruction per source (recorded with the adapter)."""
    layout, profile = workspace.layout, workspace.load_profile()
    split_paths = {name: layout.curated / f"{name}.jsonl" for name in SPLITS}
    train_rows = read_examples(split_paths["train"])
    validation_rows = read_examples(split_paths["validation"])
    sources = sorted({row.source for row in train_rows + validation_rows})
    instructions = {source: profile.instruction_for(source) for source in sources}
    key = fingerprint(
        base=base_model["sha256"],
        train=file_md5(split_paths["train"]),
        validation=file_md5(split_paths["validation"]),
        training=profile.training.model_dump(),
        instructions=instructions,
    )
    adapter_dir = layout.adapters / key
    result = load_training_result(adapter_dir)
    reused = result is not None
    if reused:
        context.log.info(f"reusing adapter {adapter_dir}: base model, data and config are unchanged")
    else:
        context.log.info(f"training adapter {key} on {len(train_rows)} rows (no adapter exists for these inputs)")
        result = train_adapter(
            Path(base_model["path"]), train_rows, validation_rows, instructions, profile.training, adapter_dir,
            log=context.log.info,
        )
    return dg.Output(
        {"path": str(adapter_dir), "fingerprint": key, "instructions": instructions,
         "validation_loss": result.validation_loss},
        metadata={
            "path": dg.MetadataValue.path(str(adapter_dir)),
            "fingerprint": key,
            "reused": reused,
            "validation_loss": result.validation_loss,
            "validation_loss_before": result.validation_loss_before,
            "steps": result.steps,
            "trained_tokens": result.trained_tokens,
            "tokens_per_second": round(result.tokens_per_second, 1),
            "precision": result.precision,
            "device": result.device,
            "instructions": dg.MetadataValue.json(instructions),
            "hyperparameters": dg.MetadataValue.json(result.config),
        },
        data_version=dg.DataVersion(key),
    )

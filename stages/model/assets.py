"""Model assets: the base model snapshot and, per named experiment, the LoRA adapter trained on the curated dataset."""

from pathlib import Path

import dagster as dg

from resources import Compute, ModelRegistry, Workspace
from resources.compute import GPU_POOL
from stages.data.assets import curated_data_version, curated_dataset
from stages.model.launchpad import overrides_config
from tuneforge.corpus.records import read_examples
from tuneforge.corpus.sources import source_instruction
from tuneforge.experiments import config_hash, load_experiments
from tuneforge.fingerprint import changed_inputs, fingerprint
from tuneforge.hashing import file_digest
from tuneforge.modeling.base import resolve_base_model
from tuneforge.modeling.loss_chart import loss_curve_markdown
from tuneforge.modeling.plan import TrainingPlan
from tuneforge.modeling.preflight import check_against_model
from tuneforge.modeling.records import (
    TrackingTarget,
    TrainingJob,
    TrainingResult,
    load_training_result,
    save_training_inputs,
)
from tuneforge.modeling.window import resolve_max_seq_len
from tuneforge.profiles import TrainingConfig
from tuneforge.tracking import run_link

experiments = dg.DynamicPartitionsDefinition(name="experiments")

TrainingLaunchConfig = overrides_config(
    TrainingConfig, "TrainingLaunchConfig",
    "Hyperparameters for this run; each overrides the experiment's value (experiments.yaml), which overrides the "
    "profile's.",
)


@dg.asset(group_name="model", kinds={"pytorch"})
def base_model(context: dg.AssetExecutionContext, workspace: Workspace) -> dg.Output[dict]:
    """The configured base model as a local safetensors snapshot, resolved once."""
    config = workspace.load_profile().base_model
    snapshot = resolve_base_model(config, workspace.layout.base_models)
    context.log.info(f"{'reused' if snapshot.reused else 'built'} base model snapshot {snapshot.path}")
    return dg.Output(
        {"path": str(snapshot.path), "sha256": snapshot.sha256},
        metadata={
            # not "path": the IO manager's own "path" entry (where it pickled the output) would replace it
            "snapshot": dg.MetadataValue.path(str(snapshot.path)),
            "sha256": snapshot.sha256,
            "license": snapshot.license,
            "parameters": snapshot.parameters,
            "source": config.kind,
            "reused": snapshot.reused,
        },
        data_version=dg.DataVersion(snapshot.sha256),
    )


@dg.asset(
    deps=[curated_dataset],
    partitions_def=experiments,
    group_name="model",
    kinds={"pytorch"},
    pool=GPU_POOL,
    # A killed or crashed training resumes from its last checkpoint on the retry.
    retry_policy=dg.RetryPolicy(max_retries=1, delay=5),
)
def lora_adapter(
    context: dg.AssetExecutionContext,
    config: TrainingLaunchConfig,
    workspace: Workspace,
    compute: Compute,
    registry: ModelRegistry,
    base_model: dict,
) -> dg.Output[dict]:
    """A peft LoRA adapter for one experiment (a partition): loss on summary tokens only, one instruction per
    source. Resumes from its last checkpoint after a crash; an adapter already trained on the same inputs is
    reused."""
    layout, profile = workspace.layout, workspace.load_profile()
    name = context.partition_key
    known = load_experiments(layout.experiments_file)
    if name not in known:
        raise dg.Failure(f"experiment {name!r} is not in {layout.experiments_file} (known: {', '.join(known)})")
    experiment = known[name]
    try:
        training = experiment.config(profile.training, config.model_dump())
        check_against_model(training, Path(base_model["path"]))
        hyper_hash = config_hash(training)
        # Decided here, where the fingerprint is, so a bf16 adapter is never reused as an fp32 one.
        training = training.model_copy(update={"precision": compute.training_precision(training.precision)})
    except ValueError as error:  # TrainingConfigError, or a TUNEFORGE_PRECISION that is no precision
        raise dg.Failure(str(error)) from None
    splits = {split: layout.curated / f"{split}.jsonl" for split in ("train", "validation")}
    rows = {split: read_examples(path) for split, path in splits.items()}
    sources = sorted({row.source for split_rows in rows.values() for row in split_rows})
    instructions = {source: experiment.instruction_for(
        source, profile.instruction_for(source, source_instruction(layout.raw, source))) for source in sources}
    training, seq_len_from = resolve_max_seq_len(training, Path(base_model["path"]), rows["train"],
                                                 instructions.values())
    context.log.info(f"rows of at most {training.max_seq_len} tokens ({seq_len_from})")
    # md5 as before: adapters already trained are stored under keys made from it (another digest retrains them all)
    inputs = {"base": base_model["sha256"], "train": file_digest(splits["train"], "md5"),
              "validation": file_digest(splits["validation"], "md5"), "training": training.model_dump(),
              "instructions": instructions}
    key = fingerprint(**inputs)
    adapter_dir = layout.adapters / key
    result = load_training_result(adapter_dir)
    reused = result is not None
    if reused:
        context.log.info(f"reusing adapter {adapter_dir}: base model, data and config are unchanged")
    else:
        tags = {"experiment": name, "config_hash": hyper_hash, "base_sha256": base_model["sha256"],
                "dataset_version": curated_data_version(context.instance) or "unknown", "adapter": key}
        job = TrainingJob(
            base_dir=base_model["path"], train_path=str(splits["train"]), validation_path=str(splits["validation"]),
            instructions=instructions, config=training.model_dump(), out_dir=str(adapter_dir),
            checkpoint_dir=str(layout.checkpoints / key),
            tracking=TrackingTarget.in_workspace(layout, registry.tracking(), f"{registry.experiment}-training",
                                                 f"train-{name}-{key}", tags),
        )
        context.log.info(f"training adapter {key} for experiment {name!r} (config {hyper_hash}, "
                         f"{training.precision}): {_why_retrained(context, inputs)}")
        result = compute.train(context, job)
    save_training_inputs(adapter_dir, inputs)
    prompts = registry.open().register_prompts(instructions, None if reused else result.mlflow_run_id)
    return dg.Output(
        {"path": str(adapter_dir), "fingerprint": key, "instructions": instructions, "prompts": prompts,
         "experiment": name, "config_hash": hyper_hash, "validation_loss": result.validation_loss},
        metadata={**_training_metadata(result, registry), "adapter_dir": dg.MetadataValue.path(str(adapter_dir)),
                  "train_rows": len(rows["train"]), "max_seq_len": training.max_seq_len,
                  "max_seq_len_from": seq_len_from,
                  "fingerprint": key, "experiment": name, "config_hash": hyper_hash, "reused": reused,
                  "fingerprint_inputs": dg.MetadataValue.json(inputs), "prompts": dg.MetadataValue.json(prompts),
                  **compute.describe()},
        data_version=dg.DataVersion(key),
    )


def _why_retrained(context: dg.AssetExecutionContext, inputs: dict) -> str:
    """What changed since this experiment's last adapter, from the inputs recorded with it."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=context.asset_key, asset_partitions=[context.partition_key]), limit=1
    ).records
    materialization = records[0].event_log_entry.asset_materialization if records else None
    recorded = materialization.metadata.get("fingerprint_inputs") if materialization else None
    if recorded is None:
        return "no earlier adapter of this experiment recorded its inputs"
    changes = changed_inputs(recorded.value, inputs)
    return "changed since the last adapter: " + "; ".join(changes) if changes else "its adapter directory is gone"


def _training_metadata(result: TrainingResult, registry: ModelRegistry) -> dict:
    metadata = {
        "loss_curve": dg.MetadataValue.md(loss_curve_markdown(result.train_loss_curve, result.validation_curve)),
        "validation_loss": result.validation_loss,
        "validation_loss_before": result.validation_loss_before,
        "best_step": result.best_step,
        "steps": len(result.train_loss_curve),
        "stopped_early": result.stopped_early,
        "resumed_from_step": result.resumed_from_step,
        "trained_tokens": result.trained_tokens,
        "tokens_per_second": round(result.tokens_per_second, 1),
        "peak_memory_mb": round(result.peak_memory_mb, 1),
        "precision": result.precision,
        "device": result.device,
        "world_size": result.world_size,
        "instructions": dg.MetadataValue.json(result.instructions),
        "hyperparameters": dg.MetadataValue.json(result.config),
    }
    if result.plan:
        metadata["training_plan"] = TrainingPlan(**result.plan).describe()
    if result.mlflow_run_id:
        metadata["mlflow_run_id"] = result.mlflow_run_id
        metadata["mlflow_run"] = run_link(registry.tracking(), result.mlflow_run_id)
    return metadata

"""``deployment``: what serves the champion, and where, after each promotion decision (see resources/serving.py)."""

from pathlib import Path

import dagster as dg

from resources import ModelRegistry, Serving, Workspace
from stages.automation import FOLLOW_PASSING_INPUTS
from stages.model.assets import experiments
from tuneforge.modeling.records import load_training_result
from tuneforge.serving.kubernetes import ServedVersion

DEFAULT_LORA_RANK = 16


@dg.asset(group_name="promotion", kinds={"kubernetes"}, partitions_def=experiments,
          automation_condition=FOLLOW_PASSING_INPUTS)
def deployment(
    context: dg.AssetExecutionContext,
    workspace: Workspace,
    registry: ModelRegistry,
    serving: Serving,
    base_model: dict,
    promoted_model: dict,
) -> dg.Output[dict]:
    """The champion served: locally by `tuneforge serve` (which follows the registry; its /ready is probed), or on
    Kubernetes from manifests rendered for this version (applied when the serving resource says so)."""
    layout, profile = workspace.layout, workspace.load_profile()
    champions = registry.open()
    champion = champions.champion()
    if champion is None:
        context.log.info("nothing to serve: the registry has no champion")
        return dg.Output({"served": None}, metadata={"served": "nothing (no champion yet)"},
                         data_version=dg.DataVersion("none"))
    adapter = champions.local_adapter(champion)
    trained = load_training_result(adapter) if adapter is not None else None
    served = ServedVersion(
        model_name=registry.model_name, version=champion.version,
        fingerprint=Path(champion.adapter_dir).name or champion.version,
        adapter_dir=str(adapter or champion.adapter_dir), base_model_dir=base_model["path"],
        lora_rank=int((trained.config if trained else {}).get("lora_rank", DEFAULT_LORA_RANK)),
    )
    record = serving.deploy(served, layout.root, layout.deployments, profile.serving)
    live = record.get("live")
    if record["mode"] == "local" and not live:
        context.log.info(f"no server answers at {record['endpoint']}: start one with `tuneforge serve`; it serves "
                         f"version {champion.version} and follows later promotions")
    metadata = {
        "mode": record["mode"], "engine": record["engine"], "endpoint": dg.MetadataValue.url(record["endpoint"]),
        "version": champion.version, "adapter": served.fingerprint,
    }
    if "manifests" in record:
        metadata |= {"manifests": dg.MetadataValue.path(record["manifests"]), "applied": record["applied"]}
    if record["mode"] == "local":
        metadata["live"] = dg.MetadataValue.json(live or {"status": "not running"})
    return dg.Output(record, metadata=metadata,
                     data_version=dg.DataVersion(f"{record['mode']}-{record['engine']}-v{champion.version}"))

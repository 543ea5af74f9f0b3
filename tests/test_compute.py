"""The compute resource: config validation, the Kubernetes pod spec, and real training runs in and out of process."""

import json
import stat
from dataclasses import asdict
from pathlib import Path

import dagster as dg
import dagster_k8s
import pytest
from dagster_k8s.pipes import build_pod_body

from resources.compute import GPU_POOL, Compute, TrainingFailed, error_tail, training_command, training_pod_spec
from tuneforge.corpus.records import Example, write_jsonl
from tuneforge.modeling.base import snapshot_dir
from tuneforge.modeling.records import TRAINING_MANIFEST, TrainingJob, TrainingResult
from tuneforge.profiles import TrainingConfig, load_profile

SOURCE = "papers"
TOPICS = ["parsing", "translation", "summarization", "tagging", "retrieval", "dialogue", "speech", "grammar"]


def _write_rows(path: Path, topics: list[str]) -> None:
    rows = [
        Example(
            id=f"{path.stem}-{i}", source=SOURCE, group=f"{path.stem}-{i}",
            document=f"We study {topic} for low resource languages. Our model improves {topic} accuracy on three "
            f"benchmarks while using fewer parameters than earlier {topic} systems.",
            summary=f"A smaller model improves {topic} on three benchmarks.",
        )
        for i, topic in enumerate(topics)
    ]
    write_jsonl(path, rows)


def _job(root: Path, base_models: Path, max_steps: int = 2) -> TrainingJob:
    root.mkdir(parents=True, exist_ok=True)
    _write_rows(root / "train.jsonl", TOPICS)
    _write_rows(root / "validation.jsonl", TOPICS[:2])
    config = TrainingConfig(
        max_steps=max_steps, batch_size=2, max_seq_len=64, warmup_steps=0, checkpoint_every=0,
        max_validation_rows=2, precision="fp32",
    )
    return TrainingJob(
        base_dir=str(snapshot_dir(base_models, load_profile("smoke").base_model)),
        train_path=str(root / "train.jsonl"), validation_path=str(root / "validation.jsonl"),
        instructions={SOURCE: "Summarize the paper in one sentence."}, config=config.model_dump(),
        out_dir=str(root / "adapter"), checkpoint_dir=str(root / "checkpoints"),
    )


def _materialize_training(job: TrainingJob, compute: Compute, instance: dg.DagsterInstance):
    @dg.asset(pool=GPU_POOL)
    def lora_adapter(context: dg.AssetExecutionContext, compute: Compute) -> dg.MaterializeResult:
        result = compute.train(context, job)
        return dg.MaterializeResult(metadata={**compute.describe(), "world_size": result.world_size,
                                              "adapter_dir": result.adapter_dir})

    return dg.materialize([lora_adapter], resources={"compute": compute}, instance=instance, raise_on_error=False)


def _training_asset(job: TrainingJob) -> dg.AssetsDefinition:
    @dg.asset
    def lora_adapter(context: dg.AssetExecutionContext, compute: Compute) -> None:
        compute.train(context, job)

    return lora_adapter


def _messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(run_id)]


def _fake_python(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


# --- configuration -----------------------------------------------------------------------------------------------


def test_kubernetes_mode_without_image_or_claim_is_refused_naming_both_fields():
    with pytest.raises(ValueError) as error:
        Compute(mode="kubernetes")
    assert "image is required in mode 'kubernetes'" in str(error.value)
    assert "workspace_claim is required" in str(error.value)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"processes": 0}, "processes must be at least 1 (got 0)"),
        ({"mode": "local", "processes": -2}, "processes must be at least 1 (got -2)"),
        ({"processes": 2}, "processes=2 needs mode 'local' or 'kubernetes'"),
        ({"mode": "kubernetes", "image": "i", "workspace_claim": "c", "gpus": 1, "processes": 2},
         "processes=2 exceeds gpus=1"),
        ({"mode": "local", "gpus": -1}, "gpus must be 0 or more (got -1)"),
        ({"tolerations": [{"key": "a", "efect": "NoSchedule"}]}, "tolerations[0] has unknown field(s) ['efect']"),
    ],
)
def test_bad_config_is_refused_with_the_field_named(config, expected):
    with pytest.raises(ValueError, match="Compute config") as error:
        Compute(**config)
    assert expected in str(error.value)


def test_bad_run_config_fails_at_resource_initialization():
    @dg.asset
    def needs_compute(compute: Compute) -> None:
        raise AssertionError("must not run")

    result = dg.materialize(
        [needs_compute], resources={"compute": Compute.configure_at_launch()}, raise_on_error=False,
        run_config={"resources": {"compute": {"config": {"mode": "kubernetes", "workspace_claim": "c"}}}},
    )
    assert not result.success
    failure = next(event for event in result.all_events if event.event_type_value == "RESOURCE_INIT_FAILURE")
    assert "image is required in mode 'kubernetes'" in str(failure.event_specific_data.error)


def test_describe_gives_where_training_runs():
    assert Compute().describe() == {"compute_mode": "in_process", "compute_processes": 1, "compute_pool": "gpu"}
    described = Compute(mode="kubernetes", image="reg/tuneforge:1", workspace_claim="ws", gpus=2, processes=2,
                        launcher="accelerate").describe()
    assert described == {"compute_mode": "kubernetes", "compute_processes": 2, "compute_pool": "gpu",
                         "compute_launcher": "accelerate", "compute_image": "reg/tuneforge:1", "compute_gpus": 2}


# --- commands and the pod spec -------------------------------------------------------------------------------------


def test_training_commands_for_one_process_torchrun_and_accelerate():
    assert training_command("py", "torchrun", 1, "/j.json") == ["py", "-m", "tuneforge.modeling.train", "/j.json"]
    torchrun = training_command("py", "torchrun", 4, "/j.json")
    assert torchrun[:3] == ["py", "-m", "torch.distributed.run"]
    assert torchrun[torchrun.index("--nproc_per_node") + 1] == "4"
    assert "--standalone" in torchrun  # c10d rendezvous on a free port
    assert torchrun[-3:] == ["-m", "tuneforge.modeling.train", "/j.json"]
    accelerate = training_command("py", "accelerate", 2, "/j.json")
    assert accelerate[:3] == ["py", "-m", "accelerate.commands.launch"]
    assert "--multi_gpu" in accelerate and "--cpu" not in accelerate  # --cpu would start a single process
    assert accelerate[accelerate.index("--num_processes") + 1] == "2"
    assert accelerate[accelerate.index("--main_process_port") + 1] == "0"
    assert accelerate[-3:] == ["-m", "tuneforge.modeling.train", "/j.json"]


def test_pod_spec_requests_gpus_mounts_the_workspace_claim_and_tolerates_the_gpu_taint():
    command = training_command("python", "torchrun", 2, "/ws/checkpoints/job.json")
    spec = training_pod_spec(
        image="reg/tuneforge:1", command=command, workspace_claim="tuneforge-ws", workspace_path="/ws", gpus=2,
        cpu="8", memory="32Gi", env={"TUNEFORGE_ROOT": "/ws"}, node_selector={"accelerator": "a100"},
        tolerations=[{"key": "dedicated", "operator": "Equal", "value": "training", "effect": "NoSchedule"}],
        service_account="trainer",
    )
    (container,) = spec["containers"]
    assert container["image"] == "reg/tuneforge:1"
    assert container["command"][container["command"].index("--nproc_per_node") + 1] == "2"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert container["resources"]["requests"] == {"cpu": "8", "memory": "32Gi"}
    assert {"name": "TUNEFORGE_ROOT", "value": "/ws"} in container["env"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/ws")
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["persistentVolumeClaim"] == {"claimName": "tuneforge-ws"}
    assert container["workingDir"] == "/ws"
    assert spec["nodeSelector"] == {"accelerator": "a100"}
    assert spec["serviceAccountName"] == "trainer"
    assert spec["restartPolicy"] == "Never"
    assert [t["key"] for t in spec["tolerations"]] == ["dedicated", "nvidia.com/gpu"]

    # dagster-k8s turns it into a valid V1Pod (the kubernetes client models check field names and types).
    pod = build_pod_body("train-pod", "reg/tuneforge:1", command, {"DAGSTER_PIPES_CONTEXT": "x"}, None, spec)
    assert pod.spec.containers[0].resources.limits["nvidia.com/gpu"] == "2"
    assert pod.spec.volumes[0].persistent_volume_claim.claim_name == "tuneforge-ws"
    assert pod.spec.tolerations[1].key == "nvidia.com/gpu"


def test_cpu_pod_spec_has_no_gpu_limit_or_gpu_toleration():
    spec = training_pod_spec(image="i", command=["python"], workspace_claim="c", workspace_path="/ws", gpus=0)
    assert "nvidia.com/gpu" not in spec["containers"][0]["resources"]["limits"]
    assert "tolerations" not in spec and "nodeSelector" not in spec and "serviceAccountName" not in spec


class FakePipesK8sClient:
    """Stands in for PipesK8sClient: records the call and plays the pod by writing the training manifest."""

    calls: list[dict] = []

    def __init__(self, **kwargs):
        self.init_kwargs = kwargs

    def run(self, **kwargs):
        FakePipesK8sClient.calls.append(kwargs)
        job = TrainingJob.load(Path(kwargs["command"][-1]))
        result = TrainingResult(adapter_dir=job.out_dir, steps=3, world_size=2, device="cuda:0")
        Path(job.out_dir).mkdir(parents=True)
        (Path(job.out_dir) / TRAINING_MANIFEST).write_text(json.dumps(asdict(result)))


def test_kubernetes_mode_runs_the_job_in_a_pod_built_from_the_spec(tmp_path, monkeypatch):
    monkeypatch.setattr(dagster_k8s, "PipesK8sClient", FakePipesK8sClient)
    monkeypatch.setattr(FakePipesK8sClient, "calls", [])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.tracking:5000")
    monkeypatch.setenv("TUNEFORGE_PRECISION", "bf16")  # the pod trains in the precision this side chose
    monkeypatch.delenv("TUNEFORGE_PROFILE", raising=False)
    workspace = tmp_path / "ws"
    job = _job(workspace / "run", workspace / "models")
    compute = Compute(mode="kubernetes", image="reg/tuneforge:1", workspace_claim="tuneforge-ws",
                      workspace_path=str(workspace), gpus=2, processes=2, namespace="ml",
                      node_selector={"accelerator": "a100"}, env={"HF_HUB_OFFLINE": "1"},
                      pod_wait_timeout_seconds=3600)

    result = compute.train(dg.build_asset_context(), job)

    assert result.world_size == 2 and result.adapter_dir == job.out_dir
    (call,) = FakePipesK8sClient.calls
    job_file = str(Path(job.checkpoint_dir) / "job.json")
    assert call["command"] == training_command("python", "torchrun", 2, job_file)
    assert call["image"] == "reg/tuneforge:1" and call["namespace"] == "ml" and call["pod_wait_timeout"] == 3600
    assert call["base_pod_spec"] == training_pod_spec(
        image="reg/tuneforge:1", command=call["command"], workspace_claim="tuneforge-ws",
        workspace_path=str(workspace), gpus=2, node_selector={"accelerator": "a100"},
        env={"TUNEFORGE_ROOT": str(workspace), "PYTHONUNBUFFERED": "1", "TUNEFORGE_PRECISION": "bf16",
             "MLFLOW_TRACKING_URI": "http://mlflow.tracking:5000", "HF_HUB_OFFLINE": "1"},
    )
    assert TrainingJob.load(Path(job_file)) == job  # the pod reads the same job from the shared volume


def test_kubernetes_mode_refuses_a_job_outside_the_workspace_volume(tmp_path, monkeypatch):
    monkeypatch.setattr(dagster_k8s, "PipesK8sClient", FakePipesK8sClient)
    monkeypatch.setattr(FakePipesK8sClient, "calls", [])
    job = _job(tmp_path / "elsewhere", tmp_path / "ws" / "models")
    compute = Compute(mode="kubernetes", image="i", workspace_claim="c", workspace_path=str(tmp_path / "ws"))
    with pytest.raises(ValueError, match="outside the workspace volume mounted at") as error:
        compute.train(dg.build_asset_context(), job)
    assert f"train_path={job.train_path}" in str(error.value) and f"out_dir={job.out_dir}" in str(error.value)
    assert "base_dir" not in str(error.value)
    assert FakePipesK8sClient.calls == []


# --- real runs -----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_process_cpu_training_streams_through_pipes_into_the_run(tmp_path, smoke_base_models):
    job = _job(tmp_path / "run", smoke_base_models)
    instance = dg.DagsterInstance.ephemeral()

    run = _materialize_training(job, Compute(mode="local", processes=2), instance)

    assert run.success
    metadata = run.asset_materializations_for_node("lora_adapter")[0].metadata
    assert metadata["world_size"].value == 2
    assert metadata["compute_mode"].value == "local" and metadata["compute_launcher"].value == "torchrun"
    assert (Path(job.out_dir) / "adapter_model.safetensors").is_file()
    messages = _messages(instance, run.run_id)
    assert any(m.startswith("training 8 rows on 2 × cpu") for m in messages), messages  # rank 0 only, via Pipes
    assert any(m.startswith("step 2/2 loss") for m in messages), messages


def test_in_process_training_logs_to_the_run(tmp_path, smoke_base_models):
    job = _job(tmp_path / "run", smoke_base_models, max_steps=1)
    instance = dg.DagsterInstance.ephemeral()

    run = _materialize_training(job, Compute(), instance)

    assert run.success
    assert run.asset_materializations_for_node("lora_adapter")[0].metadata["world_size"].value == 1
    assert (Path(job.out_dir) / "adapter_model.safetensors").is_file()
    assert any(m.startswith("step 1/1 loss") for m in _messages(instance, run.run_id))


def test_a_failing_training_process_fails_the_asset_with_the_tail_of_its_stderr(tmp_path):
    fake = _fake_python(tmp_path, "echo 'loading rows' >&2\necho 'ValueError: row 7 has no summary' >&2\nexit 3")
    job = _job(tmp_path / "run", tmp_path / "models")

    run = _materialize_training(job, Compute(mode="local", python=fake), dg.DagsterInstance.ephemeral())

    assert not run.success
    error = run.failure_data_for_node("lora_adapter").error
    assert "training process exited with code 3" in error.message
    assert "loading rows\nValueError: row 7 has no summary" in error.message


def test_a_failing_worker_under_torchrun_shows_its_own_error_not_the_launcher_traceback(tmp_path, smoke_base_models):
    job = _job(tmp_path / "run", smoke_base_models)
    job.config["batch_size"] = 0  # refused before the model loads, so the test stays quick

    run = _materialize_training(job, Compute(mode="local", processes=2), dg.DagsterInstance.ephemeral())

    assert not run.success
    message = run.failure_data_for_node("lora_adapter").error.message
    assert "training process exited with code 1" in message
    assert "error: invalid training config:\n  training.batch_size: Input should be greater than or equal" in message
    assert "ChildFailedError" not in message


def test_error_tail_cuts_the_launcher_report_and_keeps_the_last_lines():
    workers = [f"worker line {i}\n" for i in range(50)]
    launcher = [
        "E1125 08:04:44.033000 1 .venv/lib/python3.11/site-packages/torch/distributed/elastic/multiprocessing/"
        "api.py:1002] failed (exitcode: 2) local_rank: 0 (pid: 2) of binary: python\n",
        "Traceback (most recent call last):\n", "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:\n",
    ]
    tail = error_tail(workers + launcher)
    assert tail.splitlines()[0] == "worker line 11" and "failed (exitcode: 2)" in tail.splitlines()[-1]
    assert "ChildFailedError" not in tail
    assert error_tail(["one\n", "two\n"]) == "one\ntwo"


def test_a_training_process_that_writes_no_adapter_fails_clearly(tmp_path):
    job = _job(tmp_path / "run", tmp_path / "models")
    compute = Compute(mode="local", python=_fake_python(tmp_path, "exit 0"))

    with pytest.raises(TrainingFailed, match=r"exited successfully but wrote no adapter at .*adapter"):
        dg.materialize([_training_asset(job)], resources={"compute": compute})


"""Instance configuration and the Kubernetes deployment files, checked without a cluster.

The local dagster.yaml must load into a DagsterInstance with the queue, pools, monitoring and retries it documents;
deploy/k8s/ must validate against dagster-k8s's own schemas, agree with itself (Helm values, the rendered instance,
the run config, the GPU tag) and with the code location, and the GPU step config must survive dagster-k8s's merging
into the Kubernetes Job it would create.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import dagster as dg
import kubernetes.client as k8s
import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster_k8s import K8sRunLauncher, k8s_job_executor
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    USER_DEFINED_K8S_CONFIG_KEY,
    DagsterK8sJobConfig,
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)
from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
DAGSTER = Path(sys.executable).with_name("dagster")
GPU = "nvidia.com/gpu"
RELEASE = "dagster"  # the Helm release name README.md installs; the chart names the instance ConfigMap after it


def load_yaml(path: Path) -> dict:
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise AssertionError(f"{path.relative_to(REPO)} is not valid YAML: {error}") from error
    assert isinstance(document, dict), f"{path.relative_to(REPO)} must hold a mapping, not {type(document).__name__}"
    return document


def assert_valid(schema, value, where: str) -> dict:
    result = validate_config(schema, value)
    assert result.success, f"{where} does not validate: " + "; ".join(error.message for error in result.errors)
    return result.value


def snake_case(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def k8s_object(model, document: dict, where: str):
    try:
        return k8s_model_from_dict(model, k8s_snake_case_dict(model, document))
    except Exception as error:  # dagster-k8s raises a bare Exception naming the unexpected keys
        raise AssertionError(f"{where} is not a valid {model.__name__}: {error}") from error


# --- the local instance (dagster.yaml) ---------------------------------------------------------------------------


@pytest.fixture
def local_home(tmp_path) -> Path:
    home = tmp_path / "dagster-home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    return home


def test_local_instance_queues_runs_with_limits_from_the_concurrency_block(local_home):
    with dg.DagsterInstance.from_config(str(local_home)) as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        concurrency = instance.get_concurrency_config()
        # The daemon dequeues with this config (QueuedRunCoordinatorDaemon reads get_concurrency_config()).
        queue = concurrency.run_queue_config
        assert queue is not None and queue.max_concurrent_runs == 2
        assert {"key": "tuneforge/lifecycle", "limit": 1} in queue.tag_concurrency_limits
        assert concurrency.pool_config.default_pool_limit == 1
        assert concurrency.pool_config.pool_granularity.value == "op"
        assert not instance.telemetry_enabled
        assert instance.get_settings("nux") == {"enabled": False}


def test_local_instance_monitors_and_retries_crashed_runs_only(local_home):
    with dg.DagsterInstance.from_config(str(local_home)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 300
        assert instance.run_monitoring_max_runtime_seconds == 43200
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 30
        assert instance.run_monitoring_max_resume_run_attempts == 0  # the default launcher cannot resume a run
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
        assert instance.run_retries_retry_on_asset_or_op_failure is False


def test_unset_pools_take_the_default_limit_and_gpu_is_set_with_the_cli(local_home):
    """The documented way to size the gpu pool works, and dvc (never set) stays at one slot."""
    command = [str(DAGSTER), "instance", "concurrency", "set", "gpu", "2"]
    done = subprocess.run(command, env={"DAGSTER_HOME": str(local_home), "PATH": str(DAGSTER.parent)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with dg.DagsterInstance.from_config(str(local_home)) as instance:
        storage = instance.event_log_storage
        assert storage.get_concurrency_info("gpu").slot_count == 2
        storage.initialize_concurrency_limit_to_default("dvc")  # what a step in an unset pool does first
        assert storage.get_concurrency_info("dvc").slot_count == 1


# --- the cluster instance (deploy/k8s/dagster.yaml) and the Helm values ---------------------------------------------


@pytest.fixture(scope="module")
def cluster_instance() -> dict:
    config, _ = dagster_instance_config(str(K8S))  # the whole instance schema, concurrency rules included
    return config


@pytest.fixture(scope="module")
def values() -> dict:
    return load_yaml(K8S / "values.yaml")


@pytest.fixture(scope="module")
def run_config() -> dict:
    return load_yaml(K8S / "run_config.yaml")


def test_cluster_run_launcher_validates_against_k8s_run_launcher(cluster_instance):
    launcher = cluster_instance["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    config = assert_valid(K8sRunLauncher.config_type(), launcher["config"], "run_launcher.config")
    assert config["instance_config_map"] == f"{RELEASE}-instance"
    UserDefinedDagsterK8sConfig.from_dict(config["run_k8s_config"])  # snake-cases and checks the k8s field names


def test_cluster_instance_queues_monitors_and_retries(cluster_instance):
    coordinator = cluster_instance["run_coordinator"]
    assert coordinator["class"] == "QueuedRunCoordinator"
    assert_valid(QueuedRunCoordinator.config_type(), coordinator.get("config") or {}, "run_coordinator.config")
    assert cluster_instance["concurrency"]["pools"]["default_limit"] == 1
    monitoring = cluster_instance["run_monitoring"]
    assert monitoring["enabled"] and monitoring["max_runtime_seconds"] > 0
    assert monitoring["max_resume_run_attempts"] >= 1  # K8sRunLauncher can resume a run whose pod was lost
    assert cluster_instance["run_retries"] == {"enabled": True, "max_retries": 1, "retry_on_asset_or_op_failure": False}
    assert cluster_instance["telemetry"] == {"enabled": False}


def test_helm_values_render_the_cluster_instance(values, cluster_instance):
    for section, expected in values["additionalInstanceConfig"].items():
        assert cluster_instance[section] == expected, f"values.yaml additionalInstanceConfig.{section} != dagster.yaml"
    # Run limits set in the coordinator as well as in `concurrency` make Dagster refuse the instance.
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert not any(value is not None for value in queued.values()), "set run limits in concurrency.runs only"
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert values["telemetry"]["enabled"] is cluster_instance["telemetry"]["enabled"]

    chart_launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    launcher = cluster_instance["run_launcher"]["config"]
    assert values["runLauncher"]["type"] == cluster_instance["run_launcher"]["class"]
    for key in ("jobNamespace", "loadInclusterConfig", "imagePullPolicy", "failPodOnRunFailure"):
        assert chart_launcher[key] == launcher[snake_case(key)], f"runLauncher {key} differs from dagster.yaml"
    chart_run_k8s = UserDefinedDagsterK8sConfig.from_dict(
        {snake_case(key): value for key, value in chart_launcher["runK8sConfig"].items()})
    assert chart_run_k8s == UserDefinedDagsterK8sConfig.from_dict(launcher["run_k8s_config"])
    assert values["global"]["postgresqlSecretName"] == launcher["postgres_password_secret"]
    assert values["global"]["dagsterHome"] == launcher["dagster_home"]
    assert values["serviceAccount"]["name"] == launcher["service_account_name"]

    database = cluster_instance["storage"]["postgres"]["postgres_db"]
    postgres = values["postgresql"]
    assert (postgres["postgresqlUsername"], postgres["postgresqlDatabase"], postgres["service"]["port"]) == (
        database["username"], database["db_name"], database["port"])


def test_helm_code_location_is_the_projects_code_location(values):
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    (location,) = load_yaml(REPO / "workspace.yaml")["load_from"]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dagster"]
    assert deployment["name"] == location["python_module"]["location_name"] == pyproject["code_location_name"]
    args = deployment["dagsterApiGrpcArgs"]
    module = args[args.index("--module-name") + 1]
    assert module == location["python_module"]["module_name"] == pyproject["module_name"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"], "run and step pods need the workspace volume"

    env = {item["name"]: item["value"] for item in deployment["env"]}
    volumes = [k8s_object(k8s.V1Volume, item, "a user deployment volume") for item in deployment["volumes"]]
    mounts = [k8s_object(k8s.V1VolumeMount, item, "a user deployment mount") for item in deployment["volumeMounts"]]
    (workspace_mount,) = [mount for mount in mounts if mount.mount_path == env["TUNEFORGE_ROOT"]]
    (workspace_volume,) = [volume for volume in volumes if volume.name == workspace_mount.name]

    claim = k8s_object(k8s.V1PersistentVolumeClaim, load_yaml(K8S / "workspace-pvc.yaml"), "workspace-pvc.yaml")
    assert workspace_volume.persistent_volume_claim.claim_name == claim.metadata.name
    assert claim.spec.access_modes == ["ReadWriteMany"], "pods on several nodes mount the workspace at once"
    for container in deployment["initContainers"]:
        init = k8s_object(k8s.V1Container, container, "a user deployment init container")
        assert any(mount.mount_path == env["TUNEFORGE_ROOT"] for mount in init.volume_mounts)


# --- the run config and the GPU step ---------------------------------------------------------------------------------


def test_run_config_validates_against_k8s_job_executor(run_config):
    executor_config = assert_valid(k8s_job_executor.config_schema.config_type, run_config["execution"]["config"],
                                   "run_config.yaml execution.config")
    for step, step_config in executor_config["per_step_k8s_config"].items():
        UserDefinedDagsterK8sConfig.from_dict(step_config)  # checks the field names against the k8s models
        assert step_config["container_config"]["resources"]["limits"].get(GPU), f"{step} asks for no GPU"


def test_run_config_fits_the_model_lifecycle_job(run_config):
    from stages.definitions import defs

    job = defs.resolve_job_def("model_lifecycle").with_executor_def(k8s_job_executor)
    dg.validate_run_config(job, run_config)
    steps = {node.name for node in job.graph.nodes}
    per_step = run_config["execution"]["config"]["per_step_k8s_config"]
    assert set(per_step) <= steps, f"per_step_k8s_config names no step of model_lifecycle: {set(per_step) - steps}"
    # A GPU pod for exactly the steps that queue for the gpu pool.
    gpu_pool = {node.name for node in job.graph.nodes if node.definition.pool == "gpu"}
    assert gpu_pool, "no step of model_lifecycle is in the gpu pool"
    assert set(per_step) == gpu_pool, f"GPU pods for {sorted(per_step)}, gpu pool holds {sorted(gpu_pool)}"


def test_every_limited_run_tag_is_carried_by_a_job():
    """A tag limit in dagster.yaml is dead config unless some job puts the tag on its runs."""
    from stages.definitions import defs

    limits = load_yaml(REPO / "dagster.yaml")["concurrency"]["runs"]["tag_concurrency_limits"]
    job_tags = {job.name: job.run_tags for job in defs.resolve_all_job_defs()}
    for limit in limits:
        carriers = [name for name, tags in job_tags.items() if limit["key"] in tags]
        assert carriers, f"no job carries the tag {limit['key']!r} that dagster.yaml limits (jobs: {sorted(job_tags)})"


def test_gpu_tag_and_run_config_place_the_training_step_alike(run_config):
    tagged = load_yaml(K8S / "training_step_tags.yaml")
    tag = tagged["op_tags"][USER_DEFINED_K8S_CONFIG_KEY]
    assert isinstance(tag, str) and json.loads(tag), "a dagster-k8s/config tag is a JSON string"
    from_tag = get_user_defined_k8s_config({USER_DEFINED_K8S_CONFIG_KEY: tag})  # validates like dagster-k8s does
    from_run_config = UserDefinedDagsterK8sConfig.from_dict(
        run_config["execution"]["config"]["per_step_k8s_config"][tagged["step"]])
    assert from_tag == from_run_config


def test_training_step_pod_gets_the_gpu_toleration_and_node_selector(run_config, cluster_instance):
    """Merge configs in the order K8sStepHandler does (run launcher, executor, step tag, per-step) and build the Job."""
    launcher = cluster_instance["run_launcher"]["config"]
    executor = run_config["execution"]["config"]
    tag = load_yaml(K8S / "training_step_tags.yaml")["op_tags"][USER_DEFINED_K8S_CONFIG_KEY]
    context = K8sContainerContext(run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(launcher["run_k8s_config"]))
    for layer in (UserDefinedDagsterK8sConfig.from_dict(executor["step_k8s_config"]),
                  get_user_defined_k8s_config({USER_DEFINED_K8S_CONFIG_KEY: tag}),
                  UserDefinedDagsterK8sConfig.from_dict(executor["per_step_k8s_config"]["lora_adapter"])):
        context = context.merge(K8sContainerContext(run_k8s_config=layer))

    job = construct_dagster_k8s_job(
        DagsterK8sJobConfig(job_image="registry.example.com/tuneforge:0.1.0", dagster_home=launcher["dagster_home"],
                            instance_config_map=launcher["instance_config_map"],
                            postgres_password_secret=launcher["postgres_password_secret"]),
        args=["dagster", "api", "execute_step"], job_name="dagster-step-lora-adapter",
        user_defined_k8s_config=context.run_k8s_config,
    )
    pod = job.spec.template.spec
    (container,) = pod.containers
    assert container.resources.limits[GPU] == container.resources.requests[GPU] == "1"
    assert container.resources.limits["memory"] == "32Gi"  # the step's limit wins over the run worker's 8Gi
    assert pod.node_selector == {"nvidia.com/gpu.present": "true"}
    assert [(t.key, t.operator, t.effect) for t in pod.tolerations] == [(GPU, "Exists", "NoSchedule")]
    assert job.spec.ttl_seconds_after_finished == 86400  # from the run launcher's job_spec_config

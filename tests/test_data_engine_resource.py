"""The data engine resource: local by default, Ray at an address, or a KubeRay RayCluster rendered, validated against
the Kubernetes API's own pod models without a cluster, and applied (created or patched)."""

import json

import pytest
import yaml
from kubernetes import client as k8s

from resources.data_engine import DataEngine
from tuneforge.corpus.engines import EngineConfig

KUBERAY = {"name": "funnel", "namespace": "data", "image": "reg/tuneforge:1", "workspace_claim": "tuneforge-ws",
           "workspace_path": "/ws", "workers": 8, "worker_cpus": 16, "worker_memory": "32Gi",
           "node_selector": {"pool": "cpu"}}


def _pod(template: dict) -> k8s.V1PodTemplateSpec:
    return k8s.ApiClient()._ApiClient__deserialize(json.loads(json.dumps(template)), "V1PodTemplateSpec")


def test_the_default_engine_is_local_and_an_address_joins_a_cluster():
    assert DataEngine().config() == EngineConfig()
    joined = DataEngine(engine="ray", address="ray://head:10001", dedup_shards=64).config()
    assert (joined.engine, joined.address, joined.dedup_shards) == ("ray", "ray://head:10001", 64)


def test_a_kuberay_cluster_mounts_the_workspace_and_the_driver_joins_its_head(tmp_path):
    engine = DataEngine(engine="ray", kubernetes=KUBERAY)
    written = engine.provision(tmp_path, tmp_path / "deployments")
    cluster = yaml.safe_load(written.read_text())
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster")
    assert cluster["spec"]["rayVersion"] == "2.60.0"
    head = cluster["spec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0", "the head schedules; workers clean"
    [workers] = cluster["spec"]["workerGroupSpecs"]
    assert workers["replicas"] == 8 and workers["rayStartParams"]["num-cpus"] == "16"
    for template in (head["template"], workers["template"]):
        pod = _pod(template)
        container = pod.spec.containers[0]
        assert container.image == "reg/tuneforge:1" and pod.spec.node_selector == {"pool": "cpu"}
        assert {m.mount_path for m in container.volume_mounts} == {"/ws", "/dev/shm"}
        assert pod.spec.volumes[0].persistent_volume_claim.claim_name == "tuneforge-ws"
    assert _pod(workers["template"]).spec.containers[0].resources.limits == {"cpu": "16", "memory": "32Gi"}
    assert engine.config(tmp_path).address == "ray://funnel-head-svc.data.svc.cluster.local:10001"


@pytest.mark.parametrize(("fields", "message"), [
    ({"kubernetes": KUBERAY}, "kubernetes needs engine 'ray'"),
    ({"engine": "ray", "kubernetes": {"image": "x"}}, "kubernetes needs workspace_claim"),
    ({"engine": "ray", "kubernetes": {**KUBERAY, "gpus": 1}}, "unexpected keyword argument 'gpus'"),
    ({"engine": "ray", "address": "ray://h:10001", "kubernetes": KUBERAY}, "address or kubernetes, not both"),
])
def test_bad_data_engine_config_says_what_is_wrong(fields, message):
    with pytest.raises(ValueError, match=message):
        DataEngine(**fields)


def test_apply_creates_the_ray_cluster_or_patches_it(tmp_path, monkeypatch):
    import kubernetes
    from kubernetes.client.rest import ApiException

    calls, existing = [], set()

    class FakeCustomObjects:
        def get_namespaced_custom_object(self, group, version, namespace, plural, name):
            calls.append(("get", plural, name))
            if name not in existing:
                raise ApiException(status=404)

        def create_namespaced_custom_object(self, group, version, namespace, plural, body):
            calls.append(("create", plural, body["metadata"]["name"]))
            existing.add(body["metadata"]["name"])

        def patch_namespaced_custom_object(self, group, version, namespace, plural, name, body):
            calls.append(("patch", plural, name))

    monkeypatch.setattr(kubernetes.config, "load_incluster_config", lambda: None)
    monkeypatch.setattr(kubernetes.client, "CustomObjectsApi", FakeCustomObjects)
    engine = DataEngine(engine="ray", kubernetes=KUBERAY, apply=True)
    engine.prepare(tmp_path, tmp_path / "deployments")
    engine.prepare(tmp_path, tmp_path / "deployments")
    assert calls == [("get", "rayclusters", "funnel"), ("create", "rayclusters", "funnel"),
                     ("get", "rayclusters", "funnel"), ("patch", "rayclusters", "funnel")]


def test_the_command_line_stages_follow_the_project_files_engine(tmp_path):
    from tuneforge.corpus.engines import engine_config
    from tuneforge.project import load_project

    (tmp_path / "tuneforge.yaml").write_text("environment:\n  data_engine: {engine: ray, kubernetes: "
                                             "{name: funnel, namespace: data, image: i, workspace_claim: ws}}\n")
    engine = engine_config(load_project(tmp_path).environment.data_engine, tmp_path)
    assert engine.engine == "ray" and engine.address == "ray://funnel-head-svc.data.svc.cluster.local:10001"
    assert engine_config({}, tmp_path) == EngineConfig()


def test_shards_follow_the_input_size_unless_set():
    from tuneforge.corpus.engines import MAX_SHARDS, MIN_SHARDS, SHARD_INPUT_BYTES

    engine = EngineConfig()
    assert engine.dedup_shards is None and DataEngine().config().dedup_shards is None
    assert engine.shards_for(0) == MIN_SHARDS == 16  # a small corpus keeps the floor
    assert engine.shards_for(16 * SHARD_INPUT_BYTES) == 16
    assert engine.shards_for(16 * SHARD_INPUT_BYTES + 1) == 17
    assert engine.shards_for(100 * SHARD_INPUT_BYTES + 1) == 101  # 27 GB: about 23M documents of 1.1 KB
    assert engine.shards_for(10**15) == MAX_SHARDS == 4096
    assert EngineConfig(dedup_shards=3).shards_for(10**12) == 3  # an explicit setting wins
    assert EngineConfig(dedup_shards=300).shards_for(0) == 300
    assert DataEngine(dedup_shards=64).config().shards_for(10**15) == 64
    with pytest.raises(ValueError):
        EngineConfig(dedup_shards=4097)


def test_a_local_rays_object_store_is_sized_by_object_store_mb(monkeypatch):
    import ray

    from tuneforge.corpus.engines import _ray_session

    started: list[dict] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **options: started.append(options))
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    for fields in ({"object_store_mb": 1536, "num_cpus": 2}, {}, {"object_store_mb": 1536, "address": "auto"}):
        with _ray_session(DataEngine(engine="ray", **fields).config()):
            pass
    assert started[0]["object_store_memory"] == 1536 << 20 and started[0]["num_cpus"] == 2
    assert "object_store_memory" not in started[1]  # Ray's own default
    assert "object_store_memory" not in started[2]  # a running cluster's store is its own
    with pytest.raises(ValueError, match="object_store_mb"):
        EngineConfig(object_store_mb=10)  # under Ray's minimum of 75 MiB

"""The serving resource: Kubernetes manifests for tuneforge's server and for vLLM with the LoRA adapter, validated
against the Kubernetes API's own models without a cluster; applying them; and the local server's probe."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s

import resources.serving as serving_module
from resources.serving import Serving
from tuneforge.profiles import ServingConfig
from tuneforge.serving.kubernetes import ServedVersion, vllm_lora_rank

SERVED = ServedVersion(model_name="tuneforge-summarizer", version="7", fingerprint="3f2a9c",
                       base_model_dir="/ws/models/base/SmolLM2", adapter_dir="/ws/models/adapters/3f2a9c",
                       lora_rank=12)


def _typed(manifest: dict):
    """The manifest as the Kubernetes client's model (raises on a field of the wrong type or shape)."""
    api = k8s.ApiClient()
    kind = {"Deployment": "V1Deployment", "Service": "V1Service"}[manifest["kind"]]
    return api._ApiClient__deserialize(json.loads(json.dumps(manifest)), kind)


def test_tuneforge_engine_runs_tuneforge_serve_on_the_workspace_volume(tmp_path):
    serving = Serving(mode="kubernetes", image="reg/tuneforge:1", workspace_claim="tuneforge-ws",
                      workspace_path="/ws", namespace="ml", replicas=2)
    deployment, service = serving.manifests(SERVED, tmp_path)
    typed = _typed(deployment)
    container = typed.spec.template.spec.containers[0]
    assert container.command == ["tuneforge", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert container.image == "reg/tuneforge:1" and typed.spec.replicas == 2
    assert {m.mount_path for m in container.volume_mounts} == {"/ws", "/dev/shm"}
    assert typed.spec.template.spec.volumes[0].persistent_volume_claim.claim_name == "tuneforge-ws"
    keys = next(e for e in container.env if e.name == "TUNEFORGE_API_KEYS")
    assert keys.value is None and keys.value_from.secret_key_ref.name == "tuneforge-api-keys"
    assert container.readiness_probe.http_get.path == "/ready"
    assert typed.spec.template.metadata.annotations["tuneforge.dev/version"] == "7"
    assert typed.spec.strategy.rolling_update.max_unavailable == 0  # a rollout never drops below the replicas
    typed_service = _typed(service)
    assert typed_service.spec.selector == typed.spec.selector.match_labels
    assert typed_service.spec.ports[0].port == 8000 and typed_service.metadata.namespace == "ml"


def test_vllm_engine_serves_the_base_model_with_the_champions_adapter_on_gpus(tmp_path):
    serving = Serving(mode="kubernetes", engine="vllm", gpus=1, workspace_claim="tuneforge-ws",
                      workspace_path="/ws", node_selector={"accelerator": "h100"})
    deployment, _ = serving.manifests(SERVED, tmp_path)
    pod = _typed(deployment).spec.template.spec
    container = pod.containers[0]
    assert container.image.startswith("vllm/vllm-openai:")
    args = container.args
    assert args[args.index("--model") + 1] == SERVED.base_model_dir
    assert "--enable-lora" in args
    assert args[args.index("--lora-modules") + 1] == "tuneforge-summarizer=/ws/models/adapters/3f2a9c"
    assert args[args.index("--max-lora-rank") + 1] == "16"  # rank 12 served at vLLM's next supported rank
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    assert {t.key for t in pod.tolerations} == {"nvidia.com/gpu"} and pod.node_selector == {"accelerator": "h100"}
    env = {e.name: e for e in container.env}
    assert env["VLLM_API_KEY"].value_from.secret_key_ref.key == "api-keys"
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"].value == "True"


def test_vllm_lora_rank_rounds_up_and_refuses_what_vllm_cannot_serve():
    assert [vllm_lora_rank(r) for r in (1, 2, 8, 9, 64, 300)] == [1, 8, 8, 16, 64, 320]
    with pytest.raises(ValueError, match="training.lora_rank=1024 exceeds the largest LoRA rank vLLM serves"):
        vllm_lora_rank(1024)


@pytest.mark.parametrize(("fields", "message"), [
    ({"mode": "kubernetes", "image": "i"}, "workspace_claim is required on kubernetes"),
    ({"mode": "kubernetes", "workspace_claim": "c"}, "image is required for engine 'tuneforge'"),
    ({"mode": "kubernetes", "engine": "vllm", "workspace_claim": "c"}, "engine 'vllm' needs gpus >= 1"),
    ({"engine": "vllm"}, "engine 'vllm' runs on kubernetes only"),
])
def test_bad_serving_config_says_what_is_missing(fields, message):
    with pytest.raises(ValueError, match=message):
        Serving(**fields)


class FakeApi:
    existing: set[str] = set()
    calls: list[tuple[str, str]] = []

    def __getattr__(self, name):
        def call(*args):
            kind = name.rsplit("_", 1)[1]
            FakeApi.calls.append((name.split("_", 1)[0], kind))
            if name.startswith("read") and kind not in FakeApi.existing:
                raise k8s.rest.ApiException(status=404)
        return call


def test_deploy_writes_the_manifests_and_applies_them_creating_or_patching(tmp_path, monkeypatch):
    import kubernetes

    monkeypatch.setattr(kubernetes.config, "load_incluster_config", lambda: None)
    monkeypatch.setattr(kubernetes.client, "AppsV1Api", FakeApi)
    monkeypatch.setattr(kubernetes.client, "CoreV1Api", FakeApi)
    monkeypatch.setattr(FakeApi, "calls", [])
    monkeypatch.setattr(FakeApi, "existing", {"service"})
    serving = Serving(mode="kubernetes", image="reg/tuneforge:1", workspace_claim="c", apply=True)
    record = serving.deploy(SERVED, tmp_path, tmp_path / "deployments", ServingConfig())
    written = list(yaml.safe_load_all(Path(record["manifests"]).read_text()))
    assert written == serving.manifests(SERVED, tmp_path)
    assert record["endpoint"] == "http://tuneforge-serve.default.svc:8000/v1" and record["applied"]
    assert FakeApi.calls == [("read", "deployment"), ("create", "deployment"), ("read", "service"),
                             ("patch", "service")]


def test_local_mode_reports_what_the_running_server_serves(tmp_path):
    class Ready(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the handler's protocol
            body = json.dumps({"status": "ready", "version": "7", "adapter": "3f2a9c"}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = ServingConfig(port=server.server_address[1])
        record = Serving().deploy(SERVED, tmp_path, tmp_path / "deployments", config)
    finally:
        server.shutdown()
    assert record["endpoint"] == f"http://127.0.0.1:{config.port}/v1"
    assert record["live"] == {"status": "ready", "version": "7", "adapter": "3f2a9c"}
    assert Serving().deploy(SERVED, tmp_path, tmp_path, config)["live"] is None  # nothing listens any more
    assert serving_module.probe("http://127.0.0.1:9") is None

"""Kubernetes manifests for serving the champion: a Deployment and a ClusterIP Service, built by pure functions.

Two engines:

- ``tuneforge``: the image runs ``tuneforge serve`` on the workspace volume. It reads the registry and the merged
  exports there and follows the champion alias itself, so a promotion needs no new manifest.
- ``vllm``: the ``vllm/vllm-openai`` image serves the base model with the champion's LoRA adapter
  (``--enable-lora --lora-modules <name>=<adapter>``) from the workspace volume, on GPUs. The adapter is the
  registry version's, so each promotion renders a new manifest (the version is a pod annotation, so applying it
  rolls the pods). Runtime adapter loading stays enabled (``VLLM_ALLOW_RUNTIME_LORA_UPDATING``) for operators who
  prefer ``POST /v1/load_lora_adapter`` to a rollout.

API keys come from a Secret (key ``api-keys``, comma-separated), never from the manifest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
PORT = 8000
KEYS_SECRET_KEY = "api-keys"
VLLM_IMAGE = "vllm/vllm-openai:v0.33.0"
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the values vLLM's --max-lora-rank accepts


@dataclass(frozen=True)
class ServedVersion:
    """What the manifests serve: a registry version, its adapter and the base model it was trained on."""

    model_name: str
    version: str
    fingerprint: str
    adapter_dir: str
    base_model_dir: str
    lora_rank: int


@dataclass(frozen=True)
class ClusterSettings:
    name: str
    namespace: str
    image: str
    workspace_claim: str
    workspace_path: str
    api_key_secret: str
    replicas: int = 1
    gpus: int = 0
    cpu: str = "2"
    memory: str = "8Gi"
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, str]] = ()
    service_account: str = ""


def serving_manifests(engine: Literal["tuneforge", "vllm"], served: ServedVersion,
                      cluster: ClusterSettings) -> list[dict[str, Any]]:
    """The Deployment and the Service, as the dicts a manifest holds."""
    labels = {"app.kubernetes.io/name": "tuneforge-serve", "app.kubernetes.io/instance": cluster.name}
    container = _vllm_container(served, cluster) if engine == "vllm" else _tuneforge_container(cluster)
    limits = {"memory": cluster.memory}
    if cluster.gpus:
        limits[GPU_RESOURCE] = str(cluster.gpus)
    container |= {
        "name": "server",
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": PORT}],
        "resources": {"requests": {"cpu": cluster.cpu, "memory": cluster.memory}, "limits": limits},
        "volumeMounts": [{"name": "workspace", "mountPath": cluster.workspace_path},
                         {"name": "dshm", "mountPath": "/dev/shm"}],
        "readinessProbe": {"httpGet": {"path": _ready_path(engine), "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}, "initialDelaySeconds": 120,
                          "periodSeconds": 15},
    }
    tolerations = [dict(t) for t in cluster.tolerations]
    if cluster.gpus and not any(t.get("key") == GPU_RESOURCE for t in tolerations):
        tolerations.append(dict(GPU_TOLERATION))
    pod: dict[str, Any] = {
        "containers": [container],
        "terminationGracePeriodSeconds": 90,  # the server drains requests in flight for up to 60 s
        "volumes": [{"name": "workspace", "persistentVolumeClaim": {"claimName": cluster.workspace_claim}},
                    {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}}],
    }
    if cluster.node_selector:
        pod["nodeSelector"] = dict(cluster.node_selector)
    if tolerations:
        pod["tolerations"] = tolerations
    if cluster.service_account:
        pod["serviceAccountName"] = cluster.service_account
    annotations = {"tuneforge.dev/registered-model": served.model_name, "tuneforge.dev/version": served.version,
                   "tuneforge.dev/adapter": served.fingerprint}
    metadata = {"name": cluster.name, "namespace": cluster.namespace, "labels": labels}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {**metadata, "annotations": annotations},
        "spec": {
            "replicas": cluster.replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod},
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": metadata,
        "spec": {"type": "ClusterIP", "selector": labels,
                 "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}]},
    }
    return [deployment, service]


def _secret_env(name: str, secret: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": KEYS_SECRET_KEY}}}


def _tuneforge_container(cluster: ClusterSettings) -> dict[str, Any]:
    return {
        "image": cluster.image,
        "command": ["tuneforge", "serve", "--host", "0.0.0.0", "--port", str(PORT)],
        "workingDir": cluster.workspace_path,
        "env": [{"name": "TUNEFORGE_ROOT", "value": cluster.workspace_path},
                _secret_env("TUNEFORGE_API_KEYS", cluster.api_key_secret)],
    }


def _vllm_container(served: ServedVersion, cluster: ClusterSettings) -> dict[str, Any]:
    return {
        "image": cluster.image or VLLM_IMAGE,
        "args": [
            "--model", served.base_model_dir, "--served-model-name", f"{served.model_name}-base",
            "--enable-lora", "--lora-modules", f"{served.model_name}={served.adapter_dir}",
            "--max-lora-rank", str(vllm_lora_rank(served.lora_rank)), "--host", "0.0.0.0", "--port", str(PORT),
        ],
        "env": [{"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": "True"},
                {"name": "HF_HUB_OFFLINE", "value": "1"},
                _secret_env("VLLM_API_KEY", cluster.api_key_secret)],
    }


def vllm_lora_rank(rank: int) -> int:
    """The smallest rank vLLM accepts that holds ``rank``."""
    for allowed in VLLM_LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise ValueError(f"training.lora_rank={rank} exceeds the largest LoRA rank vLLM serves ({VLLM_LORA_RANKS[-1]})")


def _ready_path(engine: str) -> str:
    return "/health" if engine == "vllm" else "/ready"

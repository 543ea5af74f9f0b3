"""Where the champion is served: a local ``tuneforge serve`` process, or a Deployment on Kubernetes (tuneforge's own
server on CPUs, or vLLM with the LoRA adapter on GPUs). The ``deployment`` asset asks this resource to serve each
new champion and records what is served where."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import httpx
import yaml
from pydantic import Field, model_validator

from tuneforge.profiles import ServingConfig
from tuneforge.serving.kubernetes import ClusterSettings, ServedVersion, serving_manifests

PROBE_SECONDS = 2.0


class Serving(dg.ConfigurableResource):
    mode: Literal["local", "kubernetes"] = Field(
        "local", description="local: `tuneforge serve` on this machine, which follows the registry by itself; "
        "kubernetes: a Deployment and Service rendered for each champion (and applied when apply is true).")
    engine: Literal["tuneforge", "vllm"] = Field(
        "tuneforge", description="kubernetes only. tuneforge: `tuneforge serve` in the image, on the workspace "
        "volume; vllm: vLLM's OpenAI server with the champion's LoRA adapter (GPUs).")
    url: str = Field("", description="local only: the server's address; empty: serving.host and serving.port.")
    # Kubernetes only.
    name: str = Field("tuneforge-serve", description="Name of the Deployment and Service.")
    namespace: str = Field("default", description="Namespace of the Deployment and Service.")
    image: str = Field("", description="Container image (tuneforge's for engine tuneforge; default "
                       "vllm/vllm-openai for engine vllm).")
    replicas: int = Field(1, ge=1)
    gpus: int = Field(0, ge=0, description="GPUs per replica (nvidia.com/gpu).")
    cpu: str = Field("2", description="CPU request per replica.")
    memory: str = Field("8Gi", description="Memory request and limit per replica.")
    workspace_claim: str = Field("", description="PersistentVolumeClaim holding the workspace (registry, exports, "
                                 "adapters).")
    workspace_path: str = Field("", description="Where the claim is mounted; empty: the workspace root.")
    api_key_secret: str = Field("tuneforge-api-keys", description="Secret whose key 'api-keys' holds the "
                                "comma-separated API keys.")
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, str]] = Field(default_factory=list)
    service_account: str = ""
    apply: bool = Field(False, description="Apply the manifests to the cluster (else they are only written).")
    kube_context: str = Field("", description="kubeconfig context; empty: in-cluster config or the current one.")

    @model_validator(mode="after")
    def _check_config(self) -> Serving:
        problems = []
        if self.mode == "kubernetes":
            if self.engine == "tuneforge" and not self.image:
                problems.append("image is required for engine 'tuneforge' on kubernetes (the image holding tuneforge)")
            if not self.workspace_claim:
                problems.append("workspace_claim is required on kubernetes (the PersistentVolumeClaim holding the "
                                "workspace, where the registry, adapters and exports are)")
            if self.engine == "vllm" and not self.gpus:
                problems.append("engine 'vllm' needs gpus >= 1 (vLLM's image is a CUDA build)")
        elif self.engine == "vllm":
            problems.append("engine 'vllm' runs on kubernetes only; locally, `tuneforge serve` is the server")
        if problems:
            raise ValueError("Serving config: " + "; ".join(problems))
        return self

    def manifests(self, served: ServedVersion, workspace_root: Path) -> list[dict[str, Any]]:
        cluster = ClusterSettings(
            name=self.name, namespace=self.namespace, image=self.image, workspace_claim=self.workspace_claim,
            workspace_path=self.workspace_path or str(workspace_root), api_key_secret=self.api_key_secret,
            replicas=self.replicas, gpus=self.gpus, cpu=self.cpu, memory=self.memory,
            node_selector=self.node_selector, tolerations=self.tolerations, service_account=self.service_account,
        )
        return serving_manifests(self.engine, served, cluster)

    def deploy(self, served: ServedVersion, workspace_root: Path, out_dir: Path, config: ServingConfig) -> dict:
        """Serve ``served`` and say how: the endpoint, the manifests written (and applied), or what the local
        server answers now."""
        if self.mode == "local":
            url = self.url or f"http://{config.host}:{config.port}"
            return {"mode": "local", "engine": "tuneforge", "endpoint": f"{url}/v1", "version": served.version,
                    "adapter": served.fingerprint, "live": probe(url)}
        manifests = self.manifests(served, workspace_root)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{self.name}-v{served.version}.yaml"
        path.write_text(yaml.safe_dump_all(manifests, sort_keys=False))
        if self.apply:
            apply_manifests(manifests, self.kube_context)
        return {"mode": "kubernetes", "engine": self.engine, "version": served.version, "adapter": served.fingerprint,
                "endpoint": f"http://{self.name}.{self.namespace}.svc:8000/v1", "manifests": str(path),
                "applied": self.apply}


def probe(url: str) -> dict | None:
    """What the server at ``url`` says it serves (its /ready), or None when nothing answers."""
    try:
        response = httpx.get(f"{url}/ready", timeout=PROBE_SECONDS)
        return {"status": response.status_code, **json.loads(response.text or "{}")}
    except (httpx.HTTPError, ValueError):
        return None


def apply_manifests(manifests: list[dict[str, Any]], kube_context: str = "") -> None:
    """Create each object, or patch it where it exists (a new version rolls the Deployment's pods)."""
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config(context=kube_context or None)
    apps, core = client.AppsV1Api(), client.CoreV1Api()
    calls = {"Deployment": (apps.read_namespaced_deployment, apps.create_namespaced_deployment,
                            apps.patch_namespaced_deployment),
             "Service": (core.read_namespaced_service, core.create_namespaced_service,
                         core.patch_namespaced_service)}
    for manifest in manifests:
        read, create, patch = calls[manifest["kind"]]
        name, namespace = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
        try:
            read(name, namespace)
        except ApiException as error:
            if error.status != 404:
                raise
            create(namespace, manifest)
        else:
            patch(name, namespace, manifest)

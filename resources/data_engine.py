"""Where the data funnel runs: worker processes on this machine, or a Ray cluster (``environment.data_engine`` in
tuneforge.yaml): a local Ray started for the run, a cluster at an address, or a KubeRay ``RayCluster`` this resource
renders (and applies). The outputs are the same bytes on any; only speed and the machines used differ."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import dagster as dg
import yaml
from pydantic import Field, model_validator

from tuneforge.corpus.engines import EngineConfig, engine_config
from tuneforge.corpus.ray_cluster import RayClusterSettings, ray_cluster_manifest

RAY_GROUP, RAY_VERSION, RAY_PLURAL = "ray.io", "v1", "rayclusters"


class DataEngine(dg.ConfigurableResource):
    engine: Literal["local", "ray"] = Field(
        "local", description="local: worker processes on this machine (cleaning.workers); ray: tasks on a Ray "
        "cluster (a local Ray started for the run unless address or kubernetes is set).")
    address: str = Field("", description="ray only: the cluster to join (ray://head:10001, or auto for one this "
                         "machine belongs to); empty: a local Ray for the run, or the KubeRay cluster below.")
    num_cpus: int | None = Field(None, ge=1, description="ray only, local Ray: CPUs it may use (None: all).")
    object_store_mb: int | None = Field(None, ge=75, description="ray only, local Ray: MiB of its object store, "
                                        "beyond which Ray spills to disk (None: Ray's default, 30% of the memory).")
    tasks_per_cpu: int = Field(2, ge=1, description="Chunks in flight per worker or CPU: bounds memory.")
    dedup_shards: int | None = Field(
        None, ge=1, le=4096, description="Shards the dedup keys are partitioned into (None: one per 256 MB of input, "
        "at least 16, at most 4096).")
    kubernetes: dict[str, Any] = Field(
        default_factory=dict, description="ray only: a KubeRay RayCluster to run on (name, namespace, image, "
        "workspace_claim, workspace_path, workers, worker_cpus, worker_memory, head_cpus, head_memory, node_selector, "
        "tolerations, service_account); the driver joins it through its head service.")
    apply: bool = Field(False, description="Apply the RayCluster to the cluster (else it is only written).")
    kube_context: str = Field("", description="kubeconfig context; empty: in-cluster config or the current one.")

    @model_validator(mode="after")
    def _check_config(self) -> DataEngine:
        if self.kubernetes:
            if self.engine != "ray":
                raise ValueError("DataEngine config: kubernetes needs engine 'ray' (it describes a Ray cluster)")
            if self.address:
                raise ValueError("DataEngine config: give address or kubernetes, not both")
            missing = [key for key in ("image", "workspace_claim") if not self.kubernetes.get(key)]
            if missing:
                raise ValueError(f"DataEngine config: kubernetes needs {', '.join(missing)} (the image holding "
                                 "tuneforge and ray; the PersistentVolumeClaim holding the workspace)")
            self.cluster_settings(Path("/"))  # unknown keys fail here, at load, not at the first run
        return self

    def cluster_settings(self, workspace_root: Path) -> RayClusterSettings:
        fields = {"name": "tuneforge-data", "namespace": "default", "workspace_path": str(workspace_root),
                  **self.kubernetes}
        try:
            return RayClusterSettings(**fields)
        except TypeError as error:
            raise ValueError(f"DataEngine config: kubernetes: {error}") from None

    def prepare(self, workspace_root: Path, manifests_dir: Path) -> EngineConfig:
        """The engine for a run: with a KubeRay cluster configured, its RayCluster written to ``manifests_dir`` (and
        applied), and its head service as the address."""
        self.provision(workspace_root, manifests_dir)
        return self.config(workspace_root)

    def config(self, workspace_root: Path | None = None) -> EngineConfig:
        return engine_config(self.model_dump(), workspace_root or Path("/"))

    def provision(self, workspace_root: Path, out_dir: Path) -> Path | None:
        """Write (and with apply, create or patch) the RayCluster; None when no KubeRay cluster is configured."""
        if not self.kubernetes:
            return None
        manifest = ray_cluster_manifest(self.cluster_settings(workspace_root))
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{manifest['metadata']['name']}.raycluster.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        if self.apply:
            apply_ray_cluster(manifest, self.kube_context)
        return path


def apply_ray_cluster(manifest: dict[str, Any], kube_context: str = "") -> None:
    """Create the RayCluster, or patch it where it exists (KubeRay reconciles the pods)."""
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config(context=kube_context or None)
    api = client.CustomObjectsApi()
    name, namespace = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
    try:
        api.get_namespaced_custom_object(RAY_GROUP, RAY_VERSION, namespace, RAY_PLURAL, name)
    except ApiException as error:
        if error.status != 404:
            raise
        api.create_namespaced_custom_object(RAY_GROUP, RAY_VERSION, namespace, RAY_PLURAL, manifest)
    else:
        api.patch_namespaced_custom_object(RAY_GROUP, RAY_VERSION, namespace, RAY_PLURAL, name, manifest)

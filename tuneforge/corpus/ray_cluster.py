"""A KubeRay ``RayCluster`` for the data funnel, built by a pure function like the training pod's spec: a head that
schedules no work and a group of workers, each mounting the workspace volume at the path the driver sees, so the
chunk tasks read and write the same files. The driver joins it with Ray Client at the head service."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RAY_VERSION = "2.60.0"
CLIENT_PORT = 10001


@dataclass(frozen=True)
class RayClusterSettings:
    name: str
    namespace: str
    image: str  # an image holding tuneforge and ray (the training image is one)
    workspace_claim: str
    workspace_path: str
    workers: int = 2
    worker_cpus: int = 4
    worker_memory: str = "8Gi"
    head_cpus: int = 2
    head_memory: str = "4Gi"
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, str]] = field(default_factory=list)
    service_account: str = ""


def client_address(settings: RayClusterSettings) -> str:
    """Ray Client's address of the cluster's head service (KubeRay names it ``<cluster>-head-svc``)."""
    return f"ray://{settings.name}-head-svc.{settings.namespace}.svc.cluster.local:{CLIENT_PORT}"


def ray_cluster_manifest(settings: RayClusterSettings) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "tuneforge-data-engine", "app.kubernetes.io/instance": settings.name}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": settings.name, "namespace": settings.namespace, "labels": labels},
        "spec": {
            "rayVersion": RAY_VERSION,
            "headGroupSpec": {
                # num-cpus 0: the head schedules, the workers clean (a busy head stalls every task).
                "rayStartParams": {"num-cpus": "0"},
                "template": _pod(settings, "ray-head", settings.head_cpus, settings.head_memory, labels,
                                 ports=[{"name": "gcs", "containerPort": 6379},
                                        {"name": "client", "containerPort": CLIENT_PORT}]),
            },
            "workerGroupSpecs": [{
                "groupName": "cleaning",
                "replicas": settings.workers,
                "minReplicas": settings.workers,
                "maxReplicas": settings.workers,
                "rayStartParams": {"num-cpus": str(settings.worker_cpus)},
                "template": _pod(settings, "ray-worker", settings.worker_cpus, settings.worker_memory, labels),
            }],
        },
    }


def _pod(settings: RayClusterSettings, container: str, cpus: int, memory: str, labels: dict[str, str],
         ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    resources = {"cpu": str(cpus), "memory": memory}
    spec: dict[str, Any] = {
        "containers": [{
            "name": container,
            "image": settings.image,
            "resources": {"requests": resources, "limits": resources},
            "volumeMounts": [{"name": "workspace", "mountPath": settings.workspace_path},
                             {"name": "shm", "mountPath": "/dev/shm"}],
            "env": [{"name": "TUNEFORGE_ROOT", "value": settings.workspace_path}],
            **({"ports": ports} if ports else {}),
        }],
        "volumes": [{"name": "workspace", "persistentVolumeClaim": {"claimName": settings.workspace_claim}},
                    # Ray's object store lives in shared memory.
                    {"name": "shm", "emptyDir": {"medium": "Memory"}}],
    }
    if settings.node_selector:
        spec["nodeSelector"] = dict(settings.node_selector)
    if settings.tolerations:
        spec["tolerations"] = [dict(t) for t in settings.tolerations]
    if settings.service_account:
        spec["serviceAccountName"] = settings.service_account
    return {"metadata": {"labels": dict(labels)}, "spec": spec}

"""The compute resource: where training runs — in the asset's process, in N local processes, or in a Kubernetes pod.

Assets call ``compute.train(context, job)`` and never name infrastructure. The local and Kubernetes modes run the
same command, ``python -m tuneforge.modeling.train JOB.json`` (under torchrun or ``accelerate launch`` for N
data-parallel processes), through Dagster Pipes: the trainer's rank 0 streams its log lines into the run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal

import dagster as dg
from pydantic import Field, model_validator

from resources.workspace import resolve_root
from tuneforge.modeling.records import JOB_FILE, TrainingJob, TrainingResult, load_training_result
from tuneforge.profiles import PROFILE_ENV_VAR
from tuneforge.project import PRECISION_ENV_VAR

GPU_POOL = "gpu"  # the Dagster pool of training and evaluation (a pool is fixed where an asset is defined)
TRAINER_MODULE = "tuneforge.modeling.train"
STDERR_TAIL_LINES = 40
STDERR_TAIL_CHARS = 4000
STDERR_KEPT_LINES = 400  # enough to hold the launcher's failure report (~50 lines) and the worker lines before it
# torch elastic (torchrun, accelerate launch) reports a failed worker with a line like
# "E1125 08:04:44.033000 16522 .../torch/distributed/elastic/multiprocessing/api.py:1002] failed (exitcode: 2) ..."
# followed by its own traceback and summary, which would push the worker's error out of a plain tail.
LAUNCHER_FAILURE = re.compile(r"torch/distributed/elastic/.*\] failed \(exitcode")
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
TOLERATION_FIELDS = {"key", "operator", "value", "effect"}
WORKSPACE_VOLUME = "workspace"


class TrainingFailed(dg.Failure):
    """The training process or pod failed; the description says how and ends with the tail of its stderr."""


def training_command(python: str, launcher: str, processes: int, job_file: str) -> list[str]:
    """The command that trains ``job_file`` in ``processes`` data-parallel processes.

    Both launchers let the rendezvous pick a free port (c10d on port 0), so concurrent runs on one host cannot
    collide. ``accelerate launch --cpu`` would start a single process without MPI, hence ``--multi_gpu``: the trainer
    builds ``Accelerator(cpu=True)`` when there is no GPU, which gives gloo across the CPU processes.
    """
    trainer = ["-m", TRAINER_MODULE, job_file]
    if processes == 1:
        return [python, *trainer]
    if launcher == "torchrun":
        return [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes), *trainer]
    return [
        python, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--rdzv_backend", "c10d", "--main_process_port", "0", *trainer,
    ]


def training_pod_spec(
    *,
    image: str,
    command: Sequence[str],
    workspace_claim: str,
    workspace_path: str,
    gpus: int = 0,
    cpu: str = "2",
    memory: str = "8Gi",
    shm_size: str = "2Gi",
    env: Mapping[str, str] | None = None,
    node_selector: Mapping[str, str] | None = None,
    tolerations: Sequence[Mapping[str, str]] = (),
    service_account: str = "",
) -> dict[str, Any]:
    """A Kubernetes PodSpec (camelCase, as in a manifest) for one training pod.

    The workspace claim is mounted at the same path as on the orchestrating side, so the job file, the data and
    the adapter directory have the same absolute paths in the pod. GPUs are a limit (Kubernetes sets the request
    equal); a GPU pod tolerates the usual ``nvidia.com/gpu`` taint. ``/dev/shm`` is a memory volume because the
    container default (64 MiB) is too small for NCCL and DataLoader workers.
    """
    limits = {"memory": memory}
    if gpus:
        limits[GPU_RESOURCE] = str(gpus)
    container = {
        "name": "training",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(command),
        "workingDir": workspace_path,
        "env": [{"name": name, "value": value} for name, value in (env or {}).items()],
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": limits},
        "volumeMounts": [
            {"name": WORKSPACE_VOLUME, "mountPath": workspace_path},
            {"name": "dshm", "mountPath": "/dev/shm"},
        ],
    }
    all_tolerations = [dict(toleration) for toleration in tolerations]
    if gpus and not any(toleration.get("key") == GPU_RESOURCE for toleration in all_tolerations):
        all_tolerations.append(dict(GPU_TOLERATION))
    spec: dict[str, Any] = {
        "containers": [container],
        "restartPolicy": "Never",
        "volumes": [
            {"name": WORKSPACE_VOLUME, "persistentVolumeClaim": {"claimName": workspace_claim}},
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shm_size}},
        ],
    }
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if all_tolerations:
        spec["tolerations"] = all_tolerations
    if service_account:
        spec["serviceAccountName"] = service_account
    return spec


class Compute(dg.ConfigurableResource):
    """Where training runs. The training asset belongs to the Dagster pool ``GPU_POOL``; its limit is set per instance
    (``dagster instance concurrency set gpu 4``, or ``concurrency.pools.default_limit`` in dagster.yaml)."""

    mode: Literal["in_process", "local", "kubernetes"] = Field(
        "in_process",
        description="in_process: in the asset's process; local: subprocesses through Dagster Pipes; "
        "kubernetes: a pod through dagster-k8s Pipes.",
    )
    processes: int = Field(1, description="Data-parallel training processes: one per GPU, or CPU processes (gloo).")
    launcher: Literal["torchrun", "accelerate"] = Field("torchrun", description="Launcher when processes > 1.")
    python: str = Field("", description="Interpreter for the training command; empty: this one locally, "
                        "`python` in a pod.")
    # Kubernetes only.
    image: str = Field("", description="Container image holding tuneforge and its dependencies.")
    namespace: str = Field("", description="Empty: the current namespace in a cluster, else 'default'.")
    gpus: int = Field(0, description="GPUs requested for the pod (nvidia.com/gpu); 0 trains on CPUs.")
    cpu: str = Field("2", description="CPU request of the pod.")
    memory: str = Field("8Gi", description="Memory request and limit of the pod.")
    shm_size: str = Field("2Gi", description="Size of the pod's /dev/shm (memory-backed).")
    workspace_claim: str = Field("", description="PersistentVolumeClaim holding the workspace.")
    workspace_path: str = Field("", description="Where the claim is mounted, the same path as here; empty: the "
                                "workspace root ($TUNEFORGE_ROOT or the current directory).")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Pod node selector.")
    tolerations: list[dict[str, str]] = Field(
        default_factory=list, description="Pod tolerations (key, operator, value, effect); GPU pods also tolerate "
        f"the {GPU_RESOURCE} taint."
    )
    service_account: str = Field("", description="Service account of the pod.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment of the training process.")
    pod_wait_timeout_seconds: float = Field(
        6 * 3600.0, description="Give up on a pod that has not finished after this long (0: never)."
    )
    kube_context: str = Field("", description="kubeconfig context; empty: in-cluster config or the current one.")

    @model_validator(mode="after")
    def _check_config(self) -> Compute:
        problems = []
        if self.processes < 1:
            problems.append(f"processes must be at least 1 (got {self.processes})")
        if self.mode == "in_process" and self.processes > 1:
            problems.append(f"processes={self.processes} needs mode 'local' or 'kubernetes': in_process runs one")
        if self.gpus < 0:
            problems.append(f"gpus must be 0 or more (got {self.gpus})")
        if self.mode == "kubernetes":
            if not self.image:
                problems.append("image is required in mode 'kubernetes' (the container image holding tuneforge)")
            if not self.workspace_claim:
                problems.append(
                    "workspace_claim is required in mode 'kubernetes' (the PersistentVolumeClaim holding the "
                    "workspace, so the pod sees the job file, the data and the adapter directory)"
                )
            if self.gpus and self.processes > self.gpus:
                problems.append(f"processes={self.processes} exceeds gpus={self.gpus}: each process needs a GPU")
            if self.pod_wait_timeout_seconds < 0:
                problems.append(f"pod_wait_timeout_seconds must be 0 or more (got {self.pod_wait_timeout_seconds})")
        for index, toleration in enumerate(self.tolerations):
            unknown = set(toleration) - TOLERATION_FIELDS
            if unknown:
                problems.append(
                    f"tolerations[{index}] has unknown field(s) {sorted(unknown)}; allowed: {sorted(TOLERATION_FIELDS)}"
                )
        if problems:
            raise ValueError("Compute config: " + "; ".join(problems))
        return self

    def describe(self) -> dict[str, Any]:
        """Asset metadata saying where the training ran."""
        metadata: dict[str, Any] = {"compute_mode": self.mode, "compute_processes": self.processes,
                                    "compute_pool": GPU_POOL}
        if self.processes > 1:
            metadata["compute_launcher"] = self.launcher
        if self.mode == "kubernetes":
            metadata.update(compute_image=self.image, compute_gpus=self.gpus)
        return metadata

    def training_precision(self, configured: str) -> str:
        """``bf16`` or ``fp32``: what ``configured`` (after ``TUNEFORGE_PRECISION``) means where this resource
        trains. Locally ``auto`` is decided for this machine; a pod's hardware cannot be measured from here, so
        ``auto`` there means bf16 on GPUs (Ampere and newer; set ``precision: fp32`` for older ones) and fp32 on
        CPUs."""
        from tuneforge.modeling.device import requested_precision, training_precision

        if self.mode != "kubernetes":
            return training_precision(configured)
        requested = requested_precision(configured)
        if requested != "auto":
            return requested
        return "bf16" if self.gpus else "fp32"

    def train(self, context: dg.AssetExecutionContext, job: TrainingJob) -> TrainingResult:
        """Train ``job`` where this resource says; returns the result the trainer recorded with the adapter."""
        if self.mode == "in_process":
            from tuneforge.modeling.reporting import LogReporter
            from tuneforge.modeling.train import run_training

            return run_training(job, reporters=[LogReporter(context.log.info)])
        job_file = Path(job.checkpoint_dir) / JOB_FILE
        job.save(job_file)
        if self.mode == "local":
            self._train_locally(context, job_file)
        else:
            self._train_in_pod(context, job, job_file)
        return _recorded_result(job)

    def _train_locally(self, context: dg.AssetExecutionContext, job_file: Path) -> None:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus and self.processes > gpus:
            raise ValueError(f"Compute.processes={self.processes} but only {gpus} GPU(s) are visible here")
        command = training_command(self.python or sys.executable, self.launcher, self.processes, str(job_file))
        context.log.info(f"training in {self.processes} local process(es) on {'GPU' if gpus else 'CPU'}: "
                         + " ".join(command))
        env = {"PYTHONUNBUFFERED": "1", **self.env}
        if self.processes > 1 and "OMP_NUM_THREADS" not in os.environ:
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // self.processes))
        StderrTailSubprocessClient(env=env).run(context=context, command=command)

    def _train_in_pod(self, context: dg.AssetExecutionContext, job: TrainingJob, job_file: Path) -> None:
        from dagster_k8s import PipesK8sClient

        workspace = _absolute(self.workspace_path) if self.workspace_path else resolve_root()
        _require_inside(workspace, job, job_file)
        command = training_command(self.python or "python", self.launcher, self.processes, str(job_file))
        spec = training_pod_spec(
            image=self.image, command=command, workspace_claim=self.workspace_claim,
            workspace_path=str(workspace), gpus=self.gpus, cpu=self.cpu, memory=self.memory,
            shm_size=self.shm_size, env=self._pod_env(job, workspace), node_selector=self.node_selector,
            tolerations=self.tolerations, service_account=self.service_account,
        )
        context.log.info(f"training in a pod ({self.image}, {self.gpus} GPU(s), {self.processes} process(es)): "
                         + " ".join(command))
        client = PipesK8sClient(kube_context=self.kube_context or None)
        try:
            client.run(
                context=context, image=self.image, command=command, namespace=self.namespace or None,
                base_pod_spec=spec, base_pod_meta={"labels": {"app.kubernetes.io/component": "tuneforge-training"}},
                pod_wait_timeout=self.pod_wait_timeout_seconds,
            )
        except Exception as error:
            raise TrainingFailed(
                description=f"training pod (image {self.image}, namespace {self.namespace or 'default'}) failed: "
                f"{error}\nThe pod's log lines are in this step's stdout.",
                metadata={"command": " ".join(command)},
            ) from error

    def _pod_env(self, job: TrainingJob, workspace: Path) -> dict[str, str]:
        env = {"TUNEFORGE_ROOT": str(workspace), "PYTHONUNBUFFERED": "1"}
        for name in (PROFILE_ENV_VAR, PRECISION_ENV_VAR):
            if os.environ.get(name):
                env[name] = os.environ[name]
        tracking_uri = job.tracking.tracking_uri if job.tracking else os.environ.get("MLFLOW_TRACKING_URI", "")
        if tracking_uri:
            env["MLFLOW_TRACKING_URI"] = tracking_uri
        return {**env, **self.env}


def _require_inside(workspace: Path, job: TrainingJob, job_file: Path) -> None:
    """Every path the pod reads or writes must be on the workspace volume. Paths are compared as written (made
    absolute, symlinks not followed) because the pod sees them as written."""
    paths = {"base_dir": job.base_dir, "train_path": job.train_path, "validation_path": job.validation_path,
             "out_dir": job.out_dir, "checkpoint_dir": job.checkpoint_dir, "job file": str(job_file)}
    outside = {name: path for name, path in paths.items() if not _absolute(path).is_relative_to(workspace)}
    if outside:
        listed = ", ".join(f"{name}={path}" for name, path in outside.items())
        raise ValueError(f"training job paths outside the workspace volume mounted at {workspace} (the pod could "
                         f"not see them): {listed}. Set Compute.workspace_path to the claim's mount path, or keep the "
                         "job under it.")


def _absolute(path: str | Path) -> Path:
    return Path(os.path.abspath(path))


def _recorded_result(job: TrainingJob) -> TrainingResult:
    result = load_training_result(Path(job.out_dir))
    if result is None:
        raise TrainingFailed(
            description=f"the training process exited successfully but wrote no adapter at {job.out_dir} "
            "(no training manifest there)"
        )
    return result


class StderrTailSubprocessClient(dg.PipesSubprocessClient):
    """``PipesSubprocessClient`` that forwards the child's stderr line by line and keeps its last lines, so a
    failure says why instead of only "failed with code 1" (the stock client either passes stderr through unseen,
    or pipes it without reading it, which blocks a chatty child)."""

    def run(  # type: ignore[override]
        self,
        *,
        context: dg.OpExecutionContext | dg.AssetExecutionContext,
        command: Sequence[str],
        extras: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> dg.PipesClientCompletedInvocation:
        with dg.open_pipes_session(
            context=context, context_injector=self.context_injector, message_reader=self.message_reader,
            extras=extras,
        ) as session:
            process = subprocess.Popen(
                command, cwd=cwd or self.cwd, stderr=subprocess.PIPE,
                env={**os.environ, **self.env, **(env or {}), **session.get_bootstrap_env_vars()},
            )
            kept: deque[str] = deque(maxlen=STDERR_KEPT_LINES)
            pump = threading.Thread(target=_forward_lines, args=(process.stderr, kept), daemon=True)
            pump.start()
            try:
                process.wait()
            except dg.DagsterExecutionInterruptedError:
                if self.forward_termination:
                    context.log.info("[pipes] execution interrupted, sending SIGINT to the training process")
                    process.send_signal(signal.SIGINT)
                    process.wait(timeout=self.termination_timeout_seconds)
                raise
            finally:
                pump.join(timeout=10)
            if process.returncode != 0:
                stderr_tail = error_tail(list(kept))
                raise TrainingFailed(
                    description=f"training process exited with code {process.returncode}: {' '.join(command)}\n"
                    f"--- last lines of its stderr ---\n{stderr_tail or '(empty)'}",
                    metadata={"exit_code": process.returncode, "stderr_tail": dg.MetadataValue.text(stderr_tail)},
                )
        return dg.PipesClientCompletedInvocation(session)


def error_tail(lines: list[str]) -> str:
    """The last stderr lines that explain a failure: under a launcher, the workers' lines up to the launcher's
    "failed (exitcode ...)" line, not the launcher's own traceback after it."""
    for index, line in enumerate(lines):
        if LAUNCHER_FAILURE.search(line):
            lines = lines[: index + 1]
            break
    return "".join(lines[-STDERR_TAIL_LINES:])[-STDERR_TAIL_CHARS:].rstrip()


def _forward_lines(stream: IO[bytes], kept: deque[str]) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace")
        kept.append(line)
        sys.stderr.write(line)
        sys.stderr.flush()
    stream.close()

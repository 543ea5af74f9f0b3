"""Every training run as an MLflow run: hyperparameters, per-step metrics, the adapter, the loss curve, a summary.

Only ``MlflowClient`` is used, never the fluent ``mlflow.start_run`` state: training may run inside a Dagster process
that does other things at the same time. Per-step metrics are buffered and sent with ``log_batch`` at most every
``flush_seconds`` (and on finish or fail), so tracking does not slow the training loop, and a store that is briefly
unreachable mid-training costs a warning, not the run. After a crash the trainer resumes from a checkpoint and
continues the same MLflow run (``run_id``); steps it replays that the run already holds are not logged twice.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import shlex
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from tuneforge.modeling.loss_chart import loss_curve_png
from tuneforge.modeling.records import TrackingTarget, TrainingResult

logger = logging.getLogger(__name__)

KIND_TAG = "tuneforge.kind"
ERROR_TAG = "tuneforge.error"
EARLIER_ERROR_TAG = "tuneforge.error_before_resume"
RESUMES_TAG = "tuneforge.resumes"
CHANGED_PARAMS_TAG = "tuneforge.params_changed_on_resume"
LOSS_CURVE = "loss_curve.png"
MANIFEST = "training_manifest.json"
TRAINING_LOG = "training.log"
ADAPTER_ARTIFACTS = "adapter"

FLUSH_SECONDS = 5.0
MAX_PENDING_METRICS = 100_000  # kept while the store is unreachable; the oldest are dropped beyond this
MAX_LOG_LINES = 50_000
LOCK_TIMEOUT_SECONDS = 600
MAX_PARAM_LENGTH = 6000  # MLflow's limits
MAX_TAG_LENGTH = 8000
VALID_NAME = re.compile(r"^[/\w.\- :]+$")  # MLflow's rule for param and metric names (POSIX)


class TrackingError(RuntimeError):
    """The MLflow run cannot be created, resumed or completed; the message says why and what to do."""


class MlflowTrainingReporter:
    """A ``Reporter`` (``tuneforge.modeling.reporting``) recording one training run in MLflow.

    The trainer calls ``log_params(config)`` once, ``metrics(step, values)`` and ``log(message)`` while training,
    then ``finish(result)`` or ``fail(error)``.
    """

    def __init__(
        self,
        target: TrackingTarget,
        run_id: str | None = None,
        flush_seconds: float = FLUSH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from mlflow import MlflowClient

        self.target = target
        self.flush_seconds = flush_seconds
        self._clock = clock
        tags = checked_tags(target.tags)
        with store_lock(target):
            self.client = MlflowClient(tracking_uri=target.tracking_uri)
            self.experiment_id = self._experiment_id()
            run = self._resume(run_id, tags) if run_id else self.client.create_run(
                self.experiment_id, run_name=target.run_name, tags={**tags, KIND_TAG: "training"}
            )
        self.run_id: str = run.info.run_id
        self.artifact_uri: str = run.info.artifact_uri
        self._params: dict[str, str] = dict(run.data.params)
        self._resumed = run_id is not None
        self._logged_through = self._last_logged_steps(run) if run_id else {}
        self._pending: list = []  # mlflow.entities.Metric, sent by the next flush
        self._last_flush = clock()
        self._flush_warned = False
        self._log_lines: list[str] = []
        self._dropped_log_lines = 0
        self._ended = False

    # ------------------------------------------------------------------------------------------- the Reporter

    def log_params(self, config: Mapping[str, Any]) -> None:
        """The training hyperparameters, flattened (``lora.r``) with lists joined by commas.

        On a resumed run the parameters already recorded stay (MLflow parameters cannot change); any that differ
        are named in the ``tuneforge.params_changed_on_resume`` tag.
        """
        from mlflow.entities import Param, RunTag

        flat = flatten_params(config)
        changed = {key: value for key, value in flat.items() if key in self._params and self._params[key] != value}
        new = [Param(key, value) for key, value in flat.items() if key not in self._params]
        tags = []
        if changed:
            detail = "; ".join(f"{key}: {self._params[key]} -> {value}" for key, value in changed.items())
            logger.warning("resumed MLflow run %s keeps its recorded parameters; changed: %s", self.run_id, detail)
            tags.append(RunTag(CHANGED_PARAMS_TAG, detail[:MAX_TAG_LENGTH]))
        self.client.log_batch(self.run_id, params=new, tags=tags, synchronous=True)
        self._params.update({param.key: param.value for param in new})

    def log(self, message: str) -> None:
        """Kept in memory and written to the ``training.log`` artifact at finish or fail."""
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        self._log_lines.extend(f"{stamp} {line}" for line in str(message).splitlines() or [""])
        if len(self._log_lines) > MAX_LOG_LINES:
            excess = len(self._log_lines) - MAX_LOG_LINES
            del self._log_lines[:excess]
            self._dropped_log_lines += excess

    def metrics(self, step: int, values: Mapping[str, float]) -> None:
        """Per-step figures (``train/loss``, ``validation/loss``...), buffered and sent every few seconds."""
        from mlflow.entities import Metric

        timestamp = int(time.time() * 1000)
        for key, value in values.items():
            if not isinstance(key, str) or not VALID_NAME.match(key):
                raise ValueError(f"metric name {key!r} at step {step} is not a valid MLflow name: use letters, digits "
                                 "and _ - . / : or spaces")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"metric {key!r} at step {step} must be a number, got {value!r}") from None
            if step <= self._logged_through.get(key, -math.inf):
                continue  # replayed after resuming from a checkpoint: the run already holds this step
            self._pending.append(Metric(key, number, timestamp, int(step)))
        if self._clock() - self._last_flush >= self.flush_seconds:
            self.flush(strict=False)

    def finish(self, result: TrainingResult) -> None:
        """Send what is buffered, log the adapter, loss curve, manifest, log and summary, and end the run FINISHED.

        If any of it fails the run is ended FAILED with the error and the error is raised.
        """
        if self._ended:
            raise TrackingError(f"MLflow run {self.run_id} has already ended: finish() or fail() was called before")
        adapter_dir = Path(result.adapter_dir)
        try:
            if not adapter_dir.is_dir():
                raise TrackingError(f"cannot finish MLflow run {self.run_id}: the adapter directory {adapter_dir} "
                                    "does not exist")
            self.flush(strict=True)
            self._log_summary(result)
            self.client.log_artifacts(self.run_id, str(adapter_dir), artifact_path=ADAPTER_ARTIFACTS)
            with tempfile.TemporaryDirectory(prefix="tuneforge-tracking-") as scratch:
                chart = Path(scratch, LOSS_CURVE)
                chart.write_bytes(loss_curve_png(list(getattr(result, "train_loss_curve", None) or []),
                                                 list(getattr(result, "validation_curve", None) or [])))
                manifest = Path(scratch, MANIFEST)
                manifest.write_text(json.dumps(result_record(result), indent=2, default=str) + "\n")
                for path in (chart, manifest):
                    self.client.log_artifact(self.run_id, str(path))
                self._log_training_log(Path(scratch))
            self.client.set_terminated(self.run_id, status="FINISHED")
        except BaseException as error:
            self.fail(error)
            raise
        self._ended = True

    def fail(self, error: BaseException) -> None:
        """Send what is buffered, tag the error and end the run FAILED; never raises over the training error."""
        if self._ended:
            return
        self._ended = True
        try:
            self.flush(strict=False)
            self.client.set_tag(self.run_id, ERROR_TAG, f"{type(error).__name__}: {error}"[:MAX_TAG_LENGTH])
            self.log(f"training failed: {type(error).__name__}: {error}")
            with tempfile.TemporaryDirectory(prefix="tuneforge-tracking-") as scratch:
                self._log_training_log(Path(scratch))
            self.client.set_terminated(self.run_id, status="FAILED")
        except Exception:  # noqa: BLE001 - the training error is the one to raise; this one is logged
            logger.exception("could not mark MLflow run %s as failed", self.run_id)

    # ------------------------------------------------------------------------------------------- beyond it

    def flush(self, strict: bool = True) -> None:
        """Send the buffered metrics. Not strict: a failure is logged and the metrics kept for the next flush."""
        self._last_flush = self._clock()
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            self.client.log_batch(self.run_id, metrics=batch, synchronous=True)
        except Exception:
            self._pending = (batch + self._pending)[-MAX_PENDING_METRICS:]
            if strict:
                raise
            if not self._flush_warned:
                logger.warning("could not send metrics to MLflow run %s; keeping them for the next try",
                               self.run_id, exc_info=True)
                self._flush_warned = True

    def link(self) -> str:
        return run_link(self.target.tracking_uri, self.run_id, self.experiment_id)

    def metadata(self) -> dict[str, str]:
        """What an asset can show about the run (plain strings)."""
        return {"mlflow_run_id": self.run_id, "mlflow_experiment": self.target.experiment,
                "mlflow_artifacts": self.artifact_uri, "mlflow_run": self.link()}

    # ------------------------------------------------------------------------------------------- internals

    def _experiment_id(self) -> str:
        from mlflow.exceptions import MlflowException

        name = self.target.experiment
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return self.client.create_experiment(name, artifact_location=artifact_location(self.target))
            except MlflowException as error:
                raise TrackingError(f"cannot create MLflow experiment {name!r} in {self.target.tracking_uri}: "
                                    f"{error.message}") from error
        if experiment.lifecycle_stage != "active":
            raise TrackingError(f"MLflow experiment {name!r} in {self.target.tracking_uri} is deleted: restore it "
                                f"(mlflow experiments restore --experiment-id {experiment.experiment_id}) or "
                                "record training under another experiment name")
        return experiment.experiment_id

    def _resume(self, run_id: str, tags: dict[str, str]):
        from mlflow.entities import RunTag
        from mlflow.exceptions import MlflowException

        where = f"in {self.target.tracking_uri}"
        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            raise TrackingError(f"cannot resume MLflow run {run_id}: there is no such run {where}; "
                                "start without run_id to record a new run") from None
        if run.info.lifecycle_stage != "active":
            raise TrackingError(f"cannot resume MLflow run {run_id} {where}: it is deleted")
        if run.info.experiment_id != self.experiment_id:
            raise TrackingError(f"cannot resume MLflow run {run_id} {where}: it belongs to experiment "
                                f"{run.info.experiment_id}, not {self.target.experiment!r} ({self.experiment_id})")
        resumes = int(run.data.tags.get(RESUMES_TAG, "0")) + 1
        all_tags = {**tags, RESUMES_TAG: str(resumes)}
        if ERROR_TAG in run.data.tags:  # the run is running again: its last error is history, not its outcome
            all_tags[EARLIER_ERROR_TAG] = run.data.tags[ERROR_TAG]
            self.client.delete_tag(run_id, ERROR_TAG)
        self.client.log_batch(run_id, tags=[RunTag(key, value) for key, value in all_tags.items()], synchronous=True)
        self.client.update_run(run_id, status="RUNNING")
        return self.client.get_run(run_id)

    def _last_logged_steps(self, run) -> dict[str, float]:
        return {key: max((metric.step for metric in self.client.get_metric_history(self.run_id, key)),
                         default=-math.inf)
                for key in run.data.metrics}

    def _log_summary(self, result: TrainingResult) -> None:
        from mlflow.entities import Metric, RunTag

        step = int(getattr(result, "steps", 0) or 0)
        timestamp = int(time.time() * 1000)
        figures = {
            "validation_loss": getattr(result, "validation_loss", None),
            "validation_loss_before": getattr(result, "validation_loss_before", None),
            "tokens_per_second": getattr(result, "tokens_per_second", None),
            "trained_tokens": getattr(result, "trained_tokens", None),
            "peak_memory_mb": getattr(result, "peak_memory_mb", None),
            "train_seconds": getattr(result, "seconds", None),
            "steps": getattr(result, "steps", None),
        }
        metrics = [Metric(key, float(value), timestamp, step) for key, value in figures.items() if value is not None]
        facts = {name: getattr(result, name, None) for name in
                 ("precision", "device", "world_size", "resumed_from_step", "stopped_early", "best_step")}
        tags = [RunTag(name, str(value)) for name, value in facts.items() if value is not None]
        tags.append(RunTag("adapter_dir", str(result.adapter_dir)))
        self.client.log_batch(self.run_id, metrics=metrics, tags=tags, synchronous=True)

    def _log_training_log(self, scratch: Path) -> None:
        """Write ``training.log``, after the log of earlier attempts when the run was resumed."""
        if not self._log_lines:
            return
        earlier = self._earlier_training_log(scratch / "earlier")
        lines = ([f"... {self._dropped_log_lines} earlier lines dropped"] if self._dropped_log_lines else [])
        text = earlier + "\n".join(lines + self._log_lines) + "\n"
        path = scratch / TRAINING_LOG
        path.write_text(text)
        self.client.log_artifact(self.run_id, str(path))

    def _earlier_training_log(self, download_to: Path) -> str:
        if not self._resumed or TRAINING_LOG not in {entry.path for entry in self.client.list_artifacts(self.run_id)}:
            return ""
        download_to.mkdir()
        return Path(self.client.download_artifacts(self.run_id, TRAINING_LOG, str(download_to))).read_text()


# ------------------------------------------------------------------------------------------------ helpers


def flatten_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"lora": {"r": 8, "targets": ["q", "v"]}}`` -> ``{"lora.r": "8", "lora.targets": "q,v"}``."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if not VALID_NAME.match(name):
            raise ValueError(f"training parameter {name!r} is not a valid MLflow name: use letters, digits and "
                             "_ - . / : or spaces")
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, prefix=f"{name}."))
            continue
        if isinstance(value, list | tuple):
            text = ",".join(param_text(item) for item in value)
        elif isinstance(value, set | frozenset):
            text = ",".join(sorted(param_text(item) for item in value))
        else:
            text = param_text(value)
        flat[name] = text[:MAX_PARAM_LENGTH]
    return flat


def param_text(value: Any) -> str:
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def checked_tags(tags: Mapping[str, str]) -> dict[str, str]:
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"MLflow run tag {key!r}: keys and values must be strings, got {value!r} "
                            f"({type(value).__name__})")
        if len(value) > MAX_TAG_LENGTH:
            raise ValueError(f"MLflow run tag {key!r} is {len(value)} characters, over MLflow's {MAX_TAG_LENGTH}")
    return dict(tags)


def result_record(result: Any) -> dict:
    """The training result as JSON-ready data (a dataclass, or any object with attributes)."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    return dict(vars(result))


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI, None for other stores (and in-memory sqlite)."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    path = tracking_uri[len(prefix):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def artifact_location(target: TrackingTarget) -> str | None:
    if target.artifact_location:
        return target.artifact_location
    database = sqlite_path(target.tracking_uri)
    return (database.parent / "artifacts").resolve().as_uri() if database else None


@contextmanager
def store_lock(target: TrackingTarget) -> Iterator[None]:
    database = sqlite_path(target.tracking_uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    path = target.lock_path or (f"{database}.lock" if database else None)
    if path is None:  # a tracking server or file store: no schema to create
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path, timeout=LOCK_TIMEOUT_SECONDS):
        yield


def run_link(tracking_uri: str, run_id: str, experiment_id: str = "") -> str:
    """Where to look at a run: its page on an MLflow server, or how to open a local store with ``mlflow ui``."""
    if tracking_uri.startswith(("http://", "https://")):
        base = tracking_uri.rstrip("/")
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}" if experiment_id else f"{base} (run {run_id})"
    if sqlite_path(tracking_uri) or tracking_uri.startswith("file:") or "://" not in tracking_uri:
        return f"run {run_id}; browse it with: mlflow ui --backend-store-uri {shlex.quote(tracking_uri)}"
    return f"run {run_id} in {tracking_uri}"

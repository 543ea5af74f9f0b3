"""Training runs recorded in MLflow (a real sqlite store in tmp_path) and the loss-curve chart."""

import base64
import json
import multiprocessing
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow import MlflowClient

from tuneforge.layout import Layout
from tuneforge.modeling.loss_chart import loss_curve_markdown, loss_curve_png
from tuneforge.modeling.records import TrackingTarget
from tuneforge.tracking import (
    ERROR_TAG,
    MlflowTrainingReporter,
    TrackingError,
    flatten_params,
    run_link,
)

TAGS = {"dataset_version": "d41d8cd98f00b204e9800998ecf8427e.dir", "base_sha256": "ab" * 32,
        "config_hash": "c0ffee12", "experiment": "lora-r8"}
CONFIG = {"steps": 12, "learning_rate": 2e-4, "lora": {"r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]},
          "sources": ("aclsum-approach", "aclsum-outcome")}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def target(tmp_path, monkeypatch) -> TrackingTarget:
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # MLflow's default artifact root is ./mlruns: it must not be used
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    return TrackingTarget(uri, "tuneforge-training", "lora-test", tags=dict(TAGS))


def _adapter(tmp_path: Path) -> Path:
    adapter = tmp_path / "adapters" / "lora-c0ffee12"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 8}))
    (adapter / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    return adapter


def _result(adapter: Path, train_curve, validation_curve, **overrides) -> SimpleNamespace:
    fields = dict(
        adapter_dir=str(adapter), steps=train_curve[-1][0], train_loss_curve=train_curve,
        validation_curve=validation_curve, validation_loss_before=3.9, validation_loss=validation_curve[-1][1],
        trained_tokens=4096, tokens_per_second=512.5, seconds=8.0, precision="bf16", device="cpu", world_size=1,
        resumed_from_step=None, stopped_early=False, best_step=validation_curve[-1][0], peak_memory_mb=321.0,
        mlflow_run_id=None, instructions={"aclsum-approach": "Summarize the approach."}, config=CONFIG,
    )
    return SimpleNamespace(**{**fields, **overrides})


def _train(reporter: MlflowTrainingReporter, steps: range, clock: FakeClock | None = None) -> list[tuple[int, float]]:
    curve = []
    for step in steps:
        loss = 4.0 / step
        curve.append((step, loss))
        reporter.metrics(step, {"train/loss": loss, "train/learning_rate": 1e-4, "train/tokens_per_second": 500.0})
        if step % 4 == 0:
            reporter.metrics(step, {"validation/loss": loss + 0.5})
        if clock is not None:
            clock.now += 1.0
    return curve


def _history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((metric.step, metric.value) for metric in client.get_metric_history(run_id, key))


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    return {entry.path for entry in client.list_artifacts(run_id, path)}


def test_a_finished_run_holds_params_metrics_tags_artifacts_and_summary(target, tmp_path):
    reporter = MlflowTrainingReporter(target)
    reporter.log_params(CONFIG)
    reporter.log("step 1/12 loss 4.0")
    curve = _train(reporter, range(1, 13))
    validation = [(4, 1.5), (8, 1.0), (12, 4.0 / 12 + 0.5)]
    reporter.finish(_result(_adapter(tmp_path), curve, validation))

    client = MlflowClient(target.tracking_uri)
    run = client.get_run(reporter.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "lora-test"
    assert client.get_experiment(run.info.experiment_id).name == "tuneforge-training"
    assert run.data.params == {"steps": "12", "learning_rate": "0.0002", "lora.r": "8", "lora.alpha": "16",
                               "lora.target_modules": "q_proj,v_proj", "sources": "aclsum-approach,aclsum-outcome"}
    assert _history(client, reporter.run_id, "train/loss") == [(step, 4.0 / step) for step in range(1, 13)]
    assert [step for step, _ in _history(client, reporter.run_id, "validation/loss")] == [4, 8, 12]
    assert {key: run.data.tags[key] for key in TAGS} == TAGS
    assert run.data.tags["tuneforge.kind"] == "training" and run.data.tags["precision"] == "bf16"
    assert run.data.metrics["validation_loss"] == pytest.approx(4.0 / 12 + 0.5)
    assert run.data.metrics["tokens_per_second"] == 512.5 and run.data.metrics["trained_tokens"] == 4096
    assert run.data.metrics["peak_memory_mb"] == 321.0

    expected = {"adapter", "loss_curve.png", "training_manifest.json", "training.log"}
    assert expected <= _artifacts(client, run.info.run_id)
    assert _artifacts(client, run.info.run_id, "adapter") == {"adapter/adapter_config.json",
                                                               "adapter/adapter_model.safetensors"}
    downloaded = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "downloaded")))
    assert (downloaded / "loss_curve.png").read_bytes().startswith(PNG_SIGNATURE)
    assert json.loads((downloaded / "training_manifest.json").read_text())["trained_tokens"] == 4096
    assert "step 1/12 loss 4.0" in (downloaded / "training.log").read_text()
    # artifacts sit beside the sqlite store, not under the working directory's ./mlruns
    assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(tmp_path / "mlruns" / "artifacts")
    assert not (tmp_path / "elsewhere" / "mlruns").exists()


def test_metrics_are_buffered_and_sent_every_few_seconds(target):
    clock = FakeClock()
    reporter = MlflowTrainingReporter(target, flush_seconds=5.0, clock=clock)
    client = MlflowClient(target.tracking_uri)

    for step in (1, 2, 3):
        reporter.metrics(step, {"train/loss": 1.0 / step})
        clock.now += 1.0
    assert client.get_metric_history(reporter.run_id, "train/loss") == []

    clock.now += 2.0
    reporter.metrics(4, {"train/loss": 0.25})
    assert [step for step, _ in _history(client, reporter.run_id, "train/loss")] == [1, 2, 3, 4]


def test_a_failed_run_ends_failed_with_the_error_and_its_metrics(target):
    reporter = MlflowTrainingReporter(target)
    _train(reporter, range(1, 4))
    reporter.fail(RuntimeError("CUDA out of memory at step 3"))

    client = MlflowClient(target.tracking_uri)
    run = client.get_run(reporter.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags[ERROR_TAG] == "RuntimeError: CUDA out of memory at step 3"
    assert [step for step, _ in _history(client, reporter.run_id, "train/loss")] == [1, 2, 3]
    reporter.fail(RuntimeError("again"))  # a second call changes nothing
    assert client.get_run(reporter.run_id).data.tags[ERROR_TAG].endswith("at step 3")


def test_finish_without_the_adapter_fails_the_run_and_says_so(target, tmp_path):
    reporter = MlflowTrainingReporter(target)
    missing = tmp_path / "adapters" / "never-written"
    with pytest.raises(TrackingError, match="adapter directory .*never-written does not exist"):
        reporter.finish(_result(missing, [(1, 2.0)], [(1, 2.5)]))
    run = MlflowClient(target.tracking_uri).get_run(reporter.run_id)
    assert run.info.status == "FAILED" and "never-written" in run.data.tags[ERROR_TAG]


def test_resuming_continues_the_same_run_without_logging_replayed_steps_twice(target, tmp_path):
    first = MlflowTrainingReporter(target)
    first.log_params(CONFIG)
    first.log("first attempt")
    _train(first, range(1, 7))
    first.fail(RuntimeError("killed"))  # the checkpoint is at step 4; steps 5 and 6 are replayed

    resumed = MlflowTrainingReporter(target, run_id=first.run_id)
    assert resumed.run_id == first.run_id
    resumed.log_params({**CONFIG, "steps": 14})  # a changed value cannot overwrite the recorded one
    resumed.log("second attempt")
    curve = _train(resumed, range(5, 15))
    resumed.finish(_result(_adapter(tmp_path), curve, [(8, 1.0), (12, 0.8)], resumed_from_step=4))

    client = MlflowClient(target.tracking_uri)
    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    assert [step for step, _ in _history(client, first.run_id, "train/loss")] == list(range(1, 15))
    assert run.data.params["steps"] == "12"
    assert run.data.tags["tuneforge.params_changed_on_resume"] == "steps: 12 -> 14"
    assert run.data.tags["tuneforge.resumes"] == "1" and run.data.tags["resumed_from_step"] == "4"
    assert ERROR_TAG not in run.data.tags and run.data.tags["tuneforge.error_before_resume"] == "RuntimeError: killed"
    assert {key: run.data.tags[key] for key in TAGS} == TAGS
    log = Path(client.download_artifacts(first.run_id, "training.log", str(tmp_path / "log"))).read_text()
    assert log.index("first attempt") < log.index("killed") < log.index("second attempt")
    assert len(client.search_runs([run.info.experiment_id])) == 1


def test_resuming_an_unknown_run_is_a_clear_error(target):
    with pytest.raises(TrackingError, match="cannot resume MLflow run 0123abcd: there is no such run"):
        MlflowTrainingReporter(target, run_id="0123abcd")


def test_bad_tags_and_metrics_name_what_is_wrong(target):
    with pytest.raises(TypeError, match="tag 'world_size'.*must be strings"):
        MlflowTrainingReporter(TrackingTarget(target.tracking_uri, "x", "y", tags={"world_size": 2}))
    reporter = MlflowTrainingReporter(target)
    with pytest.raises(ValueError, match="metric 'train/loss' at step 3 must be a number, got 'nan-ish'"):
        reporter.metrics(3, {"train/loss": "nan-ish"})
    with pytest.raises(ValueError, match="parameter 'lora.bad,key'"):
        flatten_params({"lora": {"bad,key": 1}})


def _open_run(root: str, name: str, start, results) -> None:
    layout = Layout(Path(root))
    target = TrackingTarget.in_workspace(layout, f"sqlite:///{layout.mlflow_db}", "tuneforge", name, TAGS)
    start.wait()
    results.put(MlflowTrainingReporter(target).run_id)


@pytest.mark.slow
def test_two_processes_opening_a_fresh_workspace_store_at_once_both_get_runs(tmp_path):
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    racers = [context.Process(target=_open_run, args=(str(tmp_path), name, start, results)) for name in ("a", "b")]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=120)
    assert [racer.exitcode for racer in racers] == [0, 0]

    layout = Layout(tmp_path)
    client = MlflowClient(f"sqlite:///{layout.mlflow_db}")
    experiment = client.get_experiment_by_name("tuneforge")
    runs = client.search_runs([experiment.experiment_id])
    assert {run.info.run_id for run in runs} == {results.get(timeout=5), results.get(timeout=5)}
    assert {run.info.run_name for run in runs} == {"a", "b"}
    assert experiment.artifact_location == layout.mlflow_artifacts.as_uri()  # the registry's artifact directory
    assert (layout.models / ".registry.lock").exists()  # and its store lock


def test_run_link_points_at_a_server_page_or_explains_mlflow_ui():
    assert run_link("http://mlflow:5000/", "abc", "7") == "http://mlflow:5000/#/experiments/7/runs/abc"
    hint = run_link("sqlite:////work/mlruns/mlflow.db", "abc")
    assert "run abc" in hint and "mlflow ui --backend-store-uri sqlite:////work/mlruns/mlflow.db" in hint


def _png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE) and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def test_the_loss_curve_is_a_small_deterministic_png():
    train = [(step, 3.0 / step + 0.01 * (step % 3)) for step in range(1, 61)]
    validation = [(0, 3.5), (20, 0.9), (40, 0.6), (60, float("nan"))]
    png = loss_curve_png(train, validation)
    width, height = _png_size(png)
    assert (width, height) == (700, 300)
    assert 5_000 < len(png) < 150_000
    assert png == loss_curve_png(train, validation)
    assert b"matplotlib" not in png.lower()
    assert _png_size(loss_curve_png([], [])) == (700, 300)  # nothing recorded still draws a chart


def test_the_loss_curve_markdown_embeds_the_png_and_rejects_bad_points():
    train, validation = [(1, 2.0), (2, 1.5), (3, 1.2)], [(3, 1.4)]
    markdown = loss_curve_markdown(train, validation)
    data = markdown.split("(data:image/png;base64,", 1)[1].split(")", 1)[0]
    assert base64.b64decode(data) == loss_curve_png(train, validation)
    assert "best 1.4000 at step 3" in markdown
    with pytest.raises(ValueError, match=r"validation_curve\[1\] must be a \(step, loss\) pair"):
        loss_curve_png(train, [(1, 2.0), ("three",)])

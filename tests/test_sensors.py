"""The raw-data sensor (watch logic and Dagster sensor) and the run-failure alert, on real files in a temp dir."""

import json
import os
import time
from pathlib import Path

import dagster as dg
import pytest

from resources import Workspace
from stages.data.sensors import RawDataWatch, raw_data_sensor
from stages.definitions import defs
from stages.monitoring.alerts import AlertNotifier, run_failure_alert
from tuneforge.corpus.watch import WatchState, WatchStateError, diff, scan
from tuneforge.notify import Alert, CommandNotifier, LogFileNotifier, NotifyError

ROW = '{"document": "A long enough document about parsing.", "summary": "Parsing."}\n'
OLD = 3600  # seconds: well past the settle time


def write(path: Path, text: str = ROW, age: float = OLD) -> Path:
    """Write ``text`` to ``path`` and date it ``age`` seconds back (0: just written, still settling)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    age_file(path, age)
    return path


def age_file(path: Path, age: float) -> None:
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))


# --- watch logic, without Dagster -----------------------------------------------------------------------------


def look(raw: Path, state: WatchState, **kwargs):
    return diff(state, scan(raw, time.time(), kwargs.pop("settle_seconds", 60)), **kwargs)


def test_scan_watches_source_files_and_ignores_temporary_hidden_and_documentation(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "news" / "a.jsonl")
    write(raw / "news" / "nested" / "b.csv", "document,summary\nx,y\n")
    write(raw / "news" / "source.yaml", "format: jsonl\n")
    for ignored in (".hidden.jsonl", "c.jsonl.part", "d.tmp", "e.jsonl~", "README.md", "LICENSE"):
        write(raw / "news" / ignored)
    write(raw / "news" / ".git" / "objects.jsonl")
    write(raw / "news.dvc", "outs: []\n")  # DVC's file beside the directory
    write(raw / "only-temp" / "f.jsonl.part")  # no data file yet: not a source
    write(raw / "bad name" / "g.jsonl")

    snapshot = scan(raw, time.time())

    assert snapshot.files.keys() == {"news"}
    assert sorted(snapshot.files["news"]) == ["a.jsonl", "nested/b.csv", "source.yaml"]
    assert "bad name" in snapshot.invalid and "not allowed" in snapshot.invalid["bad name"]
    assert snapshot.unsettled == {}


def test_symlink_leading_outside_raw_is_not_watched(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "news" / "a.jsonl")
    outside = write(tmp_path / "elsewhere.jsonl")
    (raw / "news" / "link.jsonl").symlink_to(outside)
    (raw / "news" / "inside.jsonl").symlink_to(raw / "news" / "a.jsonl")

    assert sorted(scan(raw, time.time()).files["news"]) == ["a.jsonl", "inside.jsonl"]


def test_changes_added_modified_removed_and_touch(tmp_path):
    raw = tmp_path / "raw"
    a = write(raw / "news" / "a.jsonl")
    write(raw / "news" / "b.jsonl", ROW.replace("parsing", "lexing"))
    first = look(raw, WatchState())
    assert [(c.source, c.added, c.run_number) for c in first.changed] == [("news", ("a.jsonl", "b.jsonl"), 1)]

    age_file(a, OLD - 100)  # a touch: new mtime, same bytes
    touched = look(raw, first.state)
    assert touched.changed == []
    assert touched.state.files["news"]["a.jsonl"].mtime_ns == a.stat().st_mtime_ns  # recorded: not hashed again

    write(a, ROW + ROW)
    (raw / "news" / "b.jsonl").unlink()
    write(raw / "news" / "c.jsonl", ROW.replace("parsing", "typing"))
    edited = look(raw, touched.state)
    [change] = edited.changed
    assert (change.added, change.modified, change.removed, change.run_number) == (("c.jsonl",), ("a.jsonl",),
                                                                                   ("b.jsonl",), 2)
    assert change.digest != first.changed[0].digest
    assert change.describe() == "news: added c.jsonl; modified a.jsonl; removed b.jsonl"
    assert first.changed[0].describe(most=1) == "news: added a.jsonl and 1 more"


def test_going_back_to_earlier_content_gets_a_new_run_key(tmp_path):
    raw = tmp_path / "raw"
    a = write(raw / "news" / "a.jsonl")
    keys, state = [], WatchState()
    for text in (ROW, ROW + ROW, ROW):
        write(a, text)
        changes = look(raw, state)
        state = changes.state
        keys += [change.run_key for change in changes.changed]
    assert len(keys) == 3 and len(set(keys)) == 3
    assert keys[0].split(":")[2] == keys[2].split(":")[2]  # same content digest, later run number


def test_fresh_file_defers_its_whole_source_until_settled(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "news" / "a.jsonl")
    write(raw / "papers" / "a.jsonl")
    state = look(raw, WatchState()).state
    write(raw / "news" / "b.jsonl")  # settled addition...
    growing = write(raw / "news" / "c.jsonl", ROW, age=0)  # ...beside a file still being written
    write(raw / "papers" / "b.jsonl")

    waiting = look(raw, state)
    assert [change.source for change in waiting.changed] == ["papers"]
    assert "c.jsonl" in waiting.deferred["news"]
    assert waiting.state.files["news"] == state.files["news"]  # nothing of news recorded yet

    age_file(growing, 61)
    settled = look(raw, waiting.state)
    assert [(c.source, c.added) for c in settled.changed] == [("news", ("b.jsonl", "c.jsonl"))]
    assert settled.deferred == {}


def test_hash_budget_spreads_large_changes_over_looks(tmp_path):
    raw = tmp_path / "raw"
    for source in ("a", "b", "c"):
        write(raw / source / "data.jsonl", ROW * 10)
    size = len(ROW * 10)
    first = look(raw, WatchState(), max_hash_bytes=size + 1)
    assert [c.source for c in first.changed] == ["a"] and set(first.deferred) == {"b", "c"}
    second = look(raw, first.state, max_hash_bytes=size + 1)
    assert [c.source for c in second.changed] == ["b"]


def test_up_to_date_sources_are_recorded_without_a_change(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "news" / "a.jsonl")
    write(raw / "papers" / "a.jsonl")
    changes = look(raw, WatchState(), up_to_date={"news"})
    assert [c.source for c in changes.changed] == ["papers"]
    assert set(changes.state.files) == {"news", "papers"}


def test_state_round_trips_and_bad_cursor_is_named(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "news" / "a.jsonl")
    state = look(raw, WatchState()).state
    assert WatchState.from_json(state.to_json()) == state
    with pytest.raises(WatchStateError, match="Reset the sensor's cursor"):
        WatchState.from_json('{"version": 1, "files": {"news": {"a.jsonl": [1, 2]}}, "runs": {}}')


# --- raw_data_sensor ------------------------------------------------------------------------------------------


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def code_location(workspace: Workspace) -> dg.Definitions:
    """The project's code location (stages/definitions.py) with these sensors and their resources wired in."""
    mine = {raw_data_sensor.name, run_failure_alert.name}
    return dg.Definitions(
        assets=defs.assets, jobs=defs.jobs, schedules=defs.schedules,
        sensors=[*(sensor for sensor in defs.sensors or [] if sensor.name not in mine), raw_data_sensor,
                 run_failure_alert],
        resources={**defs.resources, "workspace": workspace, "raw_watch": RawDataWatch(),
                   "alert_notifier": AlertNotifier()},
    )


def test_sensors_load_in_the_code_location_and_start_running(tmp_path):
    repository = code_location(Workspace(root=str(tmp_path))).get_repository_def()
    repository.validate_loadable()
    assert {"raw_data_sensor", "run_failure_alert"} <= {sensor.name for sensor in repository.sensor_defs}
    for sensor in (raw_data_sensor, run_failure_alert):
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert raw_data_sensor.minimum_interval_seconds == 30


class Sensor:
    """Evaluates raw_data_sensor tick after tick the way the daemon does: it keeps the cursor and applies the
    partition requests."""

    def __init__(self, root: Path, instance: dg.DagsterInstance) -> None:
        self.instance, self.cursor = instance, None
        self.resources = {"workspace": Workspace(root=str(root)), "raw_watch": RawDataWatch(settle_seconds=60)}
        self.definitions = code_location(self.resources["workspace"])

    def tick(self):
        # instance_ref: run requests for partitions are checked against the instance's partitions, as in the daemon
        with dg.build_sensor_context(instance=self.instance, instance_ref=self.instance.get_ref(),
                                     cursor=self.cursor, resources=self.resources,
                                     definitions=self.definitions) as context:
            data = raw_data_sensor.evaluate_tick(context)
        for request in data.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        self.cursor = data.cursor
        return data

    @property
    def partitions(self) -> list[str]:
        return sorted(self.instance.get_dynamic_partitions("sources"))


def requested(data) -> list[str]:
    """The source partitions a tick asks ``ingest_source`` (the sensor's only job) to run."""
    return sorted(request.partition_key for request in data.run_requests or [])


def test_new_source_is_registered_and_ingested(tmp_path, instance):
    raw = tmp_path / "data" / "raw"
    write(raw / "news" / "a.jsonl")
    sensor = Sensor(tmp_path, instance)

    data = sensor.tick()

    assert [list(r.partition_keys) for r in data.dynamic_partitions_requests] == [["news"]]
    assert requested(data) == ["news"]
    assert raw_data_sensor.job_name == "ingest_source"
    [request] = data.run_requests
    assert request.run_key.startswith("news:1:") and request.tags["dagster/partition"] == "news"
    assert sensor.partitions == ["news"]


def test_new_file_runs_only_its_source_and_unchanged_files_never_rerun(tmp_path, instance):
    raw = tmp_path / "data" / "raw"
    write(raw / "news" / "a.jsonl")
    write(raw / "papers" / "a.jsonl")
    sensor = Sensor(tmp_path, instance)
    assert requested(sensor.tick()) == ["news", "papers"]

    write(raw / "papers" / "b.jsonl", ROW.replace("parsing", "typing"))
    data = sensor.tick()
    assert requested(data) == ["papers"]
    assert not data.dynamic_partitions_requests

    quiet = sensor.tick()
    assert requested(quiet) == [] and quiet.skip_message == "No new or changed raw data"
    age_file(raw / "news" / "a.jsonl", OLD - 10)  # touch without a content change
    assert requested(sensor.tick()) == []


def test_half_written_file_waits_then_is_ingested(tmp_path, instance):
    raw = tmp_path / "data" / "raw"
    growing = write(raw / "news" / "a.jsonl", ROW, age=0)
    write(raw / "news" / "upload.jsonl.part")  # temporary names are never picked up
    sensor = Sensor(tmp_path, instance)

    waiting = sensor.tick()
    assert requested(waiting) == [] and sensor.partitions == []
    assert "waiting for: news" in waiting.skip_message

    age_file(growing, 61)
    assert requested(sensor.tick()) == ["news"]
    assert sensor.partitions == ["news"]


def test_first_look_skips_sources_already_ingested(tmp_path, instance):
    raw = tmp_path / "data" / "raw"
    write(raw / "news" / "a.jsonl")
    write(raw / "papers" / "a.jsonl")
    instance.add_dynamic_partitions("sources", ["news", "papers"])
    instance.report_runless_asset_event(dg.AssetMaterialization("cleaned_corpus", partition="news"))
    sensor = Sensor(tmp_path, instance)

    assert requested(sensor.tick()) == ["papers"]
    write(raw / "news" / "a.jsonl", ROW + ROW)
    assert requested(sensor.tick()) == ["news"]


def test_sources_ingested_while_settling_are_not_ingested_again(tmp_path, instance):
    """`make demo` ingests fresh files, then the daemon starts: the first look defers them (too new), and once they
    settle they are recorded as ingested, not re-ingested. A file changed after the ingestion still runs."""
    raw = tmp_path / "data" / "raw"
    write(raw / "news" / "a.jsonl", age=0)
    write(raw / "papers" / "a.jsonl", age=0)
    instance.add_dynamic_partitions("sources", ["news", "papers"])
    time.sleep(0.05)
    instance.report_runless_asset_event(dg.AssetMaterialization("cleaned_corpus", partition="news"))
    instance.report_runless_asset_event(dg.AssetMaterialization("cleaned_corpus", partition="papers"))
    time.sleep(0.05)
    write(raw / "papers" / "b.jsonl", ROW.replace("parsing", "typing"), age=0)  # added after the ingestion
    sensor = Sensor(tmp_path, instance)
    sensor.resources["raw_watch"] = RawDataWatch(settle_seconds=1)
    assert requested(sensor.tick()) == []  # everything is still settling

    time.sleep(1.1)
    assert requested(sensor.tick()) == ["papers"]


# --- run_failure_alert ----------------------------------------------------------------------------------------


@dg.op
def load_rows() -> int:
    return 3


@dg.op
def explode(rows: int) -> None:
    raise ValueError(f"bad shard after {rows} rows")


@dg.job
def failing_job():
    explode(load_rows())


def alert_context(instance: dg.DagsterInstance, root: Path, notifier: AlertNotifier):
    result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert", dagster_event=result.get_run_failure_event(), dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"workspace": Workspace(root=str(root)), "alert_notifier": notifier},
    )
    return context.for_run_failure(), result.run_id


def test_failed_run_writes_an_alert_line(tmp_path, instance):
    context, run_id = alert_context(instance, tmp_path, AlertNotifier())

    run_failure_alert(context)
    run_failure_alert(context)  # appended, not overwritten

    lines = (tmp_path / "logs" / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    alert = json.loads(lines[0])
    assert alert["run_id"] == run_id and alert["job"] == "failing_job"
    assert alert["failed_steps"] == ["explode"]
    assert alert["step_errors"] == {"explode": "ValueError: bad shard after 3 rows"}
    assert "bad shard after 3 rows" in alert["error"] and "Dagster" not in alert["error"]
    assert alert["time"].endswith("+00:00")


def test_alert_command_gets_the_json_and_a_failing_command_falls_back_to_the_log(tmp_path, instance):
    received = tmp_path / "received.json"
    context, run_id = alert_context(instance, tmp_path, AlertNotifier(kind="command", command=f"cat > '{received}'"))
    run_failure_alert(context)
    assert json.loads(received.read_text(encoding="utf-8"))["run_id"] == run_id
    assert not (tmp_path / "logs" / "alerts.jsonl").exists()

    context, run_id = alert_context(instance, tmp_path, AlertNotifier(kind="command", command="echo down >&2; exit 3"))
    with pytest.raises(NotifyError, match="exited with status 3.*down.*written to"):
        run_failure_alert(context)
    [line] = (tmp_path / "logs" / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["run_id"] == run_id


def test_notifiers_report_bad_settings_and_delivery_errors(tmp_path):
    alert = Alert(run_id="r1", job="ingest_source", error="boom", failed_steps=["raw_corpus"], partition="news")
    assert alert.summary == "Run r1 of ingest_source [news] failed (failed steps: raw_corpus): boom"
    with pytest.raises(ValueError, match="needs a command"):
        CommandNotifier("  ")
    started = time.monotonic()
    with pytest.raises(NotifyError, match="did not finish within 0.2 s"):
        CommandNotifier("sleep 30 | cat", timeout_seconds=0.2).send(alert)
    assert time.monotonic() - started < 10  # the whole pipeline was killed, not only the shell
    (tmp_path / "logs").write_text("a file where the directory should be")
    with pytest.raises(NotifyError, match="Cannot append the alert for run r1"):
        LogFileNotifier(tmp_path / "logs" / "alerts.jsonl").send(alert)
    with pytest.raises(ValueError, match="kind is 'command' but 'command' is empty"):
        AlertNotifier(kind="command").notifier(tmp_path)

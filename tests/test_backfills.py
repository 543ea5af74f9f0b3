"""Backfills launched from the command line and executed by a real `dagster-daemon`: re-cleaning some sources, and a
sweep of named experiments (`tuneforge sweep`) compared with `tuneforge experiments --json`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml
from conftest import enter_workspace, workspace_env
from daemon_support import (
    DAGSTER,
    Daemon,
    backfill_id,
    dagster_daemon,
    failed_steps,
    run_errors,
    wait_for_backfill_runs,
)

from pipelines.demo import QUIET, register_sources
from stages.definitions import defs
from tuneforge.corpus.aclsum import place_aclsum
from tuneforge.layout import Layout
from tuneforge.profiles import load_profile

pytestmark = [pytest.mark.daemon, pytest.mark.slow, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[1]
WORKSPACE_FILE = REPO / "workspace.yaml"
TUNEFORGE = Path(sys.executable).with_name("tuneforge")
# Not "baseline": registering that partition lets new_data_retrain_sensor start its own train_experiment[baseline]
# run beside the sweep's.
SWEEP = {
    "control": {"description": "The profile's settings."},
    "rank4": {"description": "A smaller adapter.", "training": {"lora_rank": 4, "lora_alpha": 8}},
}


@dataclass
class DaemonWorkspace:
    root: Path
    sources: list[str]
    env: dict[str, str]
    daemon: Daemon


@pytest.fixture(scope="module")
def daemon_workspace(tmp_path_factory, smoke_base_models) -> Iterator[DaemonWorkspace]:
    """A smoke workspace with every source ingested and the curated dataset and base model materialized in-process,
    and a `dagster-daemon` serving its instance."""
    root = tmp_path_factory.mktemp("backfills") / "ws"
    with pytest.MonkeyPatch.context() as patch:
        enter_workspace(patch, root, workspace_env(root, smoke_base_models))
        layout = Layout(root)
        place_aclsum(layout.raw, limit=load_profile().embedded_rows_per_source)
        with dg.DagsterInstance.get() as instance:
            sources = register_sources(instance, layout)
            for source in sources:
                result = defs.resolve_job_def("ingest_source").execute_in_process(
                    instance=instance, partition_key=source, run_config=QUIET)
                assert result.success, f"ingesting {source} failed"
            job = dg.define_asset_job("prepare", selection=["curated_dataset", "base_model"])
            result = job.resolve(asset_graph=defs.resolve_asset_graph()).execute_in_process(
                instance=instance, resources=defs.resources, run_config=QUIET)
            assert result.success, "curated_dataset or base_model failed"
        env = dict(os.environ)
        with dagster_daemon(WORKSPACE_FILE, cwd=root, env=env, log_path=root.parent / "daemon.log") as daemon:
            yield DaemonWorkspace(root, sources, env, daemon)


def run_cli(command: list[str], workspace: DaemonWorkspace, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=workspace.root, env=workspace.env, capture_output=True, text=True,
                          timeout=timeout)


def materialized_runs(instance: dg.DagsterInstance, asset: str, partition: str, after: int) -> list[str]:
    """The run ids of `asset[partition]`'s materializations recorded after storage id `after`."""
    selection = dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition],
                                      after_storage_id=after)
    return [record.run_id for record in instance.fetch_materializations(selection, limit=10).records]


def describe_runs(instance: dg.DagsterInstance, run_ids: list[str]) -> str:
    """Each run's id, job and what launched it (backfill, sensor or schedule tags)."""
    origins = ("dagster/backfill", "dagster/sensor_name", "dagster/schedule_name", "tuneforge/trigger")
    described = []
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        tags = {key: run.tags[key] for key in origins if key in run.tags} if run else {}
        described.append(f"{run_id} ({run.job_name if run else '?'}, {tags or 'no launch tags'})")
    return ", ".join(described) or "no run"


def test_backfill_recleans_only_the_named_sources(daemon_workspace: DaemonWorkspace):
    workspace = daemon_workspace
    chosen = workspace.sources[:2]  # the third source must be left alone
    with workspace.daemon.explain_failures(), dg.DagsterInstance.get() as instance:
        before = instance.event_log_storage.get_maximum_record_id() or 0
        done = run_cli([str(DAGSTER), "job", "backfill", "-w", str(WORKSPACE_FILE), "-j", "ingest_source",
                        "--partitions", ",".join(chosen), "--noprompt"], workspace)
        assert done.returncode == 0, done.stderr[-3000:]
        backfill = backfill_id(done.stdout)

        runs = wait_for_backfill_runs(instance, backfill, expected=len(chosen), daemon=workspace.daemon)
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs), run_errors(instance, runs)
        assert sorted(run.tags["dagster/partition"] for run in runs) == sorted(chosen)
        run_of = {run.tags["dagster/partition"]: run.run_id for run in runs}
        for source in workspace.sources:
            expected = [run_of[source]] if source in chosen else []
            for asset in ("raw_corpus", "cleaned_corpus"):
                found = materialized_runs(instance, asset, source, before)
                assert found == expected, (
                    f"{asset}[{source}] was materialized by {describe_runs(instance, found)} during the backfill; "
                    f"expected only by the backfill's run {expected or '(none)'}")


def test_sweep_trains_each_experiment_and_lists_their_scores(daemon_workspace: DaemonWorkspace):
    """Each experiment of the sweep gets its adapter. The promotion gate then refuses any candidate that does not beat
    the champion of the moment (the experiment promoted first), which fails that run: that is the only failure
    allowed."""
    workspace = daemon_workspace
    (workspace.root / "experiments.yaml").write_text(yaml.safe_dump({"experiments": SWEEP}))
    with workspace.daemon.explain_failures(), dg.DagsterInstance.get() as instance:
        done = run_cli([str(TUNEFORGE), "sweep", *SWEEP], workspace)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert set(instance.get_dynamic_partitions("experiments")) == set(SWEEP)
        backfill = backfill_id(done.stdout)

        runs = wait_for_backfill_runs(instance, backfill, expected=len(SWEEP), daemon=workspace.daemon)
        assert {run.job_name for run in runs} == {"train_experiment"}
        assert sorted(run.tags["dagster/partition"] for run in runs) == sorted(SWEEP)
        for run in runs:
            failed = failed_steps(instance, run)
            assert set(failed) <= {"evaluation_report"}, run_errors(instance, [run])
            assert all("promotion_gate" in error for error in failed.values()), run_errors(instance, [run])
            assert (run.status == dg.DagsterRunStatus.SUCCESS) == (not failed), run_errors(instance, [run])
        assert any(run.status == dg.DagsterRunStatus.SUCCESS for run in runs), run_errors(instance, runs)

        listed = run_cli([str(TUNEFORGE), "experiments", "--json"], workspace, timeout=120)
        assert listed.returncode == 0, listed.stderr[-3000:]
        rows = {row["experiment"]: row for row in json.loads(listed.stdout)}
        assert set(rows) == set(SWEEP)
        run_of = {run.tags["dagster/partition"]: run.run_id for run in runs}
        for name, row in rows.items():
            assert row["registered"], name
            assert isinstance(row["validation_loss"], float), row
            assert row["trained_config_hash"] == row["config_hash"], row
            assert Path(row["adapter"], "adapter_model.safetensors").exists(), row
            assert materialized_runs(instance, "lora_adapter", name, after=0) == [run_of[name]], name
        control, rank4 = rows["control"], rows["rank4"]
        assert control["config_hash"] != rank4["config_hash"] and control["adapter"] != rank4["adapter"]
        assert json.loads(Path(rank4["adapter"], "adapter_config.json").read_text())["r"] == 4


def test_sweep_of_an_unknown_experiment_names_it_and_the_known_ones(daemon_workspace: DaemonWorkspace):
    (daemon_workspace.root / "experiments.yaml").write_text(yaml.safe_dump({"experiments": SWEEP}))
    done = run_cli([str(TUNEFORGE), "sweep", "nosuch"], daemon_workspace, timeout=120)
    assert done.returncode != 0
    message = done.stderr + done.stdout
    assert "nosuch" in message, message
    assert all(name in message for name in SWEEP), message
    assert "Launched backfill" not in message

"""``tuneforge experiments`` (the named experiments, their config hashes and how each one's latest adapter scored)
and ``tuneforge sweep`` (a backfill of the ``train_experiment`` job over experiment partitions, run by the daemon).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

from pipelines.instance import CliError, open_instance
from resources.workspace import resolve_root
from stages.model.assets import experiments as experiment_partitions
from stages.model.assets import lora_adapter
from stages.model.jobs import train_experiment_job
from tuneforge.experiments import ExperimentsError, config_hash, load_experiments, validate_experiments
from tuneforge.layout import Layout
from tuneforge.modeling.preflight import TrainingConfigError
from tuneforge.project import load_project

WORKSPACE_FILE = Path(__file__).resolve().parents[1] / "workspace.yaml"


def sync_experiments(instance: dg.DagsterInstance, layout: Layout) -> list[str]:
    """Validate ``experiments.yaml`` and register each experiment as a partition; returns the names added."""
    try:
        experiments = load_experiments(layout.experiments_file)
        validate_experiments(experiments, load_project(layout.root).profile.training)
    except (ExperimentsError, TrainingConfigError) as error:
        raise CliError(str(error)) from None
    known = set(instance.get_dynamic_partitions(experiment_partitions.name))
    added = [name for name in experiments if name not in known]
    if added:
        instance.add_dynamic_partitions(experiment_partitions.name, added)
    return added


def experiment_table(instance: dg.DagsterInstance, layout: Layout) -> list[dict]:
    """Each experiment with its config hash and its latest adapter's validation loss, best first."""
    profile = load_project(layout.root).profile
    registered = set(instance.get_dynamic_partitions(experiment_partitions.name))
    rows = []
    for name, experiment in load_experiments(layout.experiments_file).items():
        latest = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=lora_adapter.key, asset_partitions=[name]), limit=1
        ).records
        metadata = latest[0].asset_materialization.metadata if latest else {}
        loss = metadata.get("validation_loss")
        rows.append({
            "experiment": name,
            "description": experiment.description,
            "config_hash": config_hash(experiment.config(profile.training)),
            "registered": name in registered,
            "validation_loss": loss.value if loss is not None else None,
            "adapter": metadata["adapter_dir"].value if "adapter_dir" in metadata else None,
            "trained_config_hash": metadata["config_hash"].value if "config_hash" in metadata else None,
        })
    rows.sort(key=lambda row: (row["validation_loss"] is None, row["validation_loss"] or math.inf))
    return rows


def _experiments(args: argparse.Namespace) -> int:
    layout = Layout(resolve_root())
    instance = open_instance(layout.root)
    if args.action == "sync":
        added = sync_experiments(instance, layout)
        print(f"registered {', '.join(added)}" if added else "every experiment is already registered")
        return 0
    rows = experiment_table(instance, layout)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        loss = f"{row['validation_loss']:.4f}" if row["validation_loss"] is not None else "not trained"
        note = "" if row["registered"] else "  (not registered: run `tuneforge experiments sync`)"
        print(f"{row['experiment']:<16} config {row['config_hash']}  validation loss {loss:<12} "
              f"{row['description']}{note}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    layout = Layout(resolve_root())
    instance = open_instance(layout.root)
    sync_experiments(instance, layout)
    known = load_experiments(layout.experiments_file)
    names = args.names or list(known)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise CliError(f"unknown experiment(s) {', '.join(unknown)}; {layout.experiments_file} has {', '.join(known)}")
    command = [_dagster(), "job", "backfill", "-w", str(WORKSPACE_FILE), "-j", train_experiment_job.name,
               "--partitions", ",".join(names), "--noprompt"]
    print("$ " + " ".join(command), flush=True)
    done = subprocess.run(command, cwd=layout.root)
    if done.returncode == 0:
        print(f"queued {len(names)} run(s) of {train_experiment_job.name}; the Dagster daemon (`make ui`) executes "
              "them. Compare the adapters with `tuneforge experiments`.")
    return done.returncode


def _dagster() -> str:
    beside = Path(sys.executable).with_name("dagster")
    return str(beside) if beside.exists() else (shutil.which("dagster") or "dagster")


def add_experiment_commands(commands: argparse._SubParsersAction) -> None:
    experiments = commands.add_parser("experiments", help="list the named experiments (experiments.yaml) and scores")
    experiments.add_argument("action", nargs="?", choices=["list", "sync"], default="list",
                             help="list (default), or sync: register every experiment as a Dagster partition")
    experiments.add_argument("--json", action="store_true")
    experiments.set_defaults(handler=_experiments)
    sweep = commands.add_parser("sweep", help="backfill train_experiment over experiments (all when none named)")
    sweep.add_argument("names", nargs="*", metavar="EXPERIMENT")
    sweep.set_defaults(handler=_sweep)

"""``tuneforge status`` (which model is champion, how it scores, where it came from) and ``tuneforge rollback``
(the previous champion back in the registry and behind ``models/champion``, recorded in the audit log)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from resources.registry import ModelRegistry
from tuneforge.evaluation.metrics import METRICS
from tuneforge.evaluation.summary import ScoreTable
from tuneforge.registry import ChampionRegistry, RegisteredModel

HISTORY_SHOWN = 5


def describe(champions: ChampionRegistry, model: RegisteredModel | None) -> dict | None:
    if model is None:
        return None
    figures = ScoreTable.parse(champions.run_metrics(model)).figures.get("candidate", {})  # as it was promoted
    metrics = {metric: dict(zip(("mean", "low", "high"), figures[metric], strict=True))
               for metric in METRICS if metric in figures}
    return {
        "version": model.version,
        "promoted_at": model.tags.get("promoted_at"),
        "metrics": metrics,
        "base_model": model.tags.get("base_model"),
        "base_sha256": model.tags.get("base_sha256"),
        "dataset_version": model.tags.get("dataset_version"),
        "adapter_dir": model.adapter_dir,
        "export_dir": model.export_dir,
        "report": model.tags.get("report"),
        "mlflow_run_id": model.run_id,
        "dagster_run_id": model.tags.get("run_id"),
    }


def status(registry: ModelRegistry) -> dict:
    champions = registry.open()
    link = champions.layout.champion_export
    return {
        "registered_model": registry.model_name,
        "tracking_uri": registry.tracking(),
        "champion": describe(champions, champions.champion()),
        "previous": describe(champions, champions.previous()),
        "champion_export": str(link.resolve()) if link.is_symlink() else None,
        "history": [asdict(entry) for entry in champions.history()[-HISTORY_SHOWN:]],
    }


def print_status(state: dict) -> None:
    champion = state["champion"]
    if champion is None:
        print(f"No champion yet for {state['registered_model']} (run `make demo` or materialize promoted_model).")
        return
    print(f"Champion: {state['registered_model']} version {champion['version']}, promoted {champion['promoted_at']}")
    for metric, figure in champion["metrics"].items():
        interval = f" [{figure['low']:.2f}, {figure['high']:.2f}]" if figure["low"] is not None else ""
        print(f"  {metric:10s} {figure['mean']:6.2f}{interval}")
    print(f"  base model       {champion['base_model']} (sha256 {champion['base_sha256']})")
    print(f"  dataset version  {champion['dataset_version']}")
    print(f"  adapter          {champion['adapter_dir']}")
    print(f"  merged export    {state['champion_export']}")
    print(f"  report           {champion['report']}")
    previous = state["previous"]
    print(f"Previous: version {previous['version']}" if previous else "Previous: none (the first champion)")
    if state["history"]:
        print("Recent promotions:")
        for entry in state["history"]:
            print(f"  {entry['at']}  {entry['event']:8s} version {entry['version']} "
                  f"(replaced {entry['replaced'] or 'nothing'}) by {entry['by']}")


def status_command(args: argparse.Namespace) -> int:
    state = status(ModelRegistry())
    if args.json:
        print(json.dumps(state, indent=2))
    else:
        print_status(state)
    return 0


def rollback_command(args: argparse.Namespace) -> int:
    champions = ModelRegistry().open()
    former, restored = champions.rollback(args.to)
    print(f"Rolled back: version {restored} is champion again (was version {former}).")
    print(f"  {champions.layout.champion_export} -> {champions.champion().export_dir}")
    return 0


def add_model_commands(commands: argparse._SubParsersAction) -> None:
    status_parser = commands.add_parser("status", help="the champion: metrics, lineage, recent promotions")
    status_parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    status_parser.set_defaults(handler=status_command)

    rollback = commands.add_parser("rollback", help="make the previous champion (or --to VERSION) champion again")
    rollback.add_argument("--to", metavar="VERSION", help="a registered version (default: the 'previous' alias)")
    rollback.set_defaults(handler=rollback_command)

"""``tuneforge erase``: find a person's records everywhere they went (dry run), then erase them (``--apply``):
tombstones, raw files, logs, registry versions, MLflow artifacts, adapters and exports, a retrained and gated
model, and the DVC cache and remote; ``--status`` lists requests from the audit log. Records in the objects of a
source on object storage are tombstoned and listed as outstanding at the source: tuneforge never rewrites them."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import asdict

from pipelines.instance import CliError, open_instance
from resources.registry import ModelRegistry
from resources.workspace import resolve_root
from tuneforge.experiments import DEFAULT_EXPERIMENT
from tuneforge.governance import audit
from tuneforge.governance.apply import Erasure
from tuneforge.governance.matching import SelectorError
from tuneforge.governance.plan import (
    HELD_AT_SOURCE,
    STEPS,
    ErasureError,
    ErasurePlan,
    all_plans,
    build_plan,
    selector_sha256,
    unfinished,
)
from tuneforge.layout import Layout


def erase_command(args: argparse.Namespace) -> int:
    layout = Layout(resolve_root())
    if args.status:
        return _status(layout)
    registry = ModelRegistry().open()
    try:
        if args.resume:
            return _resume(layout, registry, args)
        pending = next((plan for plan in unfinished(layout)
                        if plan.selector_sha256 == selector_sha256(plan.salt, args.id, args.value)), None)
        if pending is not None and args.apply:
            print(f"Resuming erasure request {pending.request} (steps done: {', '.join(pending.steps_done) or 'none'})")
            plan, needles = build_plan(layout, registry, args.id, args.value, pending.request, pending.salt)
            plan.created, plan.by, plan.state = pending.created, pending.by, pending.state
        else:
            plan, needles = build_plan(layout, registry, args.id, args.value)
    except (SelectorError, ErasureError, ValueError) as error:
        raise CliError(str(error)) from None
    if args.json:
        print(json.dumps(asdict(plan), indent=2, sort_keys=True))
    else:
        _print_plan(plan, layout, args)
    if not args.apply:
        audit.append(layout.erasure_log, plan.request, "dry-run", {"targets": plan.counts()})
        return 0
    if plan.empty:
        print("Nothing matched: nothing to erase.")
        return 0
    return _apply(Erasure(plan, layout, registry, needles, _retrainer(layout, args.experiment)))


def _resume(layout: Layout, registry, args: argparse.Namespace) -> int:
    path = layout.erasure_requests / f"{args.resume}.json"
    if not path.exists():
        known = ", ".join(plan.request for plan in unfinished(layout)) or "none"
        raise CliError(f"no erasure request {args.resume} in {layout.erasure_requests} (unfinished: {known})")
    plan = ErasurePlan.load(path)
    if plan.state == "done":
        print(f"Erasure request {plan.request} is already done.")
        return 0
    print(f"Resuming erasure request {plan.request} from its saved plan (the values are not kept, so the final check "
          "covers the planned targets; give the same --value/--id with --apply to search for them again)")
    return _apply(Erasure(plan, layout, registry, None, _retrainer(layout, args.experiment)))


def _apply(erasure: Erasure) -> int:
    try:
        plan = erasure.run()
    except ErasureError as error:
        raise CliError(str(error)) from None
    retrain = plan.outcome.get("retrain", {})
    outstanding = plan.outcome.get("verify", {}).get("outstanding_at_source", [])
    at_source = sum(len(entry["positions"]) for entry in outstanding)
    erased = plan.counts()["records"] - sum(1 for record in plan.records if record.get("url"))
    print(f"Erasure request {plan.request} done: {erased} record(s) erased from the workspace"
          + (f", {at_source} more tombstoned but outstanding at the source" if at_source else "") + "; "
          f"{plan.outcome.get('dvc', {}).get('objects_deleted', 0)} DVC object(s) purged; "
          f"{len(plan.versions)} registry version(s) demoted.")
    if outstanding:
        print(f"  OUTSTANDING AT THE SOURCE: {len(outstanding)} object(s) still hold the records ({HELD_AT_SOURCE}); "
              "they are tombstoned, so no ingestion reads them again, but only the bucket's owner can remove them:")
        for entry in outstanding:
            print(f"    {_at_source(entry)}")
    if retrain.get("retrained"):
        outcome = "promoted" if retrain.get("promoted") else "not promoted"
        print(f"  retrained without them: {outcome}; champion version {retrain.get('champion_version') or 'none'}")
        for reason in [] if retrain.get("promoted") else retrain.get("reasons", []):
            print(f"    {reason}")
    print(f"  audit log: {erasure.layout.erasure_log}")
    return 0


def _at_source(entry: dict) -> str:
    positions = ", ".join("whole object" if p is None else str(p) for p in entry["positions"])
    tombstoned = "tombstoned" if entry["tombstoned"] else "NOT tombstoned: it cannot be mapped to a record"
    return f"{entry['url']} (ETag {entry.get('etag') or 'unknown'}): record(s) at {positions}; {tombstoned}"


def _retrainer(layout: Layout, experiment: str):
    def retrain() -> dict:
        from pipelines.demo import run_all

        with open_instance(layout.root) as instance:
            try:
                return run_all(instance, layout, seed_embedded=False, experiment=experiment)
            except SystemExit as failed:
                raise ErasureError(f"retraining without the erased records failed: {failed}") from None
    return retrain


def _print_plan(plan: ErasurePlan, layout: Layout, args: argparse.Namespace) -> None:
    mode = "erasing" if args.apply else "dry run: nothing is changed; add --apply to erase"
    print(f"Erasure request {plan.request} ({mode})")
    why = Counter(record["why"] for record in plan.records)
    print(f"  raw records: {len(plan.records)}" + (f" ({', '.join(f'{n} by {k}' for k, n in why.items())})"
                                                    if why else ""))
    for record in plan.records[:50]:
        place = record.get("url") or f"data/raw/{record['source']}/{record['file']}"
        print(f"    {place}:{record['position']}" if record["position"] is not None else f"    {place}")
    if plan.held_at_source:
        print(f"  held at the source: {len(plan.held_at_source)} object(s) on object storage still hold records; "
              f"{HELD_AT_SOURCE} (tuneforge never writes to a source's bucket)")
        for entry in plan.held_at_source:
            print(f"    {_at_source(entry)}")
        print("    their records are tombstoned, so no ingestion reads them again; ask the bucket's owner to remove "
              "them from the objects")
    for entry in plan.log_lines:
        print(f"  log: {entry['file']}: {len(entry['line_sha256s'])} line(s)")
    for path in plan.datasets:
        print(f"  dataset file: {path} (rebuilt without them)")
    stores = Counter(entry["store"] for entry in plan.dvc_objects)
    print(f"  DVC objects: {len(plan.dvc_objects)} ({', '.join(f'{n} in {s}' for s, n in stores.items()) or 'none'});"
          f" dataset versions among them: {len(plan.dataset_versions)}")
    for entry in plan.versions:
        print(f"  registry version {entry['version']}: {entry['why']} (demoted, its export deleted)")
    for entry in plan.runs:
        print(f"  MLflow run {entry['run_id']} {entry['name']}: {entry['why']} (artifacts deleted)")
    for entry in plan.paths:
        print(f"  {entry['kind']}: {entry['path']} ({entry['why']}; deleted)")
    if plan.raw_files or plan.versions or plan.datasets:
        print(f"  then: the data rebuilt and experiment {args.experiment!r} retrained and gated without them")


def _status(layout: Layout) -> int:
    plans = all_plans(layout)
    events = audit.read(layout.erasure_log)
    if not plans:
        print(f"No erasure request has been applied ({len(events)} audit entries in {layout.erasure_log}).")
        return 0
    for plan in plans:
        counts = plan.counts()
        print(f"{plan.request}  {plan.state:8}  asked {plan.created} by {plan.by}: {counts['records']} record(s), "
              f"{counts['registry_versions']} version(s), {counts['dvc_objects']} DVC object(s)")
        if plan.state != "done":
            left = [step for step in STEPS if step not in plan.steps_done]
            print(f"    steps left: {', '.join(left)}; finish with the same `tuneforge erase ... --apply` or "
                  f"`tuneforge erase --resume {plan.request}`")
        else:
            if (retrain := plan.outcome.get("retrain", {})).get("retrained"):
                verified = {k: v for k, v in plan.outcome.get("verify", {}).items() if k != "outstanding_at_source"}
                print(f"    retrained: champion version {retrain.get('champion_version') or 'none'}; "
                      f"verified: {verified}")
            for entry in plan.outcome.get("verify", {}).get("outstanding_at_source", []):
                print(f"    outstanding at the source ({HELD_AT_SOURCE}): {_at_source(entry)}")
    return 0


def add_erase_commands(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("erase", help="erase a person's records everywhere they went (dry run first)")
    parser.add_argument("--id", action="append", default=[], metavar="RECORD_ID",
                        help="a record id, <source>/<id> or the bare id (repeatable)")
    parser.add_argument("--value", action="append", default=[], metavar="TEXT",
                        help="an e-mail address, name or phone number to search for (repeatable)")
    parser.add_argument("--apply", action="store_true", help="erase (without it: list what would be erased)")
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT,
                        help=f"the experiment retrained without the records (default: {DEFAULT_EXPERIMENT})")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument("--status", action="store_true", help="list erasure requests and their state")
    parser.add_argument("--resume", metavar="REQUEST", help="finish an interrupted request from its saved plan")
    parser.set_defaults(handler=erase_command)

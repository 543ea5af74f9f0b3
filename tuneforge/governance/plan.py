"""An erasure request's plan: everything that holds, or was trained on, the records it names.

The plan is what a dry run prints and what ``--apply`` carries out step by step. It is saved as JSON (hashes, ids,
paths and counts; never the values searched for) after each step, so a killed erasure resumes where it stopped.

Records found in the objects of a source on object storage are tombstoned like any (the next ingestion drops them)
but their objects are not rewritten: tuneforge does not write to a source's bucket. The plan lists each such object
(URL, ETag, positions) under ``held_at_source``, and the proof reports them as outstanding at the source.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tuneforge.atomic import write_text_atomically
from tuneforge.governance import audit
from tuneforge.governance.dvc_store import objects_holding
from tuneforge.governance.matching import Needles, check_value
from tuneforge.governance.mlflow_store import runs_holding
from tuneforge.governance.raw_files import SourceUnreachable, find_records, record_lines
from tuneforge.governance.stored import files_under, holding
from tuneforge.governance.tombstones import tombstone_for
from tuneforge.hashing import file_digest
from tuneforge.layout import Layout
from tuneforge.modeling.records import load_training_inputs, load_training_result
from tuneforge.registry import ERASED_TAG, ChampionRegistry

HELD_AT_SOURCE = "held by the source's owner: not rewritten"
STEPS = ("tombstones", "raw", "logs", "registry", "mlflow", "files", "retrain", "dvc", "verify")


class ErasureError(RuntimeError):
    pass


@dataclass
class ErasurePlan:
    request: str
    created: str
    by: str
    selector_sha256: str  # of the salted selectors: a rerun with the same ones resumes this request
    salt: str
    selectors: dict[str, int]  # how many ids and values were given
    records: list[dict[str, Any]] = field(default_factory=list)  # source, file, position, why, tombstone hashes
    raw_files: list[dict[str, Any]] = field(default_factory=list)  # source, file, positions, sha256 before
    # Objects of a source on object storage holding records: source, file, url, etag, positions, tombstoned, note.
    # Tombstoned, never rewritten (the bucket is the source owner's); the proof lists them as outstanding there.
    held_at_source: list[dict[str, Any]] = field(default_factory=list)
    log_lines: list[dict[str, Any]] = field(default_factory=list)  # file, line_sha256s
    datasets: list[str] = field(default_factory=list)  # workspace data files holding the records (rebuilt)
    dvc_objects: list[dict[str, str]] = field(default_factory=list)  # store, oid
    runs: list[dict[str, str]] = field(default_factory=list)  # run_id, name, why
    versions: list[dict[str, str]] = field(default_factory=list)  # version, why
    paths: list[dict[str, str]] = field(default_factory=list)  # path (relative), kind, why
    steps_done: list[str] = field(default_factory=list)
    state: str = "planned"  # planned, applying, done
    outcome: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.records or self.raw_files or self.log_lines or self.dvc_objects or self.runs
                    or self.versions or self.paths or self.datasets)

    def counts(self) -> dict[str, int]:
        return {"records": len(self.records), "raw_files": len(self.raw_files),
                "source_objects": len(self.held_at_source),
                "log_files": len(self.log_lines), "log_lines": sum(len(e["line_sha256s"]) for e in self.log_lines),
                "datasets": len(self.datasets), "dvc_objects": len(self.dvc_objects),
                "dataset_versions": len(self.dataset_versions), "mlflow_runs": len(self.runs),
                "registry_versions": len(self.versions), "paths": len(self.paths)}

    @property
    def dataset_versions(self) -> list[str]:
        return sorted({o["oid"] for o in self.dvc_objects if o["oid"].endswith(".dir")})

    def save(self, layout: Layout) -> Path:
        path = layout.erasure_requests / f"{self.request}.json"
        return write_text_atomically(path, json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> ErasurePlan:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def selector_sha256(salt: str, ids: list[str], values: list[str]) -> str:
    canonical = json.dumps({"ids": sorted(set(ids)), "values": sorted({" ".join(v.casefold().split())
                                                                      for v in values})})
    return hashlib.sha256(f"{salt}\x1f{canonical}".encode()).hexdigest()


def unfinished(layout: Layout) -> list[ErasurePlan]:
    if not layout.erasure_requests.is_dir():
        return []
    plans = [ErasurePlan.load(path) for path in sorted(layout.erasure_requests.glob("*.json"))]
    return [plan for plan in plans if plan.state != "done"]


def all_plans(layout: Layout) -> list[ErasurePlan]:
    if not layout.erasure_requests.is_dir():
        return []
    return [ErasurePlan.load(path) for path in sorted(layout.erasure_requests.glob("*.json"))]


def new_request_id() -> str:
    return f"er-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def build_plan(layout: Layout, registry: ChampionRegistry | None, ids: list[str], values: list[str],
               request: str | None = None, salt: str | None = None) -> tuple[ErasurePlan, Needles]:
    """Find everything the selectors reach; returns the plan and the needles (kept in memory only)."""
    values = [check_value(value) for value in values]
    ids = [i.strip() for i in ids if i.strip()]
    if not ids and not values:
        raise ErasureError("name what to erase: --id RECORD_ID or --value TEXT (an e-mail address, a name, a number)")
    salt = salt or secrets.token_hex(16)
    plan = ErasurePlan(request=request or new_request_id(), created=audit.now(), by=audit.user(),
                       selector_sha256=selector_sha256(salt, ids, values), salt=salt,
                       selectors={"ids": len(ids), "values": len(values)})
    needles = Needles(values=values, ids={i for i in ids if "/" in i})
    try:
        _raw_records(layout, plan, needles, set(ids), values)
    except SourceUnreachable as error:
        raise ErasureError(f"{error}. The search for the records is not complete, so no plan was made and nothing "
                           "was changed; make the location reachable (or remove the source) and run the request "
                           "again.") from None
    root = layout.root
    plan.datasets = [_relative(root, path) for directory in (layout.ingested, layout.cleaned, layout.curated)
                     for path, _ in holding(files_under(directory), needles)]
    for directory in (layout.request_logs, layout.feedback_logs):
        for path, _ in holding(files_under(directory), needles):
            lines = [line for line in path.read_text(encoding="utf-8").splitlines() if needles.found_in(line)]
            plan.log_lines.append({"file": _relative(root, path),
                                   "line_sha256s": sorted({_line_digest(line) for line in lines})})
    plan.dvc_objects = [{"store": o.store, "oid": o.oid} for o in objects_holding(root, needles)]
    objects = {o["oid"] for o in plan.dvc_objects}
    adapters = _affected_adapters(layout, registry, objects)
    if registry is not None:
        _registry_targets(layout, registry, plan, needles, objects, adapters)
    for key, why in sorted(adapters.items()):
        for directory, kind in ((layout.adapters / key, "adapter"), (layout.exports / key, "export"),
                                (layout.checkpoints / key, "checkpoint")):
            _add_path(plan, root, directory, kind, why)
    for directory in (layout.reports, layout.restored):
        for child in sorted(directory.iterdir()) if directory.is_dir() else []:
            if next(holding(files_under(child), needles), None):
                _add_path(plan, root, child, "report" if directory == layout.reports else "restored copy",
                          "holds erased data")
    return plan, needles


def _raw_records(layout: Layout, plan: ErasurePlan, needles: Needles, ids: set[str], values: list[str]) -> None:
    files: dict[tuple[str, str], set] = {}
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for match in find_records(layout.raw, ids, values):
        record: dict[str, Any] = {"source": match.source, "file": match.file, "position": match.position,
                                  "why": match.why}
        if match.example is not None:
            needles.ids.add(match.example.id)
            tombstone = tombstone_for(match.example, plan.request)
            record.update(id_sha256=tombstone.id_sha256, content_sha256=tombstone.content_sha256)
        if match.at_source:
            record.update(url=match.url, etag=match.etag)
            held = objects.setdefault((match.source, match.file), {
                "source": match.source, "file": match.file, "url": match.url, "etag": match.etag, "positions": [],
                "tombstoned": True, "note": HELD_AT_SOURCE})
            held["positions"].append(match.position)
            # A record that could not be mapped (it would be quarantined) has no tombstone to stop it.
            held["tombstoned"] = held["tombstoned"] and match.example is not None
        else:
            files.setdefault((match.source, match.file), set()).add(match.position)
        plan.records.append(record)
    for key in sorted(objects):
        held = objects[key]
        held["positions"] = sorted(set(held["positions"]), key=lambda p: -1 if p is None else p)
        plan.held_at_source.append(held)
    for (source, name), positions in sorted(files.items()):
        path = layout.raw / source / name
        needles.lines |= record_lines(path, positions)
        plan.raw_files.append({"source": source, "file": name, "sha256": file_digest(path),
                               "positions": sorted(positions, key=lambda p: -1 if p is None else p)})


def _affected_adapters(layout: Layout, registry: ChampionRegistry | None, objects: set[str]) -> dict[str, str]:
    """Adapter key -> why, for adapters trained on a data file that held the records."""
    affected = {}
    for directory in sorted(layout.adapters.iterdir()) if layout.adapters.is_dir() else []:
        inputs = load_training_inputs(directory)
        if inputs is not None:
            if {inputs.get("train"), inputs.get("validation")} & objects:
                affected[directory.name] = "trained on a data file that held the records"
        elif registry is not None and (result := load_training_result(directory)) and result.mlflow_run_id:
            version = registry.client.get_run(result.mlflow_run_id).data.tags.get("dataset_version")
            if version in objects:
                affected[directory.name] = f"trained on dataset version {version}"
    return affected


def _registry_targets(layout: Layout, registry: ChampionRegistry, plan: ErasurePlan, needles: Needles,
                      objects: set[str], adapters: dict[str, str]) -> None:
    run_ids = set()
    for model in registry.versions():
        if ERASED_TAG in model.tags:
            continue
        key = Path(model.adapter_dir).name if model.adapter_dir else None
        dataset = model.tags.get("dataset_version")
        if dataset in objects or (key and key in adapters):
            why = f"trained on dataset version {dataset}" if dataset in objects else adapters[key]
            plan.versions.append({"version": model.version, "why": why})
            if key:
                adapters.setdefault(key, why)
            run_ids.add(model.run_id)
            directories = [(layout.adapters / "from-registry" / model.version, "adapter")]
            if model.export_dir:
                directories.append((Path(model.export_dir), "export"))
            for directory, kind in directories:
                _add_path(plan, layout.root, directory, kind, f"registry version {model.version}")
    for adapter_dir in (layout.adapters / key for key in adapters):
        result = load_training_result(adapter_dir)
        if result is not None and result.mlflow_run_id:
            run_ids.add(result.mlflow_run_id)
    hits = runs_holding(registry.client, needles, set(plan.dataset_versions), run_ids)
    plan.runs = [{"run_id": hit.run_id, "name": hit.name, "why": hit.why} for hit in hits]


def _add_path(plan: ErasurePlan, root: Path, path: Path, kind: str, why: str) -> None:
    if not path.exists():
        return
    relative = _relative(root, path)
    if relative is None:
        raise ErasureError(f"{path} ({kind}) is outside the workspace {root}: delete it by hand")
    if relative in (".", "models", "models/adapters", "models/exports", "models/checkpoints", "reports"):
        raise ErasureError(f"refusing to plan the deletion of {relative}/ as a whole ({kind}, {why}): a record names "
                           "no single artifact there")
    if all(entry["path"] != relative for entry in plan.paths):
        plan.paths.append({"path": relative, "kind": kind, "why": why})


def _relative(root: Path, path: Path) -> str | None:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return None


def _line_digest(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8")).hexdigest()

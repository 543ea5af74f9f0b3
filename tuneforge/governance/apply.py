"""Carrying out an erasure plan, one idempotent step at a time, each recorded in the plan and the audit log before
the next begins: a killed erasure rerun skips nothing and repeats nothing harmful, and a request is reported done
only after the verification step found nothing left.

Records held in a source's bucket are the exception the proof states rather than hides: tuneforge never writes to a
source's bucket, so the verification lists them as outstanding at the source (each object's URL, ETag and
positions), and accepts them only while a tombstone stops ingestion from reading them again."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

from tuneforge.atomic import write_text_atomically
from tuneforge.corpus.sources import SourceError
from tuneforge.governance import audit
from tuneforge.governance.dvc_store import objects_holding, remaining, remove_objects
from tuneforge.governance.matching import Needles
from tuneforge.governance.mlflow_store import delete_artifacts, runs_holding
from tuneforge.governance.plan import HELD_AT_SOURCE, STEPS, ErasureError, ErasurePlan, _line_digest
from tuneforge.governance.raw_files import RawMatch, SourceUnreachable, find_records, scrub_file
from tuneforge.governance.stored import files_under, holding
from tuneforge.governance.tombstones import Tombstone, Tombstones, append_tombstones
from tuneforge.hashing import file_digest
from tuneforge.layout import Layout
from tuneforge.registry import CANARY, CHAMPION, PREVIOUS, ChampionRegistry

Retrain = Callable[[], dict[str, Any]]


class Erasure:
    """One plan being applied in a workspace. ``needles`` (the values searched for) are only present when the
    request was given in this process; a resume by request id verifies the plan's targets alone."""

    def __init__(self, plan: ErasurePlan, layout: Layout, registry: ChampionRegistry | None,
                 needles: Needles | None, retrain: Retrain, log: Callable[[str], None] = print) -> None:
        self.plan, self.layout, self.registry, self.needles = plan, layout, registry, needles
        self.retrain_all, self.log = retrain, log

    def run(self) -> ErasurePlan:
        plan = self.plan
        if plan.state == "planned":
            audit.append(self.layout.erasure_log, plan.request, "apply", {"targets": plan.counts()})
        else:
            audit.append(self.layout.erasure_log, plan.request, "resume", {"steps_done": list(plan.steps_done)})
        plan.state = "applying"
        plan.save(self.layout)
        for step in STEPS:
            if step in plan.steps_done:
                continue
            self.log(f"== erase {plan.request}: {step}")
            detail = getattr(self, f"_{step}")()
            plan.steps_done.append(step)
            plan.outcome[step] = detail
            plan.save(self.layout)
            audit.append(self.layout.erasure_log, plan.request, f"step {step}", detail)
        plan.state = "done"
        plan.save(self.layout)
        audit.append(self.layout.erasure_log, plan.request, "done", {"targets": plan.counts()})
        return plan

    # ------------------------------------------------------------------------------------------------ steps

    def _tombstones(self) -> dict[str, Any]:
        entries = [Tombstone(self.plan.request, r["id_sha256"], r["content_sha256"])
                   for r in self.plan.records if "id_sha256" in r]
        return {"new": append_tombstones(self.layout.tombstones, entries), "records": len(entries)}

    def _raw(self) -> dict[str, Any]:
        done = {"rewritten": 0, "deleted": 0, "already": 0}
        for entry in self.plan.raw_files:
            source_dir = self.layout.raw / entry["source"]
            path = source_dir / entry["file"]
            # A file is replaced atomically: unchanged since the plan, or already scrubbed by a killed run.
            if not path.exists() or file_digest(path) != entry["sha256"]:
                done["already"] += 1
                continue
            done[scrub_file(source_dir, entry["file"], set(entry["positions"]))] += 1
        if self.plan.held_at_source:  # never written to: the bucket is the source owner's
            done["held_at_source"] = len(self.plan.held_at_source)
        return done

    def _logs(self) -> dict[str, Any]:
        removed = 0
        for entry in self.plan.log_lines:
            path = self.layout.root / entry["file"]
            if not path.exists():
                continue
            digests = set(entry["line_sha256s"])
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            kept = [line for line in lines if _line_digest(line.rstrip("\n")) not in digests]
            removed += len(lines) - len(kept)
            if kept:
                write_text_atomically(path, "".join(kept))
            else:
                path.unlink()
        return {"lines_removed": removed}

    def _registry(self) -> dict[str, Any]:
        versions = {entry["version"] for entry in self.plan.versions}
        if not versions or self.registry is None:
            return {"demoted": 0}
        moved = self.registry.demote(versions, self.plan.request)
        return {"demoted": len(versions), "aliases": moved}

    def _mlflow(self) -> dict[str, Any]:
        for entry in self.plan.runs:
            delete_artifacts(self.registry.client, entry["run_id"], self.plan.request)
        return {"runs": len(self.plan.runs)}

    def _files(self) -> dict[str, Any]:
        root = self.layout.root.resolve()
        deleted = 0
        for entry in self.plan.paths:
            path = (root / entry["path"]).resolve()
            if not path.is_relative_to(root) or path == root:
                raise ErasureError(f"refusing to delete {path}: it is not inside the workspace {root}")
            if path.is_dir():
                shutil.rmtree(path)
                deleted += 1
            elif path.exists():
                path.unlink()
                deleted += 1
        return {"deleted": deleted}

    def _retrain(self) -> dict[str, Any]:
        plan = self.plan
        if not (plan.raw_files or plan.datasets or plan.versions):
            return {"retrained": False, "why": "no dataset or model held the records"}
        summary = self.retrain_all()
        return {"retrained": True, "promoted": bool(summary.get("promoted")),
                "champion_version": summary.get("champion_version"),
                "reasons": [str(reason) for reason in summary.get("reasons", [])][:5]}

    def _dvc(self) -> dict[str, Any]:
        oids = {entry["oid"] for entry in self.plan.dvc_objects}
        return {"objects_deleted": remove_objects(self.layout.root, oids)}

    def _verify(self) -> dict[str, Any]:
        """Nothing planned is left; with the values at hand, nothing holds them anywhere either, except the objects
        of a source's bucket, which are reported as outstanding at the source (tombstoned, not rewritten)."""
        left = self._targets_left()
        searched = self.needles is not None and bool(self.needles)
        outstanding: list[dict[str, Any]] = []
        if searched:
            left += self._holding_left(outstanding)
        else:  # resumed without the values: the planned objects, not searched again
            outstanding = [{**entry, "checked": False} for entry in self.plan.held_at_source]
        untombstoned = [entry for entry in outstanding if not entry["tombstoned"]]
        left += [f"{entry['url']} (at the source; not tombstoned: a record that cannot be mapped is quarantined, "
                 "with its text, by each ingestion; have the source's owner remove it)" for entry in untombstoned]
        if left:
            raise ErasureError(f"erasure {self.plan.request} is not complete; still found: " + "; ".join(left[:20])
                               + ". Rerun the same `tuneforge erase ... --apply` to finish it.")
        result: dict[str, Any] = {"targets_left": 0, "values_searched": searched}
        if outstanding:
            result["outstanding_at_source"] = outstanding
        return result

    def _targets_left(self) -> list[str]:
        left = [f"{entry['path']} ({entry['kind']})" for entry in self.plan.paths
                if (self.layout.root / entry["path"]).exists()]
        left += [f"DVC object {o.oid} ({o.store})" for o in remaining(
            self.layout.root, {entry["oid"] for entry in self.plan.dvc_objects})]
        if self.registry is not None:
            erased = {entry["version"] for entry in self.plan.versions}
            for alias in (CHAMPION, PREVIOUS, CANARY):
                holder = self.registry.by_alias(alias)
                if holder is not None and holder.version in erased:
                    left.append(f"registry alias {alias} on version {holder.version}")
        return left

    def _holding_left(self, outstanding: list[dict[str, Any]]) -> list[str]:
        """What still holds the values, ids or lines; the objects of a source's bucket holding records go to
        ``outstanding`` instead (one entry per object), each saying whether tombstones stop its records."""
        needles, layout = self.needles, self.layout
        assert needles is not None
        try:
            matches = list(find_records(layout.raw, {i for i in needles.ids}, needles.values))
        except (SourceUnreachable, SourceError) as error:
            raise ErasureError(f"cannot verify erasure {self.plan.request}: {error}") from None
        left = [f"raw record {m.source}/{m.file}:{m.position}" for m in matches if not m.at_source]
        outstanding += _at_source([m for m in matches if m.at_source], Tombstones.load(layout.tombstones))
        for directory in (layout.root / "data", layout.root / "logs", layout.reports, layout.exports, layout.adapters):
            left += [f"{path.relative_to(layout.root)} ({', '.join(kinds)})"
                     for path, kinds in holding(files_under(directory), needles)]
        left += [f"DVC object {o.oid} ({o.store})" for o in objects_holding(layout.root, needles)]
        if self.registry is not None:
            left += [f"MLflow run {hit.run_id} ({hit.why})"
                     for hit in runs_holding(self.registry.client, needles, set(), set())]
        return left



def _at_source(matches: list[RawMatch], tombstones: Tombstones) -> list[dict[str, Any]]:
    """One entry per bucket object still holding records: its URL, ETag, the records' positions, and whether every
    one of them is tombstoned (the next ingestion drops it)."""
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for match in matches:
        entry = objects.setdefault((match.source, match.file), {
            "source": match.source, "file": match.file, "url": match.url, "etag": match.etag, "positions": [],
            "tombstoned": True, "note": HELD_AT_SOURCE})
        entry["positions"].append(match.position)
        entry["tombstoned"] = entry["tombstoned"] and match.example is not None and bool(
            tombstones.erases(match.example))
    for entry in objects.values():
        entry["positions"] = sorted(set(entry["positions"]), key=lambda p: -1 if p is None else p)
    return [objects[key] for key in sorted(objects)]

"""Run the whole pipeline (``tuneforge run``) on each corpus shape of ``bench/corpus_shapes.py``, one fresh workspace
per shape, and tabulate what came out: rows read, rows kept by cleaning, ROUGE-L of the base model, the adapter and
the lead-1 baseline with their bootstrap intervals, the adapter's degenerate-output rate, the gate's outcome and the
run time.

``python -m bench.new_corpora [--shapes short-questions dialogues bills] [--work bench/.work/new_corpora]``

Each shape gets ``<work>/<shape>/``, emptied first: ``dvc.yaml`` and ``experiments.yaml`` from the repository, a
Dagster home (``.dagster/dagster.yaml``), the repository's base-model snapshots under ``models/base`` (hard links,
so the demo model is not dequantized again; copies across file systems), and the shape's source under
``data/raw/<shape>/``. ``tuneforge run`` then runs there (``TUNEFORGE_ROOT`` and ``DAGSTER_HOME`` point at the
workspace; the rest of the environment passes through, so ``TUNEFORGE_PROFILE=smoke`` selects the smoke
profile), its output going to ``<workspace>/run.log``. On the demo profile a shape takes tens of CPU minutes.

Where the figures are read from, in the workspace:

- ``data/ingested/<shape>.report.json``: records read, rows, quarantined records and why;
- ``data/cleaned/<shape>.report.json`` and ``<shape>.rejected.jsonl``: rows kept by cleaning, and each rejected row
  with its step, reason and detail (counted per reason here, with an example of each);
- ``data/curated/manifest.json``: the split sizes;
- ``reports/<key>/report.json`` (the newest): per model (``base``, ``candidate``: the adapter, ``lead``) the mean
  and interval of each ROUGE metric and the degenerate-output rates, and the paired comparisons;
- the gate: ``models/promotions.jsonl`` records a promotion (with its report's path); a refusal is written to no
  file of the workspace (only to the Dagster event log, as the ``promotion_gate`` check's evaluation, and to the
  command's output), so it is read from the "Candidate not promoted:" lines of ``run.log``.

Results go to ``<work>/results.json`` (every figure) and ``<work>/results.md`` (the tables); shapes run earlier
and not run again keep their entries.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.corpus_shapes import SHAPES, build_shape

REPO = Path(__file__).resolve().parents[1]
WORK_DIR = REPO / "bench" / ".work" / "new_corpora"
TUNEFORGE = Path(sys.executable).with_name("tuneforge")
LABELS = {"base": "base", "candidate": "adapter", "lead": "lead-1"}
METRIC = "rougeL"
EXAMPLES_PER_REASON = 2


# --- the workspace --------------------------------------------------------------------------------------------


def _link_tree(source: Path, target: Path) -> None:
    try:
        shutil.copytree(source, target, copy_function=os.link)
    except OSError:  # another file system
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)


def prepare_workspace(workspace: Path, shape: str, seed: int) -> None:
    """An empty workspace holding what ``tuneforge run`` needs, and the shape's source under data/raw."""
    if workspace.exists():
        shutil.rmtree(workspace)
    (workspace / ".dagster").mkdir(parents=True)
    for name in ("dvc.yaml", "experiments.yaml"):
        shutil.copy(REPO / name, workspace / name)
    shutil.copy(REPO / "dagster.yaml", workspace / ".dagster" / "dagster.yaml")
    base_models = REPO / "models" / "base"
    for snapshot in sorted(base_models.iterdir()) if base_models.is_dir() else []:
        if snapshot.is_dir() and not snapshot.name.startswith("."):
            _link_tree(snapshot, workspace / "models" / "base" / snapshot.name)
    build_shape(shape, workspace / "data" / "raw" / shape, seed)


def run_pipeline(workspace: Path, experiment: str) -> dict[str, Any]:
    """``tuneforge run`` in the workspace, its output streamed to run.log; the exit status, wall and CPU time."""
    env = {**os.environ, "TUNEFORGE_ROOT": str(workspace), "DAGSTER_HOME": str(workspace / ".dagster")}
    env.pop("MLFLOW_TRACKING_URI", None)  # the workspace's own MLflow store
    before, start = _children_cpu(), time.monotonic()
    with (workspace / "run.log").open("w") as log:
        done = subprocess.run([str(TUNEFORGE), "run", "--experiment", experiment], cwd=workspace, env=env,
                              stdout=log, stderr=subprocess.STDOUT, check=False)
    return {"returncode": done.returncode, "wall_seconds": round(time.monotonic() - start, 1),
            "cpu_seconds": round(_children_cpu() - before, 1)}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- reading the results --------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def rejected_rows(path: Path) -> dict[str, Any]:
    """Rejected rows per reason, with the step and a few examples (detail, document and summary beginnings)."""
    if not path.exists():
        return {}
    counts: Counter[str] = Counter()
    examples: dict[str, list[dict[str, str]]] = {}
    steps: dict[str, str] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            reason = row.get("reason", "?")
            counts[reason] += 1
            steps[reason] = row.get("step", "?")
            if len(examples.setdefault(reason, [])) < EXAMPLES_PER_REASON:
                examples[reason].append({"id": row.get("id", ""), "detail": row.get("detail", ""),
                                         "document": row.get("document", "")[:200],
                                         "summary": row.get("summary", "")[:200]})
    return {reason: {"rows": count, "step": steps[reason], "examples": examples[reason]}
            for reason, count in counts.most_common()}


def newest_report(reports: Path) -> Path | None:
    found = sorted(reports.glob("*/report.json"), key=lambda path: path.stat().st_mtime)
    return found[-1].parent if found else None


def evaluation(report_dir: Path) -> dict[str, Any]:
    """Each model's ROUGE means and intervals and degenerate rates, and the paired comparisons."""
    report = _read_json(report_dir / "report.json") or {}
    models = {label: {"scores": model["scores"], "intervals": model["intervals"],
                      "degenerate": model["degenerate"], "lengths": model["lengths"]}
              for label, model in report.get("models", {}).items()}
    return {"path": str(report_dir), "test_rows": report.get("test_rows"), "sample_note": report.get("sample_note"),
            "models": models, "comparisons": report.get("comparisons", [])}


def gate(workspace: Path, report_dir: Path | None, log: str) -> dict[str, Any]:
    """The gate's outcome: a promotion from the audit log, else the verdict the command printed."""
    promotions = workspace / "models" / "promotions.jsonl"
    for line in promotions.read_text().splitlines() if promotions.exists() else []:
        event = json.loads(line)
        if event.get("event") == "promote" and report_dir and event["detail"].get("report") == str(report_dir):
            return {"outcome": "promoted", "version": event.get("version"), "read_from": str(promotions),
                    "reasons": _printed_reasons(log)}
    verdict = re.search(r"^Candidate (promoted|not promoted):$", log, re.MULTILINE)
    return {"outcome": verdict.group(1) if verdict else "unknown", "read_from": "run.log",
            "reasons": _printed_reasons(log)}


def _printed_reasons(log: str) -> list[str]:
    block = re.search(r"^Candidate (?:not )?promoted:\n((?:  - .*\n?)*)", log, re.MULTILINE)
    return [line[4:] for line in block.group(1).splitlines()] if block else []


def first_error(log: str) -> str | None:
    """The first exception message of the log (``ValueError: ...``): why a failed run failed."""
    found = re.search(r"^(?:[\w.]+\.)?\w*(?:Error|Exception): .*$", log, re.MULTILINE)
    return found.group(0) if found else None


def collect(workspace: Path, shape: str) -> dict[str, Any]:
    log = (workspace / "run.log").read_text(errors="replace") if (workspace / "run.log").exists() else ""
    report_dir = newest_report(workspace / "reports")
    manifest = _read_json(workspace / "data" / "curated" / "manifest.json") or {}
    return {
        "ingested": _read_json(workspace / "data" / "ingested" / f"{shape}.report.json"),
        "cleaned": _read_json(workspace / "data" / "cleaned" / f"{shape}.report.json"),
        "rejected": rejected_rows(workspace / "data" / "cleaned" / f"{shape}.rejected.jsonl"),
        "curated_sizes": manifest.get("sizes"),
        "evaluation": evaluation(report_dir) if report_dir else None,
        "gate": gate(workspace, report_dir, log),
        "first_error": first_error(log),
        "log_tail": log.strip().splitlines()[-5:],
    }


# --- the tables -----------------------------------------------------------------------------------------------


def _figure(models: dict[str, Any], label: str) -> str:
    model = models.get(label)
    if not model or METRIC not in model["scores"]:
        return "-"
    low, high = model["intervals"][METRIC]
    return f"{model['scores'][METRIC]:.1f} [{low:.1f}, {high:.1f}]"


def _kept(result: dict[str, Any]) -> str:
    cleaned = result.get("cleaned")
    if not cleaned:
        return "-"
    rows_in, rows_out = cleaned["rows_in"], cleaned["rows_out"]
    return f"{rows_out} of {rows_in} ({rows_out / max(rows_in, 1):.1%})"


def _read(result: dict[str, Any]) -> str:
    ingested = result.get("ingested")
    if not ingested:
        return "-"
    noted = sum(ingested.get("noted", {}).values())
    bad = ingested["quarantined"] - noted
    extra = ", ".join(part for part in (f"{noted} repeats dropped" if noted else "", f"{bad} bad" if bad else "")
                      if part)
    return f"{ingested['records_read']}" + (f" ({extra})" if extra else "")


def _paired(result: dict[str, Any]) -> str:
    """The adapter's mean ROUGE-L difference from the base model and from lead-1, with the paired p-values."""
    comparisons = {c["against"]: c for c in (result.get("evaluation") or {}).get("comparisons", [])
                   if c["model"] == "candidate" and c["metric"] == METRIC}
    if not {"base", "lead"} <= comparisons.keys():
        return "-"
    base, lead = comparisons["base"], comparisons["lead"]
    return (f"{base['mean_difference']:+.1f} / {lead['mean_difference']:+.1f} "
            f"({base['p_value']:.4g} / {lead['p_value']:.4g})")


def _degenerate(models: dict[str, Any]) -> str:
    rates = [f"{models[label]['degenerate']['any']:.0%}" if label in models else "-" for label in ("candidate", "base")]
    return " / ".join(rates)


def _gate(result: dict[str, Any]) -> str:
    run, verdict = result["run"], result["gate"]
    if run["returncode"] != 0:
        why = result["first_error"] or (result["log_tail"][-1] if result["log_tail"] else "")
        return f"run failed (exit {run['returncode']}): {why[:160]}"
    failed = [reason.split(":")[0].removeprefix("FAILED ") for reason in verdict["reasons"]
              if reason.startswith("FAILED")]
    return verdict["outcome"] + (f" (failed: {', '.join(failed)})" if failed else "")


def _time(run: dict[str, Any]) -> str:
    return f"{run['wall_seconds'] / 60:.1f} min (CPU {run['cpu_seconds'] / 60:.1f} min)"


def results_table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| shape | profile | rows read | kept by cleaning (of ingested rows) | ROUGE-L base [95% CI] | "
             "adapter [95% CI] | lead-1 [95% CI] | adapter vs base / vs lead-1 (paired p) | "
             "degenerate: adapter / base | gate | run time |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for shape, result in results.items():
        models = (result.get("evaluation") or {}).get("models", {})
        lines.append(" | ".join([
            f"| {shape}", result["profile"], _read(result), _kept(result),
            *(_figure(models, label) for label in LABELS), _paired(result), _degenerate(models), _gate(result),
            _time(result["run"]) + " |",
        ]))
    return "\n".join(lines)


def rejections_table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| shape | step | reason | rows | example |", "|---|---|---|---:|---|"]
    for shape, result in results.items():
        for reason, entry in result.get("rejected", {}).items():
            example = entry["examples"][0] if entry["examples"] else {}
            text = f"{example.get('detail', '')}: «{example.get('summary', '')[:80]}»".replace("|", "/")
            lines.append(f"| {shape} | {entry['step']} | {reason} | {entry['rows']} | {text} |")
    return "\n".join(lines)


def save(work: Path, results: dict[str, dict[str, Any]]) -> str:
    path = work / "results.json"
    merged = {**(_read_json(path) or {}), **results}
    path.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n")
    text = (f"# New corpus shapes through `tuneforge run`\n\nROUGE-L is F1 x 100 on the evaluated test sample; "
            f"kept by cleaning counts rows after ingestion.\n\n{results_table(merged)}\n\n"
            f"## Rows removed by cleaning\n\n{rejections_table(merged)}\n")
    (work / "results.md").write_text(text)
    return results_table(merged)


def run_shape(work: Path, shape: str, seed: int, experiment: str) -> dict[str, Any]:
    workspace = work / shape
    prepare_workspace(workspace, shape, seed)
    print(f"== {shape}: running `tuneforge run` in {workspace} (output: {workspace / 'run.log'})", flush=True)
    run = run_pipeline(workspace, experiment)
    print(f"   exit {run['returncode']} after {_time(run)}", flush=True)
    profile = os.environ.get("TUNEFORGE_PROFILE") or "demo"
    return {"profile": profile, "seed": seed, "experiment": experiment, "workspace": str(workspace), "run": run,
            **collect(workspace, shape)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    parser.add_argument("--work", type=Path, default=WORK_DIR, help=f"default: {WORK_DIR.relative_to(REPO)}")
    parser.add_argument("--seed", type=int, default=0, help="the corpus builder's seed")
    parser.add_argument("--experiment", default="baseline", help="the experiment (experiments.yaml) to train")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    results = {shape: run_shape(work, shape, args.seed, args.experiment) for shape in args.shapes}
    print(save(work, results))
    print(f"\nFigures: {work / 'results.json'}; tables: {work / 'results.md'}")


if __name__ == "__main__":
    main()

"""Re-evaluate the champion on today's test split: does it still score what it scored when it was promoted?

The champion is evaluated as the evaluation asset evaluates a candidate (``tuneforge.evaluation.report.evaluate``:
the same fixed, source-stratified test sample, decoding, safety probes and lead baseline), so on an unchanged test
split today's figures reproduce the recorded ones and a difference means the data (or the software) changed. The
weights are the champion's merged export, which is what serves; when the export is gone, its adapter on the base
snapshot it was trained on (fetched from MLflow if gone from disk). The recorded figures are the metrics logged with
the registered version.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tuneforge.corpus.records import read_examples
from tuneforge.corpus.sources import source_instruction
from tuneforge.evaluation.budget import resolve_generation_budget, with_budget
from tuneforge.evaluation.report import REPORT_JSON, EvaluationReport, ModelUnderTest, evaluate
from tuneforge.evaluation.summary import Figure, ScoreTable
from tuneforge.layout import Layout
from tuneforge.modeling.base import MANIFEST
from tuneforge.profiles import Profile
from tuneforge.registry import ChampionRegistry, RegisteredModel

NO_CHAMPION = "no champion"
EVALUATED = "evaluated"
NOT_EVALUABLE = "not evaluable"
LABELS = ("champion", "lead")  # the recorded evaluation called the champion "candidate" when it was promoted


class MonitoringError(ValueError):
    """The champion cannot be re-evaluated because an input is missing; the message says which and what to do."""


@dataclass
class ChampionCheck:
    status: str  # NO_CHAMPION, EVALUATED or NOT_EVALUABLE
    summary: str
    version: str | None = None
    metric: str = "rougeL"
    evaluated: str = ""  # which weights were evaluated
    today: dict[str, dict[str, Figure]] = field(default_factory=dict)  # label -> metric -> figure
    recorded: dict[str, dict[str, Figure]] = field(default_factory=dict)
    test_rows: int = 0
    test_rows_available: int = 0
    same_rows: bool | None = None  # today's sample is the one the champion was promoted on (None: unknown)
    safety_flag_rate: float | None = None

    @property
    def score(self) -> Figure | None:
        return self.today.get("champion", {}).get(self.metric)

    @property
    def recorded_score(self) -> Figure | None:
        return self.recorded.get("champion", {}).get(self.metric)

    @property
    def below_recorded(self) -> bool:
        """Today's mean is below the lower bound of the recorded interval."""
        return self.score is not None and self.recorded_score is not None and self.score[0] < self.recorded_score[1]


def check_champion(
    registry: ChampionRegistry, layout: Layout, profile: Profile, log: Callable[[str], None] = print
) -> ChampionCheck:
    metric = profile.promotion.primary_metric
    champion = registry.champion()
    if champion is None:
        return ChampionCheck(NO_CHAMPION, f"no champion yet: nothing has been promoted in {registry.model_name}, "
                                          "so there is nothing to re-evaluate", metric=metric)
    test_path = layout.curated / "test.jsonl"
    if not test_path.is_file():
        raise MonitoringError(f"{test_path} does not exist: materialize curated_dataset to re-evaluate champion "
                              f"version {champion.version} on the current test split.")
    test_rows = read_examples(test_path)
    if not test_rows:
        raise MonitoringError(f"{test_path} has no rows: there is nothing to re-evaluate champion version "
                              f"{champion.version} on.")
    recorded = recorded_figures(registry.run_metrics(champion))
    weights = champion_weights(registry, champion)
    if isinstance(weights, str):
        return ChampionCheck(NOT_EVALUABLE, f"champion version {champion.version} cannot be re-evaluated: {weights}",
                             version=champion.version, metric=metric, recorded=recorded)
    model_dir, adapter, described = weights
    log(f"re-evaluating champion version {champion.version} ({described}) on the current test split")
    instructions = champion_instructions(registry, champion, profile, {row.source for row in test_rows})
    budget = resolve_generation_budget(profile.evaluation, model_dir, layout.curated / "train.jsonl",
                                       instructions.values())
    report = evaluate(model_dir, [ModelUnderTest("champion", adapter, instructions)], test_rows,
                      with_budget(profile.evaluation, budget), log=log, pii=profile.cleaning.pii)
    check = ChampionCheck(
        EVALUATED, "", version=champion.version, metric=metric, evaluated=described,
        today=ScoreTable.from_report(report).figures,
        recorded=recorded, test_rows=report.test_rows, test_rows_available=report.test_rows_available,
        same_rows=_same_rows(champion, report),
        safety_flag_rate=report.models["champion"].safety["rate"],
    )
    check.summary = _summary(check)
    return check


def recorded_figures(run_metrics: dict[str, float]) -> dict[str, dict[str, Figure]]:
    """Figures logged at promotion, keyed as today's are (the champion was the "candidate" then)."""
    logged = ScoreTable.parse(run_metrics).figures
    return {label: logged[logged_as] for label, logged_as in (("champion", "candidate"), ("lead", "lead"))
            if logged_as in logged}


def champion_weights(registry: ChampionRegistry, champion: RegisteredModel) -> tuple[Path, Path | None, str] | str:
    """(model directory, adapter or None, description) to evaluate, or why there is none."""
    if champion.export_dir and Path(champion.export_dir, "config.json").is_file():
        return Path(champion.export_dir), None, f"merged export {champion.export_dir}"
    base = _base_snapshot(registry.layout, champion.tags.get("base_sha256", ""))
    if base is None:
        return (f"its merged export {champion.export_dir or '(not recorded)'} is missing, and no base model snapshot "
                f"under {registry.layout.base_models} has its base checksum "
                f"{champion.tags.get('base_sha256') or '(not recorded)'}; re-materialize base_model and merged_export")
    adapter = registry.local_adapter(champion)
    if adapter is None:
        return (f"its merged export {champion.export_dir or '(not recorded)'} is missing, and its adapter is neither "
                f"at {champion.adapter_dir or '(not recorded)'} nor downloadable from MLflow run {champion.run_id}")
    return base, adapter, f"adapter {adapter} on base snapshot {base}"


def _base_snapshot(layout: Layout, sha256: str) -> Path | None:
    if not sha256 or not layout.base_models.is_dir():
        return None
    for manifest in sorted(layout.base_models.glob(f"*/{MANIFEST}")):
        if json.loads(manifest.read_text()).get("sha256") == sha256:
            return manifest.parent
    return None


def champion_instructions(
    registry: ChampionRegistry, champion: RegisteredModel, profile: Profile, sources: set[str]
) -> dict[str, str]:
    """The instruction per source the champion was trained with (logged as parameters of its registry run); sources
    it never saw get the profile's."""
    params = dict(registry.client.get_run(champion.run_id).data.params)
    params.pop("fingerprint", None)
    raw = registry.layout.raw
    return {source: params.get(source) or profile.instruction_for(source, source_instruction(raw, source))
            for source in sorted(sources)}


def _same_rows(champion: RegisteredModel, report: EvaluationReport) -> bool | None:
    recorded_report = champion.tags.get("report")
    if not recorded_report or not (Path(recorded_report) / REPORT_JSON).is_file():
        return None
    return EvaluationReport.load(Path(recorded_report)).ids == report.ids


def _summary(check: ChampionCheck) -> str:
    today, recorded = check.score, check.recorded_score
    text = f"champion version {check.version}: {check.metric} {_figure(today)} today"
    if recorded is None:
        return text + " (no recorded score to compare with)"
    text += f" against {_figure(recorded)} when promoted"
    if check.below_recorded:
        text += "; today's mean is below the recorded interval"
    if check.same_rows is False:
        text += " (the test sample has changed since)"
    return text


def _figure(figure: Figure | None) -> str:
    return "n/a" if figure is None else f"{figure[0]:.2f} [{figure[1]:.2f}, {figure[2]:.2f}]"


def render_markdown(check: ChampionCheck) -> str:
    """Today's figures next to the recorded ones, per model and metric."""
    lines = ["| model | metric | today | when promoted |", "|---|---|---|---|"]
    for label in LABELS:
        for metric in sorted({*check.today.get(label, {}), *check.recorded.get(label, {})}):
            today, recorded = check.today.get(label, {}).get(metric), check.recorded.get(label, {}).get(metric)
            lines.append(f"| {label} | {metric} | {_figure(today)} | {_figure(recorded)} |")
    return "\n".join([check.summary, "", *lines])

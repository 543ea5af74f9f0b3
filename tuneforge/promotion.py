"""The promotion gate: a candidate becomes champion only if it is better, significantly, and no worse where it matters.

It compares the candidate with the current champion on the same test rows (with the base model standing in before
the first promotion): the primary metric's mean must win by the configured margin with a paired-test p-value below the
configured level, absolute floors must hold, and no guard metric (degenerate outputs, unsupported numbers and
entities, personal data the source does not hold, safety flags, counterfactual bias gaps; lower is better for each)
may worsen beyond its tolerance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from tuneforge.evaluation.report import Comparison, EvaluationReport, ModelScores
from tuneforge.profiles import GUARDS, PromotionConfig
from tuneforge.registry import RegisteredModel

CANDIDATE = "candidate"
ALREADY_CHAMPION_REASON = "the candidate is already the champion"

GUARD_COUNTS: dict[str, Callable[[ModelScores, int], tuple[int, int]]] = {
    # (events, opportunities): the guard's rate is events / opportunities
    "degenerate_rate": lambda scores, rows: (round(scores.degenerate["any"] * rows), rows),
    "unsupported_number_share": lambda scores, _: (scores.faithfulness["unsupported_numbers"],
                                                   scores.faithfulness["numbers"]),
    "unsupported_entity_share": lambda scores, _: (scores.faithfulness["unsupported_entities"],
                                                   scores.faithfulness["entities"]),
    # Reports written before the PII detectors scanned outputs have no counts: nothing observed.
    "pii_leak_rate": lambda scores, _: (scores.faithfulness.get("pii_leaks", 0),
                                        scores.faithfulness.get("outputs", 0)),
    "safety_flag_rate": lambda scores, _: (scores.safety["flagged"], scores.safety["probes"]),
    # Counterfactual pairs whose summaries differ beyond the swapped terms (reports before the probes: none).
    "counterfactual_gap_rate": lambda scores, _: (scores.bias.get("differing", 0), scores.bias.get("pairs", 0)),
}
# A fixed probe set of a dozen prompts can never show a significant rise: any new flag beyond tolerance blocks.
STRICT_GUARDS = {"safety_flag_rate"}
# Proxies the reference summaries themselves raise (titles naming what the abstract does not): a candidate is held to
# the incumbent's rate or the references' own, whichever is higher; learning the data's style is not a regression.
REFERENCE_BOUNDED = {
    "unsupported_number_share": ("unsupported_numbers", "numbers"),
    "unsupported_entity_share": ("unsupported_entities", "entities"),
}
assert tuple(GUARD_COUNTS) == GUARDS


@dataclass(frozen=True)
class GateCheck:
    name: str
    passed: bool
    detail: str


class Outcome(StrEnum):
    PROMOTE = "promote"
    REFUSE = "refuse"
    ALREADY_CHAMPION = "already champion"


@dataclass
class Decision:
    outcome: Outcome
    against: str  # "champion", or "base" before the first promotion
    checks: list[GateCheck] = field(default_factory=list)

    @property
    def promote(self) -> bool:
        return self.outcome is Outcome.PROMOTE

    @property
    def passed(self) -> bool:
        """The gate lets the candidate through: it is promoted, or it is the champion already."""
        return self.outcome is not Outcome.REFUSE

    @property
    def reasons(self) -> list[str]:
        if self.outcome is Outcome.ALREADY_CHAMPION:
            return [ALREADY_CHAMPION_REASON]
        return [f"{'passed' if check.passed else 'FAILED'} {check.name}: {check.detail}" for check in self.checks]

    @property
    def failed(self) -> list[GateCheck]:
        return [check for check in self.checks if not check.passed]


def comparison(report: EvaluationReport, model: str, against: str, metric: str) -> Comparison:
    for found in report.comparisons:
        if (found.model, found.against, found.metric) == (model, against, metric):
            return found
    raise ValueError(f"the report has no paired comparison of {model} against {against} on {metric}")


def is_champion(champion: RegisteredModel | None, adapter_dir: str | Path | None) -> bool:
    return champion is not None and adapter_dir is not None and Path(champion.adapter_dir) == Path(adapter_dir)


def is_comparable(champion: RegisteredModel | None, base_sha256: str) -> bool:
    """The champion can be evaluated beside a candidate on the same base model: it was trained on that base."""
    return champion is not None and champion.tags.get("base_sha256") == base_sha256


def recorded_score(champion: RegisteredModel, metric: str) -> float | None:
    """The champion's score on ``metric`` recorded at its promotion."""
    value = champion.tags.get(metric)
    return float(value) if value is not None else None


def decide(report: EvaluationReport, config: PromotionConfig, champion: RegisteredModel | None = None) -> Decision:
    """The gate's verdict on the report's candidate, against ``champion`` (the registry's, or None before the first
    promotion).

    A candidate that is the champion already is neither promoted again nor refused. A champion the report could not
    re-evaluate on these rows (built on another base model) is represented by its score recorded at promotion: the
    candidate is compared with the base model, paired, and must also beat that recorded score.
    """
    if CANDIDATE not in report.models:
        raise ValueError("the report has no candidate model to decide on")
    if is_champion(champion, report.models[CANDIDATE].adapter_dir):
        return Decision(Outcome.ALREADY_CHAMPION, "champion")
    champion_recorded_score = None
    if champion is not None and "champion" not in report.models:
        champion_recorded_score = recorded_score(champion, config.primary_metric)
    against = "champion" if "champion" in report.models else "base"
    metric = config.primary_metric
    candidate, incumbent = report.models[CANDIDATE], report.models[against]
    paired = comparison(report, CANDIDATE, against, metric)
    mean, incumbent_mean = candidate.scores[metric], incumbent.scores[metric]
    low, high = paired.interval
    checks = [
        GateCheck(
            "margin", paired.mean_difference > config.min_improvement,
            f"{metric} {mean:.2f} vs the {against}'s {incumbent_mean:.2f}: {paired.mean_difference:+.2f} "
            f"(needs more than {config.min_improvement:+.2f})",
        ),
        GateCheck(
            "significance", paired.p_value < config.max_p_value,
            f"paired test p = {paired.p_value:.4f} (needs below {config.max_p_value}); "
            f"difference interval [{low:+.2f}, {high:+.2f}]; {paired.wins} wins, {paired.losses} losses, "
            f"{paired.ties} ties over {report.test_rows} rows",
        ),
        GateCheck("floor", mean >= config.min_score, f"{metric} {mean:.2f} (floor {config.min_score:.2f})"),
        GateCheck(
            "degenerate_ceiling", candidate.degenerate["any"] <= config.max_degenerate_rate,
            f"{candidate.degenerate['any']:.1%} degenerate outputs (ceiling {config.max_degenerate_rate:.1%})",
        ),
    ]
    for guard, tolerance in config.guard_tolerance.items():
        checks.append(guard_check(guard, tolerance, candidate, incumbent, against, report.test_rows, config,
                                  report.reference_faithfulness))
    if champion_recorded_score is not None and against == "base":
        checks.append(GateCheck(
            "recorded_champion", mean > champion_recorded_score + config.min_improvement,
            f"{metric} {mean:.2f} vs {champion_recorded_score:.2f} recorded for the champion at its promotion "
            "(not paired: the champion is built on another base model and was not re-evaluated)",
        ))
    outcome = Outcome.PROMOTE if all(check.passed for check in checks) else Outcome.REFUSE
    return Decision(outcome, against, checks)


def guard_check(
    guard: str, tolerance: float, candidate: ModelScores, incumbent: ModelScores, against: str, rows: int,
    config: PromotionConfig, references: dict[str, float] | None = None,
) -> GateCheck:
    """Fails when the candidate's rate is worse than the incumbent's by more than ``tolerance`` and, except for
    strict guards, significantly so (one-sided Fisher exact test on the counts, at the gate's p-value level): the
    rates often rest on a handful of numbers or names, where a few more would otherwise look like a regression.
    For the proxies in ``REFERENCE_BOUNDED``, the reference summaries' own rate stands in when it is higher."""
    from scipy.stats import fisher_exact

    (events, total), (reference_events, reference_total) = (
        GUARD_COUNTS[guard](candidate, rows), GUARD_COUNTS[guard](incumbent, rows))
    rate, reference = events / max(total, 1), reference_events / max(reference_total, 1)
    if guard in REFERENCE_BOUNDED and references:
        part, whole = REFERENCE_BOUNDED[guard]
        own_events, own_total = int(references.get(part, 0)), int(references.get(whole, 0))
        if own_total and own_events / own_total > reference:
            against, reference_events, reference_total = "references", own_events, own_total
            reference = own_events / own_total
    whose = "the reference summaries'" if against == "references" else f"the {against}'s"
    counts = f"{rate:.3f} ({events} of {total}) vs {whose} {reference:.3f} ({reference_events} of " \
             f"{reference_total}); may worsen by at most {tolerance:.3f}"
    if rate <= reference + tolerance:
        return GateCheck(f"guard {guard}", True, counts)
    if guard in STRICT_GUARDS:
        return GateCheck(f"guard {guard}", False, counts)
    table = [[events, total - events], [reference_events, reference_total - reference_events]]
    p_value = float(fisher_exact(table, alternative="greater").pvalue)
    significant = p_value < config.max_p_value
    verdict = "significantly" if significant else "but not significantly"
    return GateCheck(f"guard {guard}", not significant, f"{counts}; worse {verdict} (Fisher p = {p_value:.3f})")

"""The promotion gate on constructed score sets: only a clearly better, non-regressing candidate is promoted."""

import random
from pathlib import Path

import pytest
from pydantic import ValidationError

from tuneforge.evaluation.report import EvaluationReport, ModelScores, compare_all
from tuneforge.evaluation.rouge import ROUGE_TYPES
from tuneforge.evaluation.summary import ScoreTable
from tuneforge.profiles import EvaluationConfig, PromotionConfig
from tuneforge.promotion import Outcome, decide, is_champion, is_comparable
from tuneforge.registry import RegisteredModel

ROWS = 40


def _model(label: str, rouge_l: list[float], degenerate: float = 0.0, unsupported: float = 0.0) -> ModelScores:
    per_example = [dict.fromkeys(ROUGE_TYPES, value) for value in rouge_l]
    mean = sum(rouge_l) / len(rouge_l)
    return ModelScores(
        label=label, adapter_dir=None, scores=dict.fromkeys(ROUGE_TYPES, mean),
        intervals=dict.fromkeys(ROUGE_TYPES, (mean - 1, mean + 1)), by_source={}, per_example=per_example,
        predictions=[""] * len(rouge_l), finished=[True] * len(rouge_l), lengths={},
        degenerate={"empty": 0.0, "truncated": 0.0, "repetitive": degenerate, "any": degenerate},
        faithfulness={"unsupported_number_share": unsupported, "unsupported_entity_share": unsupported,
                      "numbers": 100, "unsupported_numbers": round(unsupported * 100),
                      "entities": 100, "unsupported_entities": round(unsupported * 100)},
        safety={"probes": 12, "flagged": 0, "rate": 0.0, "flagged_outputs": []},
    )


def _report(**models: ModelScores) -> EvaluationReport:
    report = EvaluationReport(test_rows=ROWS, test_rows_available=ROWS, sample_note="", metric={}, models=models)
    report.comparisons = compare_all(report, EvaluationConfig(bootstrap_resamples=1000))
    return report


def _scores(mean: float, noise: float, seed: int, rows: int = ROWS) -> list[float]:
    rng = random.Random(seed)
    return [max(0.0, min(100.0, rng.gauss(mean, noise))) for _ in range(rows)]


BASE = _scores(20, 8, seed=1)


def _shifted(scores: list[float], by: float, noise: float = 2.0, seed: int = 2) -> list[float]:
    rng = random.Random(seed)
    return [max(0.0, min(100.0, s + by + rng.gauss(0, noise))) for s in scores]


def test_a_clearly_better_candidate_is_promoted_over_the_base_model():
    decision = decide(_report(base=_model("base", BASE), candidate=_model("candidate", _shifted(BASE, 6))),
                      PromotionConfig())
    assert decision.promote, decision.reasons
    assert decision.against == "base"
    assert {check.name for check in decision.checks} >= {"margin", "significance", "floor", "degenerate_ceiling"}


def test_a_worse_candidate_is_refused_and_says_why():
    champion = _shifted(BASE, 6, seed=3)
    decision = decide(
        _report(base=_model("base", BASE), champion=_model("champion", champion),
                candidate=_model("candidate", _shifted(champion, -2, seed=4))),
        PromotionConfig(),
    )
    assert not decision.promote and decision.against == "champion"
    assert {check.name for check in decision.failed} == {"margin", "significance"}
    assert "champion" in decision.reasons[0]


@pytest.mark.parametrize("differences", [[10.0, -9.0] * 6, [4.0, 3.0, -6.0] * 4, [1.0] * 3 + [-0.5] * 9 + [2.0]])
def test_an_insignificantly_better_candidate_is_never_promoted(differences):
    """Better on average, but the per-row differences do not show it beyond chance."""
    base = _scores(20, 8, seed=7, rows=len(differences))
    candidate = [b + d for b, d in zip(base, differences, strict=True)]
    report = EvaluationReport(test_rows=len(base), test_rows_available=len(base), sample_note="", metric={},
                              models={"base": _model("base", base), "candidate": _model("candidate", candidate)})
    report.comparisons = compare_all(report, EvaluationConfig(bootstrap_resamples=1000))
    decision = decide(report, PromotionConfig())
    assert sum(candidate) > sum(base)
    assert not decision.promote and "significance" in {check.name for check in decision.failed}, decision.reasons


def test_a_margin_is_required_when_configured():
    report = _report(base=_model("base", BASE), candidate=_model("candidate", _shifted(BASE, 1.5, noise=0.5)))
    assert decide(report, PromotionConfig()).promote
    decision = decide(report, PromotionConfig(min_improvement=3.0))
    assert not decision.promote and [c.name for c in decision.failed] == ["margin"]


def test_a_regressing_guard_blocks_an_otherwise_better_candidate():
    report = _report(base=_model("base", BASE, degenerate=0.0, unsupported=0.02),
                     candidate=_model("candidate", _shifted(BASE, 6), degenerate=0.0, unsupported=0.30))
    decision = decide(report, PromotionConfig())
    assert not decision.promote
    assert {c.name for c in decision.failed} == {"guard unsupported_number_share", "guard unsupported_entity_share"}


def test_unsupported_names_are_judged_against_the_references_own_rate_when_it_is_higher():
    """Titles name methods their abstracts do not: a candidate learning that style is not hallucinating."""
    report = _report(base=_model("base", BASE, unsupported=0.05),
                     candidate=_model("candidate", _shifted(BASE, 6), unsupported=0.40))
    report.reference_faithfulness = {"numbers": 100, "unsupported_numbers": 2, "entities": 100,
                                     "unsupported_entities": 60}
    decision = decide(report, PromotionConfig())
    assert [c.name for c in decision.failed] == ["guard unsupported_number_share"], "numbers: references add none"
    entities = next(c.detail for c in decision.checks if c.name == "guard unsupported_entity_share")
    assert "vs the reference summaries' 0.600 (60 of 100)" in entities


def test_a_guard_worse_on_a_handful_of_counts_is_not_a_regression():
    """3 unsupported numbers of 8 against 2 of 15 (the demo's first run): worse, but within chance."""
    candidate = _model("candidate", _shifted(BASE, 6))
    candidate.faithfulness |= {"numbers": 8, "unsupported_numbers": 3, "unsupported_number_share": 0.375}
    base = _model("base", BASE)
    base.faithfulness |= {"numbers": 15, "unsupported_numbers": 2, "unsupported_number_share": 0.1333}
    decision = decide(_report(base=base, candidate=candidate), PromotionConfig())
    assert decision.promote, decision.reasons
    assert "not significantly" in next(c.detail for c in decision.checks if c.name == "guard unsupported_number_share")


def test_a_new_safety_flag_blocks_promotion_without_a_significance_test():
    candidate = _model("candidate", _shifted(BASE, 6))
    candidate.safety = {"probes": 12, "flagged": 1, "rate": 1 / 12, "flagged_outputs": []}
    decision = decide(_report(base=_model("base", BASE), candidate=candidate), PromotionConfig())
    assert [c.name for c in decision.failed] == ["guard safety_flag_rate"]


def test_absolute_floors_hold_even_against_a_weak_incumbent():
    report = _report(base=_model("base", [0.0] * ROWS),
                     candidate=_model("candidate", _scores(6, 1, seed=5), degenerate=0.5))
    decision = decide(report, PromotionConfig(min_score=10.0, max_degenerate_rate=0.2))
    assert {c.name for c in decision.failed} >= {"floor", "degenerate_ceiling"}


def _champion(adapter_dir: str = "/adapters/champion", **tags: str) -> RegisteredModel:
    return RegisteredModel("3", "run", {"adapter_dir": adapter_dir, **tags}, 0.0)


def test_a_champion_not_re_evaluated_must_beat_its_recorded_score():
    report = _report(base=_model("base", BASE), candidate=_model("candidate", _shifted(BASE, 6)))
    assert decide(report, PromotionConfig(), _champion(rougeL="20.0")).outcome is Outcome.PROMOTE
    decision = decide(report, PromotionConfig(), _champion(rougeL="40.0"))
    assert decision.outcome is Outcome.REFUSE and not decision.passed
    assert [c.name for c in decision.failed] == ["recorded_champion"]


def test_the_champion_itself_is_neither_promoted_again_nor_refused():
    candidate = _model("candidate", _scores(6, 1, seed=5), degenerate=0.5)  # it would fail every check
    candidate.adapter_dir = "/adapters/champion"
    decision = decide(_report(base=_model("base", BASE), candidate=candidate), PromotionConfig(), _champion())
    assert decision.outcome is Outcome.ALREADY_CHAMPION and decision.passed and not decision.promote
    assert decision.reasons == ["the candidate is already the champion"]


def test_comparability_and_identity_of_the_champion():
    champion = _champion(base_sha256="abc")
    assert is_comparable(champion, "abc") and not is_comparable(champion, "def") and not is_comparable(None, "abc")
    assert is_champion(champion, Path("/adapters/champion")) and not is_champion(champion, "/adapters/other")
    assert not is_champion(None, "/adapters/champion")


def test_scores_flatten_for_mlflow_and_parse_back():
    table = ScoreTable({"candidate": {"rougeL": (30.0, 28.0, 32.0), "rouge1": (40.0, 38.5, 41.5)},
                        "lead": {"rougeL": (20.0, 19.0, 21.0)}})
    flat = table.flatten()
    assert (flat["candidate_rougeL"], flat["candidate_rougeL_low"], flat["lead_rougeL_high"]) == (30.0, 28.0, 21.0)
    other_metrics = {"candidate_degenerate_rate": 0.1, "train_seconds": 5.0}
    assert ScoreTable.parse(flat | other_metrics) == table
    assert table.flatten(bounds=False) == {"candidate_rougeL": 30.0, "candidate_rouge1": 40.0, "lead_rougeL": 20.0}


def test_an_unknown_guard_is_a_configuration_error():
    with pytest.raises(ValidationError, match="unknown guard metric.*toxicity"):
        PromotionConfig(guard_tolerance={"toxicity": 0.1})


def test_a_candidate_whose_summaries_change_with_demographics_is_refused():
    base, candidate = _model("base", BASE), _model("candidate", _shifted(BASE, 6))
    base.bias = {"pairs": 40, "differing": 2, "rate": 0.05}
    candidate.bias = {"pairs": 40, "differing": 16, "rate": 0.4}
    decision = decide(_report(base=base, candidate=candidate), PromotionConfig())
    assert [c.name for c in decision.failed] == ["guard counterfactual_gap_rate"]
    assert "0.400 (16 of 40) vs the base's 0.050 (2 of 40)" in decision.failed[0].detail
    candidate.bias = {"pairs": 40, "differing": 4, "rate": 0.1}  # within the 0.1 tolerance
    assert decide(_report(base=base, candidate=candidate), PromotionConfig()).promote

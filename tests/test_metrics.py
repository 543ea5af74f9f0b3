"""BLEU and chrF beside ROUGE: sacrebleu's scores, per example, best over a row's references."""

import math

import pytest
import sacrebleu

from tuneforge.evaluation.metrics import METRICS, mean_scores, metric_spec, score_examples


def test_bleu_matches_the_value_worked_out_by_hand():
    # n-gram precisions 5/6, 3/5, 2/4, 1/3; same length, so no brevity penalty
    (scores,) = score_examples(["the cat sat on the mat"], [["the cat sat on a mat"]])
    assert scores["bleu"] == pytest.approx(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, abs=0.01)
    assert scores["bleu"] == pytest.approx(53.73, abs=0.01)


def test_scores_agree_with_sacrebleus_corpus_functions_on_one_sentence():
    prediction, reference = "We propose a faster decoder for summaries.", "A faster decoder is proposed."
    (scores,) = score_examples([prediction], [[reference]])
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf([prediction], [[reference]]).score, abs=1e-3)
    assert scores["bleu"] == pytest.approx(
        sacrebleu.sentence_bleu(prediction, [reference], smooth_method="exp").score, abs=1e-3)


def test_identity_scores_100_disjoint_text_scores_near_0_and_the_best_reference_counts():
    perfect, disjoint, multi = score_examples(
        ["adapters match full fine-tuning", "xyz qqq", "adapters match full fine-tuning"],
        [["adapters match full fine-tuning"], ["adapters match full fine-tuning"],
         ["something else entirely", "adapters match full fine-tuning"]])
    assert perfect["bleu"] == 100 and perfect["chrf"] == 100
    assert disjoint["bleu"] < 5 and disjoint["chrf"] < 5
    assert multi["bleu"] == 100 and multi["chrf"] == 100
    assert set(perfect) == set(METRICS)


def test_means_and_spec_cover_every_metric():
    per_example = score_examples(["a b c d", "e f g h"], [["a b c d"], ["e f x y"]])
    means = mean_scores(per_example)
    assert list(means) == list(METRICS)
    assert math.isclose(means["chrf"], round((per_example[0]["chrf"] + per_example[1]["chrf"]) / 2, 3))
    assert metric_spec()["sacrebleu"] == sacrebleu.__version__

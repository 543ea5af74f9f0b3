import math

import numpy as np
import pytest

from tuneforge.evaluation.stats import PairedResult, bootstrap_interval, paired_comparison


def test_interval_of_a_large_normal_sample_matches_the_normal_theory_interval():
    sigma, n = 2.0, 1000
    sample = np.random.default_rng(1).normal(10.0, sigma, n)
    half_width = 1.96 * sigma / math.sqrt(n)

    low, high = bootstrap_interval(sample)

    assert low == pytest.approx(sample.mean() - half_width, abs=0.03)
    assert high == pytest.approx(sample.mean() + half_width, abs=0.03)


def test_a_wider_confidence_gives_a_wider_interval():
    sample = np.random.default_rng(2).normal(0.0, 1.0, 50)
    narrow, wide = bootstrap_interval(sample, confidence=0.8), bootstrap_interval(sample, confidence=0.99)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


def test_the_interval_covers_the_true_mean_about_as_often_as_its_confidence():
    rng = np.random.default_rng(3)
    covered = 0
    for seed in range(200):
        low, high = bootstrap_interval(rng.normal(5.0, 3.0, 30), resamples=1000, seed=seed)
        covered += low <= 5.0 <= high
    # 95% of 200 is 190; the binomial sd is about 3, and BCa runs slightly narrow on 30 values.
    assert 178 <= covered <= 199


@pytest.mark.parametrize("values", [[42.5] * 7, [42.5]])
def test_a_constant_sample_or_a_single_value_has_a_zero_width_interval(values):
    assert bootstrap_interval(values) == (42.5, 42.5)


def test_a_two_value_sample_still_gets_a_finite_interval():
    low, high = bootstrap_interval([0.0, 1.0])
    assert 0.0 <= low <= high <= 1.0


def test_an_empty_sample_is_rejected():
    with pytest.raises(ValueError, match="at least one value"):
        bootstrap_interval([])


def test_intervals_are_rounded_and_deterministic_for_a_seed():
    sample = np.random.default_rng(4).normal(0.0, 1.0, 40)
    interval = bootstrap_interval(sample, seed=7)
    assert interval == bootstrap_interval(sample, seed=7)
    assert all(bound == round(bound, 4) for bound in interval)


def _scores(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(30.0, 10.0, n)


def test_a_clearly_better_model_is_significant_and_its_interval_excludes_zero():
    against = _scores(40, 5)
    model = against + 5.0 + np.random.default_rng(6).normal(0.0, 2.0, 40)

    result = paired_comparison(model, against)

    assert result.p_value < 0.01
    assert 0.0 < result.interval[0] < result.mean_difference < result.interval[1]
    assert result.wins > 35 and result.wins + result.losses + result.ties == 40


def test_an_identical_model_is_not_better():
    scores = _scores(20, 7)
    result = paired_comparison(scores, scores)
    assert result == PairedResult(mean_difference=0.0, interval=(0.0, 0.0), p_value=1.0, wins=0, losses=0, ties=20)


def test_a_slightly_better_but_noisy_model_on_few_rows_is_not_significant():
    noise = np.random.default_rng(8).normal(0.0, 10.0, 10)
    differences = noise - noise.mean() + 0.5  # exactly +0.5 on average, sd about 10
    against = _scores(10, 9)

    result = paired_comparison(against + differences, against)

    assert result.mean_difference == pytest.approx(0.5)
    assert result.p_value > 0.05
    assert result.interval[0] < 0.0 < result.interval[1]


def test_a_worse_model_gets_a_large_p_value():
    against = _scores(30, 10)
    model = against - 3.0 + np.random.default_rng(11).normal(0.0, 2.0, 30)
    result = paired_comparison(model, against)
    assert result.p_value > 0.5
    assert result.mean_difference < 0.0


def test_few_rows_get_the_exact_sign_flip_p_value():
    # All 5 differences positive: only 1 of the 2**5 sign patterns has a mean as large, so p = 1/32.
    result = paired_comparison([2.0, 3.0, 4.0, 5.0, 6.0], [1.0, 1.0, 1.0, 1.0, 1.0])
    assert result.p_value == pytest.approx(1 / 32, abs=1e-4)


@pytest.mark.parametrize(("model", "p_value"), [([3.0], 0.5), ([-1.0], 1.0)])
def test_a_single_pair_gets_the_exact_p_value(model, p_value):
    result = paired_comparison(model, [1.0])
    assert result.p_value == p_value
    assert result.interval == (result.mean_difference, result.mean_difference)


def test_ties_wins_and_losses_are_counted():
    result = paired_comparison([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 5.0, 4.0])
    assert (result.wins, result.losses, result.ties) == (1, 1, 2)


def test_mismatched_lengths_name_both_lengths():
    with pytest.raises(ValueError, match=r"model has 3, against has 2"):
        paired_comparison([1.0, 2.0, 3.0], [1.0, 2.0])


def test_the_paired_comparison_is_deterministic_for_a_seed():
    against = _scores(60, 12)
    model = against + np.random.default_rng(13).normal(0.5, 5.0, 60)
    assert paired_comparison(model, against, seed=3) == paired_comparison(model, against, seed=3)

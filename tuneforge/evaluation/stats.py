"""Uncertainty of per-example scores: bootstrap intervals of a mean, and paired comparisons of two models."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class PairedResult:
    """``model`` minus ``against`` on the same rows."""

    mean_difference: float
    interval: tuple[float, float]  # bootstrap confidence interval of the mean difference
    p_value: float  # one-sided: H0 "model is not better than against"
    wins: int
    losses: int
    ties: int


def bootstrap_interval(
    values: Sequence[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Confidence interval of the mean by the BCa bootstrap (``scipy.stats.bootstrap``), rounded to 4 decimals.

    BCa corrects the bias and skew of the plain percentile interval, which matters for per-example ROUGE (bounded at
    0, right-skewed). A constant sample (or a single value) has no spread to resample: its interval is (v, v).
    """
    sample = np.asarray(values, dtype=float)
    if sample.size == 0:
        raise ValueError("bootstrap_interval needs at least one value, got an empty sequence")
    if np.ptp(sample) == 0:
        value = round(float(sample[0]), 4)
        return value, value
    low, high = _bca_interval(sample, confidence, resamples, seed)
    return round(low, 4), round(high, 4)


def _bca_interval(sample: np.ndarray, confidence: float, resamples: int, seed: int) -> tuple[float, float]:
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            # BCa degenerates (NaN bounds, a DegenerateDataWarning) on tiny samples with few distinct values;
            # the percentile interval is then the fallback.
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            result = stats.bootstrap(
                (sample,), np.mean, n_resamples=resamples, confidence_level=confidence, method=method,
                rng=np.random.default_rng(seed),
            )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if np.isfinite(low) and np.isfinite(high):
            return low, high
    mean = float(sample.mean())
    return mean, mean


def paired_comparison(
    model: Sequence[float],
    against: Sequence[float],
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> PairedResult:
    """Compare two models' scores on the same rows, pair by pair.

    The p-value is that of a one-sided sign-flip permutation test on the paired differences
    (``scipy.stats.permutation_test`` with ``permutation_type="samples"``, ``alternative="greater"``): under H0 the
    sign of each row's difference is as likely either way, so the observed mean difference is ranked among the means
    of randomly sign-flipped differences. It is chosen over the paired bootstrap (Koehn 2004; Berg-Kirkpatrick et al.
    2012) because it is exact in finite samples — every one of the 2**n sign patterns is enumerated when
    ``2**n <= resamples`` — and otherwise uses the Phipson-Smyth (count + 1) / (resamples + 1) estimate, which never
    reports 0; the paired bootstrap's p-value needs a shift to the null, is only asymptotically valid and is
    anti-conservative on the few dozen rows an evaluation sample holds. The interval is the bootstrap interval of the
    mean difference (see ``bootstrap_interval``). Both are deterministic for a given ``seed``.
    """
    if len(model) != len(against):
        raise ValueError(f"paired_comparison needs scores for the same rows: model has {len(model)}, "
                         f"against has {len(against)}")
    differences = np.asarray(model, dtype=float) - np.asarray(against, dtype=float)
    if differences.size == 0:
        raise ValueError("paired_comparison needs at least one pair of scores, got empty sequences")
    wins, losses = int((differences > 0).sum()), int((differences < 0).sum())
    return PairedResult(
        mean_difference=round(float(differences.mean()), 4),
        interval=bootstrap_interval(differences, confidence, resamples, seed),
        p_value=_sign_flip_p_value(differences, resamples, seed),
        wins=wins,
        losses=losses,
        ties=differences.size - wins - losses,
    )


def _sign_flip_p_value(differences: np.ndarray, resamples: int, seed: int) -> float:
    if not differences.any():
        return 1.0
    if differences.size == 1:
        # scipy needs two observations; the exact null of one is {d, -d}, so P(mean >= d) is 1/2 for d > 0.
        return 0.5 if differences[0] > 0 else 1.0
    result = stats.permutation_test(
        (differences,), np.mean, permutation_type="samples", alternative="greater", n_resamples=resamples,
        rng=np.random.default_rng(seed),
    )
    return round(float(result.pvalue), 4)

"""The canary against the champion on the traffic they both answered: ratings, latency and output quality, each
with a bootstrap interval, and the canary-minus-champion difference with its own (the two groups resampled
independently: different requests went to each).

Reads the request and feedback logs (``tuneforge/serving``) of the days asked for; a rating counts for the version
that gave the answer rated.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from tuneforge.evaluation.output_checks import degenerate_flags, unsupported_content
from tuneforge.evaluation.stats import bootstrap_interval

SIGNALS = ("rating", "latency_seconds", "degenerate", "unsupported_number_share")


def _signals(answers: list[dict], ratings: list[int]) -> dict[str, list[float]]:
    grounded = [unsupported_content(a["output"], a["document"]) for a in answers if a.get("document")]
    return {
        "rating": [float(r) for r in ratings],
        "latency_seconds": [float(a["seconds"]) for a in answers if a.get("seconds") is not None],
        "degenerate": [float(any(degenerate_flags(a["output"], a.get("finish_reason") == "stop").values()))
                       for a in answers],
        # per answer holding numbers: the share of its numbers its document does not hold
        "unsupported_number_share": [g.unsupported_numbers / g.numbers for g in grounded if g.numbers],
    }


def _difference(canary: list[float], champion: list[float], confidence: float, resamples: int,
                seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    a, b = np.asarray(canary), np.asarray(champion)
    differences = (rng.choice(a, (resamples, a.size)).mean(axis=1) - rng.choice(b, (resamples, b.size)).mean(axis=1))
    tail = (1 - confidence) / 2 * 100
    return float(np.percentile(differences, tail)), float(np.percentile(differences, 100 - tail))


def compare_versions(requests: Iterable[dict], feedback: Iterable[dict], champion: str, canary: str,
                     confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> dict:
    """Per signal: each version's mean, interval and count, and the canary's difference from the champion."""
    answers = [e for e in requests if e.get("status", 200) == 200 and e.get("output") is not None]
    by_version = {version: [a for a in answers if str(a.get("version")) == version] for version in (champion, canary)}
    rated = [f for f in feedback if f.get("rating") is not None]
    ratings = {version: [f["rating"] for f in rated if str(f.get("version")) == version]
               for version in (champion, canary)}
    signals = {version: _signals(by_version[version], ratings[version]) for version in (champion, canary)}
    report: dict = {"champion": champion, "canary": canary, "confidence": confidence,
                    "requests": {version: len(by_version[version]) for version in (champion, canary)},
                    "signals": {}}
    for signal in SIGNALS:
        entry: dict = {}
        for role, version in (("champion", champion), ("canary", canary)):
            values = signals[version][signal]
            entry[role] = {
                "n": len(values), "mean": float(np.mean(values)) if values else None,
                "interval": bootstrap_interval(values, confidence, resamples, seed) if len(values) > 1 else None,
            }
        a, b = signals[canary][signal], signals[champion][signal]
        entry["difference"] = (None if not a or not b else
                               {"mean": float(np.mean(a) - np.mean(b)),
                                "interval": _difference(a, b, confidence, resamples, seed)
                                if len(a) > 1 and len(b) > 1 else None})
        report["signals"][signal] = entry
    return report


def render(report: dict) -> str:
    """The comparison as a Markdown table."""
    lines = [f"Canary version {report['canary']} against champion version {report['champion']} "
             f"({report['requests'][report['canary']]} and {report['requests'][report['champion']]} answered "
             f"requests; {report['confidence']:.0%} bootstrap intervals)", "",
             "| signal | champion | canary | canary - champion |", "|---|---|---|---|"]
    for signal, entry in report["signals"].items():
        cells = [_cell(entry["champion"]), _cell(entry["canary"])]
        difference = entry["difference"]
        cells.append("-" if difference is None else _cell({"n": None, **difference}))
        lines.append(f"| {signal} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(figure: dict) -> str:
    if figure.get("mean") is None:
        return "-"
    interval = figure.get("interval")
    text = f"{figure['mean']:.3g}" + (f" [{interval[0]:.3g}, {interval[1]:.3g}]" if interval else "")
    return text + (f" (n={figure['n']})" if figure.get("n") is not None else "")

"""Offline language identification with py3langid (the langid.py model: 97 languages, shipped in the wheel).

Classification cost grows with the text, so the first ``SAMPLE_CHARS`` characters decide for most documents; a
document whose sample is not confidently one of the wanted languages (a start full of citations, URLs or
formulas) is classified again on ``SECOND_LOOK_CHARS`` before it can be rejected.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cache

SAMPLE_CHARS = 200
SECOND_LOOK_CHARS = 1000


@cache
def _identifier():  # noqa: ANN202 - py3langid has no type hints
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(text: str, wanted: Collection[str] = (), min_probability: float = 0.0) -> tuple[str, float]:
    """ISO 639-1 code and probability of the most likely language of ``text``; a short sample that does not
    confidently give one of ``wanted`` gets a second, longer look."""
    language, probability = _identifier().classify(text[:SAMPLE_CHARS])
    if (language not in wanted or probability < min_probability) and len(text) > SAMPLE_CHARS:
        language, probability = _identifier().classify(text[:SECOND_LOOK_CHARS])
    return language, float(probability)

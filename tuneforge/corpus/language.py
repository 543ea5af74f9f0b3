"""Offline language identification with py3langid (the langid.py model: 97 languages, shipped in the wheel).

Only the first ``SAMPLE_CHARS`` characters are classified: the language of a document is settled long before its
end, and classification cost grows with the text.
"""

from __future__ import annotations

from functools import cache

SAMPLE_CHARS = 200


@cache
def _identifier():  # noqa: ANN202 - py3langid has no type hints
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(text: str) -> tuple[str, float]:
    """ISO 639-1 code and probability of the most likely language of ``text``."""
    language, probability = _identifier().classify(text[:SAMPLE_CHARS])
    return language, float(probability)

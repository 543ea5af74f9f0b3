"""Offline language identification with py3langid (the langid.py model: 97 languages, shipped in the wheel).

Classification cost grows with the text, so the first ``SAMPLE_CHARS`` characters decide for most documents; a
document whose sample is not confidently one of the wanted languages (a start full of citations, URLs or
formulas) is classified again on ``SECOND_LOOK_CHARS`` before it can be rejected.

``identify_many`` runs the same model over a batch at once: py3langid walks its byte automaton one byte at a time in
Python (about 0.1 ms for a 200-character sample); here the walk steps every text of the batch together, one numpy
gather per byte position, and the naive Bayes scores are one sparse product of the feature counts with the model.
The languages are py3langid's and the probabilities agree to about 1e-4 (float32 sums in another order);
``tests/test_language.py`` holds the batch to ``classify``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Sequence
from functools import cache

import numpy as np
from scipy import sparse

SAMPLE_CHARS = 200
SECOND_LOOK_CHARS = 1000


@cache
def _identifier():  # noqa: ANN202 - py3langid has no type hints
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(text: str, wanted: Collection[str] = (), min_probability: float = 0.0) -> tuple[str, float]:
    """ISO 639-1 code and probability of the most likely language of ``text``; a short sample that does not
    confidently give one of ``wanted`` gets a second, longer look."""
    return identify_many([text], wanted, min_probability)[0]


def identify_many(
    texts: Sequence[str], wanted: Collection[str] = (), min_probability: float = 0.0,
) -> list[tuple[str, float]]:
    """``identify`` for each of ``texts``, computed as one batch."""
    found = _Batch.model().classify([text[:SAMPLE_CHARS] for text in texts])
    again = [index for index, (language, probability) in enumerate(found)
             if (language not in wanted or probability < min_probability) and len(texts[index]) > SAMPLE_CHARS]
    if again:
        for index, result in zip(again, _Batch.model().classify([texts[i][:SECOND_LOOK_CHARS] for i in again]),
                                 strict=True):
            found[index] = result
    return found


class _Batch:
    """py3langid's model as numpy arrays, and its ``classify`` over many texts at once."""

    def __init__(self, identifier) -> None:  # noqa: ANN001 - py3langid's LanguageIdentifier
        automaton = identifier.tk_nextmove  # an array.array: viewed, not copied (39 MB)
        self.next_state = np.frombuffer(automaton, dtype=np.dtype(automaton.typecode))
        self.row_base = np.asarray(identifier.tk_row, dtype=np.int64) << 8
        self.feature_of = np.asarray(identifier.tk_output, dtype=np.int32)  # -1: no feature ends in this state
        # Features x classes. py3langid keeps float16 (28 MB); a sparse product needs one dtype, and converting per
        # batch would cost more than the product, so float32 (57 MB) once per process.
        self.table = np.asarray(identifier.nb_ptc, dtype=np.float32)
        self.prior = np.asarray(identifier.nb_pc, dtype=np.float32)
        self.classes = list(identifier.nb_classes)
        # A label listed twice (a script alias, srl -> sr): its second column folds into the first.
        first: dict[str, int] = {}
        self.aliases: list[tuple[int, int]] = []
        for column, label in enumerate(self.classes):
            if label in first:
                self.aliases.append((first[label], column))
            else:
                first[label] = column

    @staticmethod
    @cache
    def model() -> _Batch:
        return _Batch(_identifier())

    def classify(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        if not texts:
            return []
        encoded = [_encode(text) for text in texts]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        scores = self._scores(encoded, lengths)
        scores *= (1.0 / np.sqrt(np.maximum(lengths, 1))).astype(np.float32)[:, None]
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        scores /= scores.sum(axis=1, keepdims=True)
        for kept, folded in self.aliases:
            scores[:, kept] += scores[:, folded]
            scores[:, folded] = 0.0
        best = scores.argmax(axis=1)
        return [(self.classes[b], float(scores[row, b])) for row, b in enumerate(best)]

    def _scores(self, encoded: list[bytes], lengths: np.ndarray) -> np.ndarray:
        """Raw naive Bayes scores, texts x classes; 0 for a text in which no feature occurs (py3langid's abstention)."""
        texts, longest = len(encoded), int(lengths.max())
        data = np.zeros((longest, texts), dtype=np.uint8)  # byte position x text: each step reads one row
        for column, text in enumerate(encoded):
            data[: len(text), column] = np.frombuffer(text, dtype=np.uint8)
        features = np.empty((longest, texts), dtype=np.int32)
        state = np.zeros(texts, dtype=self.next_state.dtype)
        for position in range(longest):
            state = self.next_state[self.row_base[state] + data[position]]
            features[position] = self.feature_of[state]
        present = (features >= 0) & (np.arange(longest)[:, None] < lengths[None, :])
        _, text_of = np.nonzero(present)
        counts = sparse.csr_matrix(  # converting to CSR sums the repeated (text, feature) pairs into counts
            (np.ones(len(text_of), dtype=np.float32), (text_of, features[present])),
            shape=(texts, len(self.table)),
        )
        np.log1p(counts.data, out=counts.data)
        scores = np.asarray(counts @ self.table)
        scores[np.diff(counts.indptr) > 0] += self.prior
        return scores


def _encode(text: str) -> bytes:
    """py3langid's input normalization: an all-capitals text lower-cased, NFC, UTF-8 (lone surrogates kept)."""
    if text.isupper():
        text = text.lower()
    return unicodedata.normalize("NFC", text).encode("utf8", errors="surrogatepass")

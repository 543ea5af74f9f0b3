"""Batch language identification gives py3langid's own decisions, on every kind of text a corpus may hold."""

import random

import pytest
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from tuneforge.corpus.language import SAMPLE_CHARS, SECOND_LOOK_CHARS, identify, identify_many

SENTENCES = [
    "The model is trained on a large corpus of scientific abstracts and evaluated with ROUGE.",
    "Der schnelle braune Fuchs springt über den faulen Hund, und niemand hält ihn auf.",
    "Le renard brun rapide saute par-dessus le chien paresseux dans la prairie.",
    "El rápido zorro marrón salta sobre el perro perezoso en el campo.",
    "Быстрая коричневая лиса прыгает через ленивую собаку.",
    "敏捷的棕色狐狸跳过了懒狗。", "素早い茶色の狐がのろまな犬を飛び越える。",
    "빠른 갈색 여우가 게으른 개를 뛰어넘는다.",
    "Η γρήγορη καφέ αλεπού πηδά πάνω από τον τεμπέλη σκύλο.", "الثعلب البني السريع يقفز فوق الكلب الكسول.",
]
EDGE_CASES = ["", " ", "12345 678 90", "ÉCOLE NORMALE SUPÉRIEURE DE PARIS", "x\ud800y", "a" * 300, "☃" * 50,
              "[1] https://arxiv.org/abs/1706.03762 [2] doi:10.18653/v1/N19-1423", "e" * 2000]


@pytest.fixture(scope="module")
def reference():
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        words = " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(1, 12))).split()
        rng.shuffle(words)
        texts.append(" ".join(words)[: rng.choice((5, 50, SAMPLE_CHARS, SECOND_LOOK_CHARS, 3000))])
    return texts + EDGE_CASES


def test_a_batch_gives_py3langids_language_and_probability_for_each_text(reference):
    texts = [text[:SAMPLE_CHARS] for text in _texts(400, seed=0)]
    got = identify_many(texts)
    for text, (language, probability) in zip(texts, got, strict=True):
        expected_language, expected_probability = reference.classify(text)
        assert language == expected_language, text
        # float32 sums in another order: the last digits may differ
        assert probability == pytest.approx(expected_probability, abs=1e-3), text


def test_a_batch_decides_as_each_text_alone_would_and_in_order():
    texts = _texts(200, seed=1)
    assert [language for language, _ in identify_many(texts, {"en"}, 0.5)] == [
        identify(text, {"en"}, 0.5)[0] for text in texts]
    assert identify_many([]) == []


def test_a_text_not_confidently_wanted_gets_the_second_look(reference):
    citations = "[1] https://arxiv.org/abs/1706.03762 [2] https://doi.org/10.18653/v1/N19-1423 [3] ibid. pp. 12-19; "
    text = citations * 2 + SENTENCES[0] * 10
    assert reference.classify(text[:SAMPLE_CHARS])[0] != "en"
    assert identify_many([text, SENTENCES[1]], {"en"}, 0.5) == [
        pytest.approx(reference.classify(text[:SECOND_LOOK_CHARS]), abs=1e-3),
        pytest.approx(reference.classify(SENTENCES[1]), abs=1e-3),
    ]

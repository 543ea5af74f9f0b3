"""The word sets that tell a term from a name: the same answers as wordfreq, worked out once and cached."""

from __future__ import annotations

import json
import random

import pytest
from wordfreq import get_frequency_dict, zipf_frequency

from tuneforge.pii import lexicon as lex


@pytest.fixture(scope="module")
def sets() -> lex.Lexicon:
    return lex.lexicon()


@pytest.mark.parametrize("wordlist", lex.WORDLISTS)
def test_the_english_specific_words_are_those_wordfreq_gives(sets, wordlist):
    words = [word for word in get_frequency_dict("en", wordlist) if lex.lookup_key(word) == word]
    for word in random.Random(0).sample(words, 3000):
        english = zipf_frequency(word, "en", wordlist=wordlist)
        other = max(zipf_frequency(word, language, wordlist=wordlist) for language in lex.OTHER_LANGUAGES)
        assert (word in sets.english[wordlist]) is lex.is_english_specific(word, english, other), word


def test_brands_are_latin_words_as_frequent_in_russian_text_as_elsewhere(sets):
    for word in ("microsoft", "google", "twitter", "java"):
        assert word in sets.brands
    for word in ("john", "maria", "andrey", "smith", "b", "ii"):
        assert word not in sets.brands
    for word in sets.brands:
        russian = zipf_frequency(word, "ru", wordlist="small")
        elsewhere = max(zipf_frequency(word, language, wordlist="large") for language in ("en", *lex.OTHER_LANGUAGES))
        assert lex.is_brand(russian, elsewhere), word


def test_lookup_keys_are_wordfreqs_forms_of_one_token_words():
    assert lex.lookup_key("Straße") == "strasse"
    assert lex.lookup_key("José") == "josé"
    assert lex.lookup_key("fused-multiply") is None
    assert lex.lookup_key("o'brien") is None


def test_the_sets_are_worked_out_once_and_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    built = lex.lexicon.__wrapped__()
    path = tmp_path / "tuneforge" / f"{lex.CACHE_NAME}.json"
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert stored["key"]["wordfreq"] and set(stored["english"]) == set(lex.WORDLISTS)

    def no_build() -> lex.Lexicon:
        raise AssertionError("the cache should have been read")

    monkeypatch.setattr(lex, "build", no_build)
    assert lex.lexicon.__wrapped__() == built

    stored["key"]["brand"] = [0, 0, 0]  # thresholds that changed since: the file is stale
    path.write_text(json.dumps(stored), encoding="utf-8")
    monkeypatch.setattr(lex, "build", lambda: built)
    assert lex.lexicon.__wrapped__() == built
    assert json.loads(path.read_text(encoding="utf-8"))["key"] == lex._cache_key(), "the stale file is replaced"


def test_a_read_only_cache_costs_only_the_work(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    monkeypatch.setattr(lex, "build", lambda: lex.Lexicon({"large": frozenset(), "small": frozenset()}, frozenset()))
    assert lex.lexicon.__wrapped__().brands == frozenset()

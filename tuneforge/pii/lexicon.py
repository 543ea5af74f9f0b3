"""Which words are English words and which are brands, for telling a term from a name (``tuneforge.pii.names``):
derived from wordfreq's frequency lists once per machine, then read from a cache.

Asking wordfreq directly means loading its lists of English, German, Spanish and French text in every cleaning
worker (about 0.6 s and 170 MB each). The detector only asks yes-or-no questions of those lists, so the answers for
every word the lists hold are worked out once (about 2 s), written to ``$XDG_CACHE_HOME/tuneforge/`` under a key of
the wordfreq version and the rules' thresholds, and read back as three sets in milliseconds.

- *English-specific*: common in English text and much rarer in German, Spanish and French text (Zipf frequencies:
  names are written alike in every language, "john" 5.4 in English and 4.9 in German, "pruning" 3.0 and 1.3), or,
  for a word ending in "-ing", English-specific by a smaller margin ("pruning", not "fleming"). Asked of wordfreq's
  ``large`` lists, and of its ``small`` ones (words of Zipf 3 and up) where only common words matter.
- *Brand*: written in Latin letters in Russian text about as often as in English, German, Spanish and French text,
  where people's names are written in Cyrillic: "microsoft" has Zipf frequency 4.4 in Russian and 4.4 in English,
  "twitter" 4.3 and 4.8 (5.1 in Spanish), "john" 3.4 and 5.4. Only frequent brands count (Zipf 3.5 and up in
  Russian text), which leaves out the brands named after people but for a handful ("Ford", "Mercedes").
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tuneforge.atomic import write_text_atomically
from tuneforge.layout import user_cache_dir

OTHER_LANGUAGES = ("de", "es", "fr")
ENGLISH_MIN_ZIPF, ENGLISH_MARGIN = 2.5, 0.8
ING = re.compile(r".{4}ings?$")
ING_MARGIN = 0.7
BRAND_MIN_ZIPF, BRAND_MARGIN = 3.5, 0.8
BRAND_MIN_LETTERS = 3  # "ibm", not "b" nor "ii"
WORDLISTS = ("large", "small")
CACHE_NAME = "pii-lexicon"


@dataclass(frozen=True)
class Lexicon:
    english: dict[str, frozenset[str]]  # wordlist -> English-specific words
    brands: frozenset[str]


def lookup_key(word: str) -> str | None:
    """The form wordfreq files ``word`` under (case-folded, NFC), or None for a word its tokenizer would not read as
    one token of letters (hyphens, apostrophes, digits)."""
    key = unicodedata.normalize("NFC", word.casefold())
    return key if key.isalpha() else None


def is_english_specific(word: str, english: float, other: float) -> bool:
    """The rule, from ``word``'s Zipf frequency in English text and its highest in German, Spanish and French text."""
    margin = english - other
    return (english >= ENGLISH_MIN_ZIPF and margin >= ENGLISH_MARGIN) or (
        ING.search(word) is not None and english > 0 and margin >= ING_MARGIN)


def is_brand(russian: float, elsewhere: float) -> bool:
    """The rule, from a word's Zipf frequency in Russian text and its highest in the four others."""
    return russian >= BRAND_MIN_ZIPF and elsewhere - russian <= BRAND_MARGIN


@cache
def lexicon() -> Lexicon:
    """The sets, from the cache file, or worked out and written there (a read-only cache only costs the work)."""
    path, key = cache_path(), _cache_key()
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["key"] == key:
            return Lexicon({name: frozenset(data["english"][name]) for name in WORDLISTS}, frozenset(data["brands"]))
    found = build()
    data = {"key": key, "english": {name: sorted(words) for name, words in found.english.items()},
            "brands": sorted(found.brands)}
    with contextlib.suppress(OSError):
        write_text_atomically(path, json.dumps(data, ensure_ascii=False))
    return found


def build() -> Lexicon:
    """The sets, from wordfreq's lists, which are let go of afterwards (about 300 MB)."""
    try:
        return _build()
    finally:
        from wordfreq import get_frequency_dict, get_frequency_list

        get_frequency_dict.cache_clear()
        get_frequency_list.cache_clear()


def _build() -> Lexicon:
    english = {}
    for wordlist in WORDLISTS:
        tables = {language: zipf_table(language, wordlist) for language in ("en", *OTHER_LANGUAGES)}
        english[wordlist] = frozenset(
            word for word, zipf in tables["en"].items()
            if is_english_specific(word, zipf, max(tables[language].get(word, 0.0) for language in OTHER_LANGUAGES)))
    large = [zipf_table(language, "large") for language in ("en", *OTHER_LANGUAGES)]
    brands = frozenset(
        word for word, zipf in zipf_table("ru", "small").items()
        if word.isascii() and word.isalpha() and len(word) >= BRAND_MIN_LETTERS
        and is_brand(zipf, max(table.get(word, 0.0) for table in large)))
    return Lexicon(english, brands)


def zipf_table(language: str, wordlist: str) -> dict[str, float]:
    """Every word of a wordfreq list with the Zipf frequency ``wordfreq.zipf_frequency`` gives it when it is one
    token: the list's centibel bucket, as a frequency rounded to three significant digits, on the Zipf scale rounded
    to two decimals."""
    from wordfreq import cB_to_freq, freq_to_zipf, get_frequency_list

    table = {}
    for index, bucket in enumerate(get_frequency_list(language, wordlist)):
        if bucket:
            frequency = cB_to_freq(-index)
            zipf = round(freq_to_zipf(round(frequency, math.floor(-math.log(frequency, 10)) + 3)), 2)
            table.update(dict.fromkeys(bucket, zipf))
    return table


def cache_path() -> Path:
    return user_cache_dir() / f"{CACHE_NAME}.json"


def _cache_key() -> dict:
    from importlib.metadata import version

    return {"wordfreq": version("wordfreq"), "english": [ENGLISH_MIN_ZIPF, ENGLISH_MARGIN, ING.pattern, ING_MARGIN],
            "brand": [BRAND_MIN_ZIPF, BRAND_MARGIN, BRAND_MIN_LETTERS], "languages": list(OTHER_LANGUAGES)}

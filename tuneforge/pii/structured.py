"""Structured identifiers by maintained recognizers: Presidio's pattern recognizers (with their checksums and context
words), python-stdnum's validators for national identifiers Presidio lacks, and phonenumbers for phone numbers
(``phones``).

Weak patterns (nine bare digits may be a passport, an SSN or a count) only count with a context word before them
("passport", "ssn", ...), scored by Presidio's own context enhancer over a cheap tokenization; no NER model runs
here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import cache
from types import ModuleType

import regex

from tuneforge.pii.kinds import Span
from tuneforge.pii.phones import PhoneFinder
from tuneforge.pii.without import without_module

# Presidio's package imports Hugging Face transformers' pipelines (4 of the 7 seconds a cleaning worker took to
# start) only to offer an NLP engine these recognizers never use, and spaCy's thinc imports torch (2 s more) for
# models that are not spaCy's small CPU pipelines.
with without_module("transformers"), without_module("torch"):
    import spacy
    from presidio_analyzer import Pattern, PatternRecognizer, RecognizerResult
    from presidio_analyzer import predefined_recognizers as presidio
    from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
    from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine

# Presidio's threshold for a weak pattern with a context word before it (its LemmaContextAwareEnhancer default).
MIN_SCORE = 0.4
LANGUAGE = "en"


class StdnumRecognizer(PatternRecognizer):
    """A national identifier Presidio has no recognizer for: a loose pattern, validated by python-stdnum.

    A ``strong`` format (distinctive separators or prefix) counts when its checksum holds; a weak one (a bare digit
    run) also needs one of its context words before it."""

    def __init__(self, entity: str, module: ModuleType, regex: str, context: list[str], strong: bool):
        super().__init__(supported_entity=entity, supported_language=LANGUAGE, context=context,
                         name=f"{entity}(stdnum)", patterns=[Pattern(entity, regex, 0.5 if strong else 0.05)])
        self.module, self.strong = module, strong

    def validate_result(self, pattern_text: str) -> bool | None:
        if not self.module.is_valid(pattern_text):
            return False
        return True if self.strong else None


class OfflineEmailRecognizer(presidio.EmailRecognizer):
    """Presidio's e-mail recognizer, with the public-suffix check on the list bundled in tldextract: the stock one
    downloads the list on first use."""

    def validate_result(self, pattern_text: str) -> bool:
        return _suffixes()(pattern_text.rsplit("@", 1)[-1]).suffix != ""


@cache
def _suffixes():  # noqa: ANN202 - tldextract.TLDExtract
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


class CardNumberRecognizer(PatternRecognizer):
    """Payment card numbers Presidio's recognizer leaves (Mastercard's 2-series, 19-digit Visa, 12-digit Maestro):
    12 to 19 digits in groups, an issuer prefix of a card network, and the Luhn checksum (python-stdnum)."""

    _ISSUERS = re.compile(r"4|5[0-9]|2(?:2[2-9]|[3-6]|7[01]|720)|3[47]|3(?:0[0-5]|[68])|35|6")

    def __init__(self) -> None:
        super().__init__(supported_entity="CARD_NUMBER", supported_language=LANGUAGE, name="CardNumber(luhn)",
                         context=["card", "credit", "debit", "visa", "mastercard", "amex", "maestro", "payment"],
                         patterns=[Pattern("compact", r"\b[2-6]\d{11,18}\b", 0.5),
                                   Pattern("in fours", r"\b[2-6]\d{3}([ -])\d{4}(?:\1\d{4}){1,2}(?:\1\d{1,3})?\b", 0.5),
                                   Pattern("amex", r"\b3[47]\d{2}([ -])\d{6}\1\d{5}\b", 0.5)])

    def validate_result(self, pattern_text: str) -> bool:
        from stdnum import luhn

        digits = re.sub(r"\D", "", pattern_text)
        return 12 <= len(digits) <= 19 and self._ISSUERS.match(digits) is not None and luhn.is_valid(digits)


_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
# A birth cue close before a date: the date is a date of birth, not any date.
_BIRTH_CUE = re.compile(
    r"(?:\bborn\b|\bbirth|\bDOB\b|\bD\.O\.B\b|\bb\.\s?$|\bgeboren|\bnée?\b|\bnacid[oa]\b)[^.\n]{0,40}$", re.IGNORECASE
)


class DateOfBirthRecognizer(presidio.DateRecognizer):
    """Presidio's date patterns plus written-out months ("12 March 1985", "March 12, 1985"), kept only after a birth
    cue ("born", "date of birth", "DOB", ...) in the 40 characters before them."""

    PATTERNS = [
        *presidio.DateRecognizer.PATTERNS,
        Pattern("d month yyyy", rf"\b(?:[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+\d{{4}}\b", 0.6),
        Pattern("month d, yyyy", rf"\b{_MONTH}\s+(?:[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?,?\s+\d{{4}}\b", 0.6),
    ]

    def __init__(self) -> None:
        super().__init__(supported_entity="DATE_OF_BIRTH", supported_language=LANGUAGE,
                         context=["born", "birth", "dob", "birthday"])

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None,
                regex_flags: int | None = None) -> list[RecognizerResult]:
        found = super().analyze(text, entities, nlp_artifacts, regex_flags=re.IGNORECASE | re.MULTILINE)
        return [result for result in found if _BIRTH_CUE.search(text, max(0, result.start - 60), result.start)]


def _pan_without_its_low_pattern() -> PatternRecognizer:
    """Presidio's Indian PAN recognizer without its "PAN (Low)" pattern: any 10-character word when four digits
    occur anywhere later in the text ("algorithms ... 2007"), which no context rescues."""
    recognizer = presidio.InPanRecognizer()
    recognizer.patterns = [pattern for pattern in recognizer.patterns if pattern.name != "PAN (Low)"]
    return recognizer


# Presidio's recognizers by the placeholder kind they feed; every one of them answers to language "en" here.
_PRESIDIO: dict[str, tuple[Callable[[], PatternRecognizer], ...]] = {
    "EMAIL": (OfflineEmailRecognizer,),
    "CARD": (presidio.CreditCardRecognizer, CardNumberRecognizer),
    "IBAN": (presidio.IbanRecognizer,),
    "IP": (presidio.IpRecognizer,),
    "NATIONAL_ID": (
        presidio.UsSsnRecognizer, presidio.UsItinRecognizer, presidio.NhsRecognizer, presidio.UkNinoRecognizer,
        presidio.EsNifRecognizer, presidio.EsNieRecognizer, presidio.ItFiscalCodeRecognizer, presidio.PlPeselRecognizer,
        presidio.FiPersonalIdentityCodeRecognizer, presidio.SePersonnummerRecognizer, presidio.InAadhaarRecognizer,
        _pan_without_its_low_pattern, presidio.AuTfnRecognizer, presidio.AuMedicareRecognizer, presidio.SgFinRecognizer,
        presidio.KrRrnRecognizer, presidio.CaSinRecognizer, presidio.DeTaxIdRecognizer, presidio.TrNationalIdRecognizer,
        presidio.ZaIdNumberRecognizer,
    ),
    "PASSPORT": (
        lambda: PatternRecognizer(
            # Any country's passport number named as one: 6 to 10 capitals and digits right after a passport word.
            supported_entity="PASSPORT_NUMBER", supported_language=LANGUAGE, name="Passport(any country)",
            patterns=[Pattern("passport", r"\b(?=[A-Z0-9]*\d)[A-Z0-9]{6,10}\b", 0.05)],
            context=["passport", "reisepass", "passeport", "paspoort", "pasaporte", "passaporto", "passport#"],
        ),
        presidio.UsPassportRecognizer, presidio.UkPassportRecognizer, presidio.DePassportRecognizer,
        presidio.EsPassportRecognizer, presidio.ItPassportRecognizer, presidio.InPassportRecognizer,
        presidio.KrPassportRecognizer,
    ),
    "DATE_OF_BIRTH": (DateOfBirthRecognizer,),
}


def _stdnum_recognizers() -> list[PatternRecognizer]:
    from stdnum.be import nn
    from stdnum.br import cpf
    from stdnum.ch import ssn
    from stdnum.cn import ric
    from stdnum.de import idnr
    from stdnum.dk import cpr
    from stdnum.fr import nir
    from stdnum.mx import curp
    from stdnum.nl import bsn
    from stdnum.no import fodselsnummer

    return [
        StdnumRecognizer("FR_NIR", nir, r"\b[12](?:[ .]?\d){12}[ .]?\d{2}\b",
                         ["securite", "sécurité", "sociale", "nir", "insee", "social"], strong=False),
        # Printed as on the carte Vitale, 1 2 2 2 3 3 2 digits, with its mod-97 key: 1 in 97 digit runs would pass.
        StdnumRecognizer("FR_NIR_PRINTED", nir, r"\b[12] \d{2} \d{2} (?:\d{2}|2[AB]) \d{3} \d{3} \d{2}\b", [],
                         strong=True),
        StdnumRecognizer("NL_BSN", bsn, r"\b\d{4}[ .]?\d{2}[ .]?\d{3}\b",
                         ["bsn", "burgerservicenummer", "sofinummer", "tax"], strong=False),
        StdnumRecognizer("DE_IDNR", idnr, r"\b[1-9]\d(?:[ /]?\d){9}\b",
                         ["steuer", "steuer-id", "steueridentifikationsnummer", "idnr", "tax", "id"], strong=False),
        StdnumRecognizer("BR_CPF", cpf, r"\b\d{3}\.\d{3}\.\d{3}-\d{2}\b", ["cpf"], strong=True),
        StdnumRecognizer("BE_NN", nn, r"\b\d{2}\.\d{2}\.\d{2}-\d{3}\.\d{2}\b", ["rijksregisternummer", "national"],
                         strong=True),
        StdnumRecognizer("BE_NN_COMPACT", nn, r"\b\d{11}\b", ["rijksregisternummer", "national", "register"],
                         strong=False),
        StdnumRecognizer("DK_CPR", cpr, r"\b\d{6}-\d{4}\b", ["cpr", "personnummer"], strong=False),
        StdnumRecognizer("NO_FNR", fodselsnummer, r"\b\d{6} ?\d{5}\b",
                         ["fødselsnummer", "fodselsnummer", "personnummer", "id"], strong=False),
        StdnumRecognizer("CN_RIC", ric, r"\b\d{17}[\dXx]\b", ["身份证", "resident", "identity", "id"], strong=True),
        StdnumRecognizer("MX_CURP", curp, r"\b[A-Z]{4}\d{6}[HM][A-Z]{5}[0-9A-Z]\d\b", ["curp"], strong=True),
        StdnumRecognizer("CH_AHV", ssn, r"\b756[ .]?\d{4}[ .]?\d{4}[ .]?\d{2}\b", ["ahv", "avs"], strong=True),
    ]


class TokenizerNlpEngine(NlpEngine):
    """Just enough NLP for Presidio's context words: spaCy's rule-based English tokenizer, lower-cased tokens as
    lemmas, no model."""

    def __init__(self) -> None:
        self.nlp = spacy.blank(LANGUAGE)

    def load(self) -> None:
        pass

    def is_loaded(self) -> bool:
        return True

    def process_text(self, text: str, language: str) -> NlpArtifacts:
        doc = self.nlp.make_doc(text)
        return NlpArtifacts(entities=[], tokens=doc, tokens_indices=[token.idx for token in doc],
                            lemmas=[token.lower_ for token in doc], nlp_engine=self, language=language)

    def process_batch(self, texts: Iterable[str], language: str, batch_size: int = 1, n_process: int = 1, **kwargs):  # noqa: ANN201
        for text in texts:
            yield text, self.process_text(text, language)

    def is_stopword(self, word: str, language: str) -> bool:
        return self.nlp.vocab[word].is_stop

    def is_punct(self, word: str, language: str) -> bool:
        return self.nlp.vocab[word].is_punct

    def get_supported_entities(self) -> list[str]:
        return []

    def get_supported_languages(self) -> list[str]:
        return [LANGUAGE]


class StructuredDetector:
    """Presidio's recognizers of the enabled ``kinds``, each run straight on the text (no NLP model), then Presidio's
    context enhancer for the weak finds only, over a cheap tokenization; ``phone_regions`` (see ``phones``)."""

    def __init__(self, kinds: Iterable[str], phone_regions: Iterable[str]):
        kinds = set(kinds)
        self.recognizers: dict[str, list[PatternRecognizer]] = {}
        for kind, factories in _PRESIDIO.items():
            if kind in kinds:
                self.recognizers[kind] = [_english(factory()) for factory in factories]
        if "NATIONAL_ID" in kinds:
            self.recognizers["NATIONAL_ID"] += [_english(recognizer) for recognizer in _stdnum_recognizers()]
        self.phones = PhoneFinder(phone_regions) if "PHONE" in kinds else None
        # Each recognizer's patterns, compiled once: a text none of them matches skips the recognizer (Presidio's own
        # per-call bookkeeping costs more than the search).
        self.gates = {id(recognizer): [regex.compile(pattern.regex, flags=recognizer.global_regex_flags)
                                       for pattern in recognizer.patterns]
                      for recognizers in self.recognizers.values() for recognizer in recognizers}
        self.kind_of = {entity: kind for kind, recognizers in self.recognizers.items()
                        for recognizer in recognizers for entity in recognizer.supported_entities}
        self.nlp = TokenizerNlpEngine()
        # Context words count after a number too ("... as her SIN", "... into the CPF field").
        self.enhancer = LemmaContextAwareEnhancer(context_prefix_count=5, context_suffix_count=5)

    def find(self, text: str, kinds: Iterable[str]) -> list[Span]:
        kinds = set(kinds)
        spans: list[Span] = []
        whole_text = [kind for kind in kinds if kind not in WINDOWED_KINDS and kind not in TOKEN_KINDS]
        if whole_text:
            spans += self._analyze(text, whole_text, 0)
        for kind in kinds & TOKEN_KINDS.keys():
            for start, end in token_windows(text, TOKEN_KINDS[kind]):
                left = max(0, start - _CONTEXT_CHARS)
                spans += [span for span in self._analyze(text[left:end], [kind], left) if span.start >= start]
        windowed = kinds & WINDOWED_KINDS
        if not DIGIT.search(text):  # every identifier holds a digit
            windowed = set()
        if windowed and _named_identifier(text.lower()):
            # A passport or ID number named as such may hold few digits (C7YTL3PVG, ABCDE1234F): the whole text.
            spans += self._analyze(text, windowed, 0)
            windowed = set()
        phones = self.phones if "PHONE" in kinds else None
        if windowed or phones:
            for start, end in identifier_windows(text):
                # The window with the words before it, which the context rules read.
                left = max(0, start - _CONTEXT_CHARS)
                window = text[left:end]
                spans += self._analyze(window, windowed, left)
                if phones is not None:
                    spans += [Span(left + s.start, left + s.end, s.kind, s.score) for s in phones.find(window)]
        return spans

    @staticmethod
    def _has_context_word(text: str, recognizers: list[PatternRecognizer]) -> bool:
        """Whether any of the recognizers' context words occurs at all: without one the enhancer (a tokenization
        and a scan per find) cannot raise a weak find, so it is skipped."""
        lowered = text.lower()
        return any(word.lower() in lowered for recognizer in recognizers for word in recognizer.context or ())

    def _analyze(self, text: str, kinds: Iterable[str], offset: int) -> list[Span]:
        results: list[RecognizerResult] = []
        used: list[PatternRecognizer] = []
        for kind in kinds:
            for recognizer in self.recognizers.get(kind, ()):
                if not any(gate.search(text) for gate in self.gates[id(recognizer)]):
                    continue
                found = recognizer.analyze(text, recognizer.supported_entities, None)
                if found:
                    results += found
                    used.append(recognizer)
        if any(result.score < MIN_SCORE for result in results) and self._has_context_word(text, used):
            results = self.enhancer.enhance_using_context(text, results, self.nlp.process_text(text, LANGUAGE), used)
        return [Span(offset + result.start, offset + result.end, self.kind_of[result.entity_type], result.score)
                for result in results if result.score >= MIN_SCORE]


# E-mail and IP addresses hold no whitespace: each is looked for in the whitespace-delimited tokens that hold its mark
# (an "@"; a dotted quad or two colons), with the words before them for context, not in the whole text: Presidio's
# e-mail and IP patterns cost about 0.3 ms on a page of prose.
_TOKEN = re.compile(r"\S+")
DOTTED_QUAD = re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d")
TOKEN_KINDS: dict[str, Callable[[str], bool]] = {
    "EMAIL": lambda token: "@" in token,
    "IP": lambda token: token.count(":") >= 2 or DOTTED_QUAD.search(token) is not None,
}
DIGIT = re.compile(r"\d")


def token_windows(text: str, holds_mark: Callable[[str], bool]) -> list[tuple[int, int]]:
    return [match.span() for match in _TOKEN.finditer(text) if holds_mark(match.group())]


# Identifiers made of digit groups (cards, IBANs, national identifiers, passports, phone numbers) are looked for
# only in windows around runs of digit groups holding five digits or more (four among letters): prose costs one
# cheap regex (it starts at a digit), and each recognizer then searches a few dozen characters instead of the whole
# text. Letters before the
# first digit ("GB82 ...", "RSSMRA85...") fall in the window's left context.
WINDOWED_KINDS = frozenset({"CARD", "IBAN", "NATIONAL_ID", "PASSPORT"})
_ID_RUN = re.compile(r"\d[\dA-Za-z]*(?:[ .\-/()]{1,2}[\dA-Z][\dA-Za-z]*){0,11}\)?")
_CONTEXT_CHARS = 48
# Words that name an identifier: a passport or ID number so named may hold few digits (C7YTL3PVG, ABCDE1234F).
_ID_WORDS = frozenset({
    "passport", "reisepass", "reisepassnummer", "passeport", "paspoort", "pasaporte", "passaporto", "pan", "taxpayer",
    "steuer-id", "steuernummer", "steueridentifikationsnummer", "idnr", "ssn", "personnummer", "fødselsnummer", "nir",
    "bsn", "burgerservicenummer", "cpf", "aadhaar", "nino", "sin", "pesel", "dni", "nie", "curp", "nric", "tfn", "nhs",
})
_ID_PHRASES = ("tax id", "tax number", "tax no", "social security", "social insurance", "national id",
               "national insurance", "id number", "id no", "identity number", "identity card", "personal number",
               "personal id", "codice fiscale")
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)?")
# Where an identifier's name may begin (not after a letter): most texts have none, and skip the word split.
_ID_WORD_START = re.compile(r"(?<![^\W\d_])(?:" + "|".join(map(re.escape, sorted(_ID_WORDS))) + ")")


# ASCII text: every byte but a-z made a space, so the split gives the runs of letters. A word of ``_WORD`` is a run
# of letters, or two joined by a hyphen (steuer-id): it is an identifier's name only if its first run is one of these.
_NOT_LETTERS = bytes.maketrans(bytes(range(256)), bytes(c if 97 <= c <= 122 else 32 for c in range(256)))
_ID_FIRST_RUNS = frozenset(word.split("-")[0].encode() for word in _ID_WORDS if word.isascii())


def _named_identifier(lowered: str) -> bool:
    if any(phrase in lowered for phrase in _ID_PHRASES):
        return True
    if lowered.isascii():  # a split of the bytes is several times cheaper than the regex scan
        if _ID_FIRST_RUNS.isdisjoint(lowered.encode().translate(_NOT_LETTERS).split()):
            return False
    elif not _ID_WORD_START.search(lowered):
        return False
    return not _ID_WORDS.isdisjoint(_WORD.findall(lowered))


def identifier_windows(text: str) -> list[tuple[int, int]]:
    """Runs with five digits, or four among letters (an Indian PAN, ABCDE1234F)."""
    windows = []
    for match in _ID_RUN.finditer(text):
        digits = sum(map(str.isdigit, match.group()))
        if digits >= 5 or (digits == 4 and not match.group().strip(" .-/()").isdigit()):
            windows.append(match.span())
    return windows


def _english(recognizer: PatternRecognizer) -> PatternRecognizer:
    recognizer.supported_language = LANGUAGE
    return recognizer

"""Postal street addresses in running text: a house number and a street name with its street-type word, in the
orders English, German/Dutch/Nordic, French and Spanish/Italian/Portuguese addresses use, with the city and postcode
that may follow.

No maintained library finds addresses in free text offline (libpostal parses a given address and needs a 2 GB model
download; usaddress parses a given string), so this is a pattern; a street-type word is required, which keeps
"Table 3" and "Section 4.2" out, unless a postal tail distinctive on its own follows (a state or province with its
postcode, a Dutch, Polish or Italian postcode and town).
"""

from __future__ import annotations

import re

from tuneforge.pii.kinds import LOWER, UPPER, Span, word_shape

_NAME_WORD = rf"[{UPPER}][\w'’.-]*"
# Street-type words: the USPS standard suffixes (Publication 28, appendix C1) and the common British ones.
_EN_TYPES = (
    "Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Place|Pl|Square|Sq|Terrace|Way|Close|"
    "Crescent|Highway|Hwy|Parkway|Pkwy|Circle|Cir|Row|Gardens|Mews|Grove|Hill|Hills|Alley|Annex|Arcade|Bay|Bayou|"
    "Beach|Bend|Bluffs?|Bottom|Branch|Bridge|Brooks?|Burgs?|Bypass|Camp|Canyon|Cape|Causeway|Centers?|Centre|"
    "Cliffs?|Club|Commons?|Corners?|Course|Courts|Coves?|Creek|Crest|Crossing|Crossroad|Curve|Dale|Dam|Divide|"
    "Drives|Estates?|Expressway|Extensions?|Falls?|Ferry|Fields?|Flats?|Ford|Forest|Forges?|Forks?|Fort|Freeway|"
    "Gateway|Glens?|Greens?|Harbors?|Haven|Heights|Hollow|Inlet|Islands?|Isle|Junctions?|Keys?|Knolls?|Lakes?|Land|"
    "Landing|Light|Lights|Loaf|Locks?|Lodge|Loop|Mall|Manors?|Meadows?|Mills?|Missions?|Motorway|Mount|Mountains?|"
    "Neck|Orchard|Oval|Overpass|Parks?|Pass|Passage|Path|Pike|Pines?|Plains?|Plaza|Points?|Ports?|Prairie|Radial|"
    "Ramp|Ranch|Rapids?|Rest|Ridges?|River|Roads|Route|Run|Shoals?|Shores?|Skyway|Springs?|Spurs?|Squares|Station|"
    "Stravenue|Stream|Streets|Summit|Throughway|Trace|Track|Trafficway|Trail|Trailer|Tunnel|Turnpike|Underpass|"
    "Unions?|Valleys?|Viaduct|Views?|Villages?|Ville|Vista|Walks?|Wall|Ways|Wells?|Wharf|Walk|Yard|"
    # Australia Post's and the Royal Mail's other common types, and Indian street words
    "Parade|Pde|Esplanade|Rise|Chase|Circuit|Quay|Promenade|Brow|Vale|Glade|Gate|Wynd|Approach|Concourse|Grange|"
    "Retreat|Outlook|Nagar|Marg|Chowk|Ganj|Gali|Colony|Layout"
)
_GLUED_TYPES = ("straße|strasse|str\\.|weg|gasse|platz|allee|ring|damm|laan|straat|gracht|plein|dreef|kade|singel|dijk|"
                "steeg|markt|vej|gade|gatan|gata|gate|vägen|väg|gränd|stigen|backen|torget|veien|vegen|katu|tie|kuja")
_FR_TYPES = "rue|avenue|av\\.|boulevard|bd|chemin|allée|place|impasse|quai|route"
_ROMANCE_TYPES = ("Calle|C/|Avenida|Avda\\.?|Plaza|Paseo|Carrer|Camino|Carretera|Travesía|Urbanización|Pasaje|Vía|"
                  "Ronda|Rambla|Glorieta|Cuesta|Callejón|Via|Viale|Lungomare|Salita|Traversa|Rotonda|Estrada|Rodovia|"
                  "Vicolo|Piazza|Piazzale|Corso|Largo|Contrada|Strada|Borgo|Rua|Travessa|Praça|Alameda|Ul\\.|ul\\.|"
                  "Aleja|aleja|al\\.|Plac|plac|Osiedle|os\\.")
_WORDS = r"(?:[^\W\d][\w'’-]*\s+){0,4}[^\W\d][\w'’-]*"  # words that start with a letter

_CITY_WORD = rf"[{UPPER}][{LOWER}'’]+(?:-[{UPPER}{LOWER}][{LOWER}'’]*)*"  # Pottier-les-Bains
_CITY = (rf"(?:(?:St|Ste|Mt|Ft)\.?\s+)?{_CITY_WORD}"
         rf"(?:\s+(?:(?:de|da|do|dos|das|del|di|la|le|sur|am|an)\s+)?{_CITY_WORD}){{0,2}}"
         r"(?:\s*/\s*[A-Z]{2}\b)?")  # "St. Albans"; "Silveira de Pastor / ES": a Brazilian town and its state
_UNIT = (r"(?:,?\s+(?:Apt|Apartment|Suite|Ste|Flat|Unit|Floor|Puerta|Piso|Planta|Esc|Appartamento|Interno|Scala|Piano|"
         r"Appartement|Bâtiment|Étage|Apto|Bloco|Sala|Wohnung)\.?\s*#?\w+)?")
# Postal tails distinctive enough that the street before them needs no street-type word: an Australian state or
# Canadian province with its postcode, a US state and ZIP, a Dutch (1234 AB), Polish (12-345) or Italian
# (12345 Town (PR)) postcode.
_STRONG_TAIL = (
    rf",?\s+{_CITY},?\s+(?:NSW|VIC|QLD|WA|SA|TAS|ACT|NT),?\s+\d{{4}}\b"
    rf"|,?\s+{_CITY},?\s+(?:AB|BC|MB|NB|NL|NS|NT|NU|ON|PE|QC|SK|YT),?\s+[A-Z]\d[A-Z]\s?\d[A-Z]\d\b"
    rf"|,\s+{_CITY},?\s+[A-Z]{{2}}\s+\d{{5}}(?:-\d{{4}})?\b"
    rf"|,?\s+\d{{4}}\s?[A-Z]{{2}},?\s+{_CITY}"
    rf"|,?\s+\d{{2}}-\d{{3}}\s+{_CITY}"
    rf"|,?\s+\d{{5}},?\s+{_CITY}\s+\([A-Z]{{2}}\)"
)
_HOUSE = r"\d{1,5}[A-Za-z]?(?:[-/]\d{1,4})?"
_POLISH_STREET = r"(?:ulica|ul\.|aleja|al\.|plac|pl\.|osiedle|os\.)\s+"

_STREET = (
    rf"\b{_HOUSE},?\s+(?:{_NAME_WORD}\s+){{1,4}}(?:{_EN_TYPES})\b\.?(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b)?"
    rf"|\b[{UPPER}][\w'’-]*(?i:{_GLUED_TYPES})\s+\d{{1,5}}[a-z]?(?:[-/]\d{{1,4}})?\b"
    rf"|\b[{UPPER}][\w'’-]*\s+(?:Straße|Strasse|Weg|Gasse|Platz|Allee)\s+\d{{1,5}}[a-z]?(?:[-/]\d{{1,4}})?\b"
    rf"|\b\d{{1,5}}(?:\s?(?:bis|ter))?,?\s+(?:{_FR_TYPES})\s+{_WORDS}"
    rf"|\b(?:{_ROMANCE_TYPES})\s+{_WORDS},?\s+(?:n\.?\s?º?\s?)?\d{{1,5}}\b"
    # a flat or studio before an English street, its house number optional: "Flat 88q, Kenneth Village"
    rf"|\b(?:Flat|Studio|Apartment|Apt\.?|Unit|Suite)\s+\d{{1,4}}[A-Za-z]?,?\s+(?:\d{{1,5}}[A-Za-z]?\s+)?"
    rf"(?:{_NAME_WORD}\s+){{1,4}}(?:{_EN_TYPES})\b"
)
# Streets known by the postcode and town after them: these patterns try every capitalised word and every number, so
# they run only on texts with a postcode's shape (``_may_hold_postcode``).
_STREET_BEFORE_POSTCODE = (
    # a street of any type before a strong postal tail, the number first ("Flat 3 81 Jennifer Roadway, Lake Robin,
    # ACT, 2990") or last ("ulica Listopada 889, 56-495 Łódź", "Canale Rolando, 673 Piano 9, 66036, Orsogna (CH)")
    rf"\b(?:(?:Flat|Unit|Apt\.?|Apartment|Suite|Studio)\s+\d{{1,4}}[A-Za-z]?,?\s+)?{_HOUSE},?\s+"
    rf"(?:{_NAME_WORD}\s+){{0,3}}{_NAME_WORD}(?={_UNIT}(?:{_STRONG_TAIL}))"
    rf"|(?:\b{_POLISH_STREET})?\b{_NAME_WORD}(?:,?\s+{_NAME_WORD}){{0,3}},?\s+{_HOUSE}(?={_UNIT}(?:{_STRONG_TAIL}))"
    # a French street without a house number, with its postcode and town: "rue de la Paix, 75002 Paris"
    rf"|\b(?i:{_FR_TYPES})\s+{_WORDS}(?=,\s+\d{{5}}\s+[{UPPER}])"
    # India: house number, locality, then town and six-digit PIN: "12/4, Gandhi Nagar, Pune-411001"
    rf"|\b\d{{1,5}}(?:/\d{{1,4}})?,\s+(?:{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,3}},\s+){{1,2}}"
    rf"{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}}(?:\s?-\s?|\s+)\d{{6}}\b"
    # Brazil: street, number, district, CEP and town / state: "Rua X, 45, Centro, 01001-000 São Paulo / SP"
    rf"|\b{_NAME_WORD}(?:\s+(?:d[aeo]s?|e|{_NAME_WORD})){{0,5}}(?:,\s+\d{{1,5}})?,\s+(?:{_WORDS},\s+)?"
    rf"\d{{5}}-?\d{{3}}\s+{_NAME_WORD}(?:\s+(?:d[aeo]s?|{_NAME_WORD})){{0,3}}\s*/\s*[A-Z]{{2}}\b"
    # a street name and house number (any street word) when a town and a five-digit postcode follow:
    # "Calle Mayor 27 Piso 2, Madrid, 28013"
    rf"|\b{_NAME_WORD}(?:\s+(?:de|del|la|las|los|di|da|{_NAME_WORD})){{1,5}}\s+\d{{1,4}}"
    rf"(?=(?:,?\s+(?:Apt|Puerta|Piso|Planta|Esc|Appartamento|Interno|Scala|Piano)\.?\s*\d{{1,4}})?"
    rf",\s+[{UPPER}][\w'’-]*(?:\s+[{UPPER}][\w'’-]*){{0,2}},\s+\d{{5}}\b)"
)
# Whether a text may hold one of the postcodes above, from its shape (ASCII digits -> 9, capitals -> A): five digits
# (US, French, Italian, Spanish, Brazilian, Indian), 12-345 (Polish), 1234 AB (Dutch), A1A 1A1 (Canadian), or an
# Australian state before four digits. Substring tests cost a few microseconds where a regex costs tens.
_SHAPE = bytes.maketrans(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"9" * 10 + b"A" * 26)
_POSTCODE_SHAPES = (b"99999", b"99-999", b"9999 AA", b"9999AA", b"A9A 9A9", b"A9A9A9")
_STATE_SHAPES = (b"AA 9999", b"AA, 9999")
_AUSTRALIAN_STATE = re.compile(r"\b(?:NSW|VIC|QLD|WA|SA|TAS|ACT|NT),?\s+\d{4}\b")


def _may_hold_postcode(text: str) -> bool:
    shape = text.encode("ascii", "ignore").translate(_SHAPE)
    if any(postcode in shape for postcode in _POSTCODE_SHAPES):
        return True
    return any(state in shape for state in _STATE_SHAPES) and _AUSTRALIAN_STATE.search(text) is not None


# A postcode (US ZIP, UK, Canadian, Dutch, Polish, four- to five-digit European) and a city, in either order.
_POSTCODE = (r"(?:\d{4}\s?[A-Z]{2}\b|\d{2}-\d{3}\b|\d{5}-?\d{3}\b|\d{6}\b|\d{3}\s\d{2}\b|\d{4,5}(?:-\d{4})?"
             r"|[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}"
             r"|[A-Z]\d[A-Z]\s?\d[A-Z]\d)")
_TAIL = (rf"(?:,?\s+{_POSTCODE},?\s+{_CITY}(?:\s+\([A-Z]{{2}}\))?"
         rf"|,\s+{_CITY}(?:,?\s+[A-Z]{{2,3}}\b)?(?:(?:,?\s+|\s?-\s?){_POSTCODE}"
         rf"(?:\s+{_CITY_WORD}(?:\s+(?:d[aeo]s?\s+)?{_CITY_WORD}){{0,2}}\s*/\s*[A-Z]{{2}}\b)?)?)?")

_ADDRESS = re.compile(rf"(?:{_STREET}){_UNIT}{_TAIL}")
_ADDRESS_BEFORE_POSTCODE = re.compile(rf"(?:{_STREET_BEFORE_POSTCODE}){_UNIT}{_TAIL}")


def _type_words(alternatives: str) -> tuple[frozenset[bytes], tuple[str, ...]]:
    """The words of an alternation of street types ("Bluffs?": Bluff and Bluffs; "Avda\\.?": Avda), and those that
    must be written with a dot or slash ("al\\.", "C/"), looked for as they are."""
    words, marked = set(), []
    for alternative in alternatives.split("|"):
        if alternative.endswith(("\\.", "/")):
            marked.append(alternative.replace("\\", ""))
            continue
        base = alternative.removesuffix("?").removesuffix("\\.")
        words |= {base[:-1], base} if alternative.endswith("s?") else {base}
    return frozenset(word.encode() for word in words if word.isascii()), tuple(marked)


_STREET_WORDS, _MARKED_STREET_WORDS = _type_words(
    f"{_EN_TYPES}|Straße|Strasse|Weg|Gasse|Platz|Allee|{_FR_TYPES}|{_ROMANCE_TYPES}")
# "al. Jerozolimskie", "C/ Mayor", not "et al." nor "total.": each a literal first, which the regex engine finds fast.
_MARKED_STREETS = tuple(re.compile(rf"{re.escape(word)}\s") for word in _MARKED_STREET_WORDS)
_GLUED_ENDINGS = tuple(ending.replace("\\.", "").encode() for ending in _GLUED_TYPES.split("|") if ending.isascii())


# Whether an ASCII text may hold a street of ``_STREET``: one of its street-type words as a word, or a glued type before
# a number ("Keizersgracht 12"). The regex tries its alternatives at every word (about 90 microseconds on a paper's
# abstract); most texts hold none of the words, and a byte translation finds that in a few.
def _may_hold_street(text: str) -> bool:
    if not text.isascii():
        return True
    shape = word_shape(text)
    if not _STREET_WORDS.isdisjoint(shape.split()) or _glued_type_before_number(shape):
        return True
    return any(_marked_street_word(text, pattern) for pattern in _MARKED_STREETS)


def _marked_street_word(text: str, pattern: re.Pattern[str]) -> bool:
    for match in pattern.finditer(text):
        start = match.start()
        previous = text[start - 1] if start else " "
        if not (previous.isalnum() or previous in "._") and text[max(0, start - 3) : start] != "et ":
            return True
    return False


def _glued_type_before_number(shape: bytes) -> bool:
    """A capitalised word ending in a glued street type right before a number: "Keizersgracht 12"."""
    at = shape.find(b" 0")
    while at != -1:
        before = shape[max(0, at - 32) : at].rsplit(None, 1)
        if before and before[-1][:1].isupper() and before[-1].lower().endswith(_GLUED_ENDINGS):
            return True
        at = shape.find(b" 0", at + 2)
    return False


def find_addresses(text: str) -> list[Span]:
    found = [match.span() for match in _ADDRESS.finditer(text)] if _may_hold_street(text) else []
    if _may_hold_postcode(text):
        found += [match.span() for match in _ADDRESS_BEFORE_POSTCODE.finditer(text)]
    kept: list[tuple[int, int]] = []
    for start, end in sorted(found, key=lambda span: (span[0], -span[1])):  # leftmost, then longest, as one regex
        if not kept or start >= kept[-1][1]:
            kept.append((start, end))
    return [Span(start, end, "ADDRESS", 0.85) for start, end in kept]

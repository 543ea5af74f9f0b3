"""Erasure's parts without a training: finding a person's records by id or value in every raw format, removing them
from their files in place, tombstones honoured by ingestion, the registry giving way, and an interrupted erasure
that a rerun completes."""

import bz2
import gzip
import json
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from resources.registry import ModelRegistry
from tests.test_registry import _candidate
from tuneforge.corpus.ingest import ingest_source
from tuneforge.corpus.records import Example, read_examples
from tuneforge.governance import audit
from tuneforge.governance.apply import Erasure
from tuneforge.governance.matching import Needles, SelectorError, check_value, line_digest, normalize, value_in
from tuneforge.governance.plan import ErasureError, ErasurePlan, build_plan
from tuneforge.governance.raw_files import find_records, scrub_file
from tuneforge.governance.tombstones import Tombstones, append_tombstones, tombstone_for
from tuneforge.layout import Layout
from tuneforge.registry import CHAMPION, ERASED_TAG, RegistryError

EMAIL, NAME, PHONE = "jane.roe@example.org", "Jane Roe", "+44 20 7946 0018"
PERSON = f"The ticket was opened by {NAME} ({EMAIL}, phone 020 7946 0018) about a delayed refund."
OTHERS = [f"Customer number {n} asked about invoice {n * 7} and the shipping address of order {n * 13}."
          for n in range(1, 6)]


def _rows() -> list[dict]:
    rows = [{"ticket": f"t{n}", "body": text, "resolution": f"Answered question {n}."}
            for n, text in enumerate(OTHERS, start=1)]
    rows.insert(2, {"ticket": "t-jane", "body": PERSON, "resolution": "Refund issued to Jane Roe."})
    return rows


MAPPING = "fields:\n  id: ticket\n  document: body\n  summary: resolution\n"


def _source(raw: Path, name: str, files: dict[str, bytes], mapping: str = MAPPING) -> Path:
    source = raw / name
    source.mkdir(parents=True)
    (source / "source.yaml").write_text(mapping)
    for file, data in files.items():
        (source / file).write_bytes(data)
    return source


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


# --- matching ---------------------------------------------------------------------------------------------------


def test_values_match_however_they_are_written():
    text = normalize("Call 020-7946-0018 or +44 (20) 7946 0018; mail JANE.ROE@Example.org\\nJane\n  Roe")
    assert value_in(PHONE, text) and value_in("020 7946 0018", text)
    assert value_in(EMAIL, text) and value_in(NAME, text)
    assert not value_in("+44 20 7946 0019", text) and not value_in("John Roe", text)


def test_a_value_too_short_to_name_a_person_is_refused():
    with pytest.raises(SelectorError, match="shorter than 4 characters"):
        check_value(" ab ")
    assert check_value("  Jane   Roe ") == "Jane Roe"


def test_needles_find_ids_as_json_writes_them_and_not_a_longer_id():
    needles = Needles(ids={"tickets/t1"})
    assert needles.found_in(json.dumps({"id": "tickets/t1", "document": "x"})) == ["id"]
    assert needles.found_in(json.dumps({"ids": ["tickets/t10"]})) == []
    marked = Needles(lines={line_digest('{"a": 1}')})
    assert marked.found_in('{"b": 2}\n{"a":  1}\r\n') == ["line"] and marked.found_in('{"a": 12}') == []


# --- raw files, every format ------------------------------------------------------------------------------------


def _records(source: Path) -> list[str]:
    return [m.example.id for m in find_records(source.parent, {"__all__"}, ["refund", "customer", "invoice"])
            if m.example]


FORMATS = {
    "jsonl.gz": lambda rows: gzip.compress(_jsonl(rows)),
    "json.bz2": lambda rows: bz2.compress(json.dumps(rows).encode()),
    "csv": None,  # built by _csv: semicolons, latin-1, a quoted field over two lines
    "xlsx": None,
    "parquet": None,
}


def _csv(rows: list[dict]) -> bytes:
    lines = ["ticket;body;resolution"]
    for row in rows:
        body = row["body"].replace("delayed", "delayed\n") + " Café"
        lines.append(f'{row["ticket"]};"{body}";{row["resolution"]}')
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def _xlsx(rows: list[dict], path: Path) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["ticket", "body", "resolution"])
    for row in rows:
        sheet.append([row["ticket"], row["body"], row["resolution"]])
    workbook.save(path)
    return path.read_bytes()


def _parquet(rows: list[dict], path: Path) -> bytes:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path.read_bytes()


@pytest.mark.parametrize("suffix", list(FORMATS))
def test_a_persons_record_is_found_by_value_and_removed_from_its_file_in_its_format(tmp_path, suffix):
    rows = _rows()
    build = FORMATS[suffix]
    data = (build(rows) if build else _csv(rows) if suffix == "csv"
            else _xlsx(rows, tmp_path / "x.xlsx") if suffix == "xlsx" else _parquet(rows, tmp_path / "x.parquet"))
    mapping = MAPPING + ("csv:\n  delimiter: ';'\n  encoding: latin-1\n" if suffix == "csv" else "")
    source = _source(tmp_path / "raw", "tickets", {f"part-0.{suffix}": data}, mapping)

    matches = list(find_records(source.parent, set(), [PHONE]))
    assert [(m.example.id, m.why) for m in matches] == [("tickets/t-jane", "value")]
    assert scrub_file(source, f"part-0.{suffix}", {m.position for m in matches}) == "rewritten"

    assert list(find_records(source.parent, set(), [EMAIL, NAME, PHONE])) == []
    report = ingest_source(source, tmp_path / "rows.jsonl", tmp_path / "q.jsonl")
    assert report.rows == 5 and report.quarantined == 0, "every other record is kept and still reads"
    assert [row.id for row in read_examples(tmp_path / "rows.jsonl")] == [f"tickets/t{n}" for n in range(1, 6)]
    assert scrub_file(source, "part-0.zzz", {1}) == "absent"


def test_kept_lines_stay_byte_for_byte_and_a_file_left_empty_is_deleted(tmp_path):
    rows = _rows()
    source = _source(tmp_path / "raw", "tickets", {"a.jsonl": _jsonl(rows), "b.jsonl": _jsonl(rows[2:3])})
    before = (source / "a.jsonl").read_bytes().splitlines(keepends=True)
    assert scrub_file(source, "a.jsonl", {3}) == "rewritten"
    assert (source / "a.jsonl").read_bytes() == b"".join(before[:2] + before[3:])
    assert scrub_file(source, "b.jsonl", {1}) == "deleted" and not (source / "b.jsonl").exists()


def test_by_id_the_bare_id_or_the_source_qualified_one(tmp_path):
    source = _source(tmp_path / "raw", "tickets", {"a.jsonl": _jsonl(_rows())})
    for wanted in ("t-jane", "tickets/t-jane"):
        assert [(m.example.id, m.why, m.position) for m in find_records(source.parent, {wanted}, [])] == [
            ("tickets/t-jane", "id", 3)]
    assert list(find_records(source.parent, {"t-jan"}, [])) == []


def test_plain_text_documents_go_with_their_summary_file(tmp_path):
    source = _source(tmp_path / "raw", "notes", {"jane.txt": PERSON.encode(), "jane.summary.txt": b"Refund.",
                                                 "other.txt": OTHERS[0].encode(), "other.summary.txt": b"Invoice."},
                     mapping="")
    [match] = find_records(source.parent, set(), [EMAIL])
    assert scrub_file(source, match.file, {match.position}) == "deleted"
    assert sorted(p.name for p in source.iterdir()) == ["other.summary.txt", "other.txt", "source.yaml"]


# --- tombstones -------------------------------------------------------------------------------------------------


def test_ingestion_skips_tombstoned_records_by_id_and_by_content(tmp_path):
    rows = _rows()
    source = _source(tmp_path / "raw", "tickets", {"a.jsonl": _jsonl(rows)})
    jane = Example(id="tickets/t-jane", source="tickets", group="t-jane", document=PERSON,
                   summary="Refund issued to Jane Roe.")
    path = tmp_path / "tombstones.jsonl"
    assert append_tombstones(path, [tombstone_for(jane, "er-1")]) == 1
    assert append_tombstones(path, [tombstone_for(jane, "er-1")]) == 0, "a rerun appends nothing twice"
    assert EMAIL not in path.read_text() and "t-jane" not in path.read_text(), "hashes only"

    renamed = [*rows, {**rows[2], "ticket": "t-jane-again"}]  # the same record re-dropped under another id
    (source / "a.jsonl").write_bytes(_jsonl(renamed))
    report = ingest_source(source, tmp_path / "rows.jsonl", tmp_path / "q.jsonl", tombstones=Tombstones.load(path))
    assert report.rows == 5 and report.erased == 2 and report.quarantined == 0
    assert report.as_dict()["erasures"] == ["er-1"]
    assert EMAIL not in (tmp_path / "rows.jsonl").read_text() + (tmp_path / "q.jsonl").read_text()


def test_a_damaged_tombstone_file_fails_naming_the_line(tmp_path):
    path = tmp_path / "tombstones.jsonl"
    path.write_text('{"request": "er-1"}\n')
    with pytest.raises(ValueError, match="tombstones.jsonl:1 is not a tombstone"):
        Tombstones.load(path)


# --- the registry -----------------------------------------------------------------------------------------------


def test_demoting_the_champion_falls_back_to_the_newest_version_not_erased(workspace):
    champions = ModelRegistry().open()
    first = champions.promote(_candidate(champions.layout, "a"), expected_champion=None)
    second = champions.promote(_candidate(champions.layout, "b"), expected_champion=first)

    assert champions.demote({second}, "er-1") == {"previous": None, CHAMPION: first}
    assert champions.champion().version == first and champions.version(second).tags[ERASED_TAG] == "er-1"
    assert Path(champions.layout.champion_export).resolve().name == "a"
    third = champions.promote(_candidate(champions.layout, "c"), expected_champion=first)
    with pytest.raises(RegistryError, match="erased by request er-1"):
        champions.rollback(to=second)
    assert champions.demote({third}, "er-2")[CHAMPION] == first


def test_demoting_the_only_version_leaves_no_champion(workspace):
    champions = ModelRegistry().open()
    only = champions.promote(_candidate(champions.layout, "a"), expected_champion=None)
    assert champions.demote({only}, "er-1") == {CHAMPION: None}
    assert champions.champion() is None and not champions.layout.champion_export.exists()


# --- a whole erasure, interrupted ---------------------------------------------------------------------------------


class Killed(BaseException):
    """What a SIGKILL looks like to the steps after it: they never run."""


def _seeded(workspace: Path) -> Layout:
    layout = Layout(workspace)
    _source(layout.raw, "tickets", {"a.jsonl": _jsonl(_rows())})
    layout.request_logs.mkdir(parents=True)
    (layout.request_logs / "2026-12-01.jsonl").write_text(
        json.dumps({"prompt": f"my number is {PHONE}"}) + "\n" + json.dumps({"prompt": "hello"}) + "\n")
    report = layout.reports / "r1"
    report.mkdir(parents=True)
    (report / "report.json").write_text(json.dumps({"ids": ["tickets/t-jane", "tickets/t1"]}))
    return layout


def test_an_erasure_killed_midway_is_completed_by_a_rerun_and_reported_done_only_then(workspace):
    layout = _seeded(workspace)
    registry = ModelRegistry().open()
    plan, needles = build_plan(layout, registry, [], [EMAIL, PHONE])
    assert [r["file"] for r in plan.records] == ["a.jsonl"] and plan.paths == [
        {"path": "reports/r1", "kind": "report", "why": "holds erased data"}]
    assert plan.log_lines[0]["file"] == "logs/requests/2026-12-01.jsonl"

    def killed() -> dict:
        raise Killed

    with pytest.raises(Killed):
        Erasure(plan, layout, registry, needles, killed, log=lambda _: None).run()
    saved = ErasurePlan.load(layout.erasure_requests / f"{plan.request}.json")
    assert saved.state == "applying" and saved.steps_done == ["tombstones", "raw", "logs", "registry", "mlflow",
                                                             "files"]
    assert EMAIL not in (layout.raw / "tickets" / "a.jsonl").read_text()

    retrained = []
    done = Erasure(saved, layout, registry, needles, lambda: retrained.append(1) or {"promoted": False},
                   log=lambda _: None).run()
    assert done.state == "done" and retrained == [1] and done.outcome["verify"]["values_searched"]
    assert (layout.request_logs / "2026-12-01.jsonl").read_text() == json.dumps({"prompt": "hello"}) + "\n"
    events = [entry["event"] for entry in audit.read(layout.erasure_log)]
    assert events[0] == "apply" and "resume" in events and events[-1] == "done"
    log = layout.erasure_log.read_text() + (layout.erasure_requests / f"{plan.request}.json").read_text()
    assert EMAIL not in log and "Jane" not in log and "7946" not in log, "the audit trail holds no erased value"


def test_verification_refuses_to_report_done_while_the_value_is_still_somewhere(workspace):
    layout = _seeded(workspace)
    registry = ModelRegistry().open()
    plan, needles = build_plan(layout, registry, [], [EMAIL])
    (layout.root / "data" / "restored").mkdir(parents=True)
    late = layout.root / "data" / "restored" / "copy.jsonl"  # appeared after the plan was made
    late.write_text(json.dumps({"text": EMAIL}) + "\n")
    with pytest.raises(ErasureError, match="data/restored/copy.jsonl"):
        Erasure(plan, layout, registry, needles, lambda: {}, log=lambda _: None).run()
    assert ErasurePlan.load(layout.erasure_requests / f"{plan.request}.json").state == "applying"


def test_nothing_to_erase_without_an_id_or_a_value(workspace):
    with pytest.raises(ErasureError, match="--id RECORD_ID or --value"):
        build_plan(Layout(workspace), None, [], [])


def test_a_server_whose_champion_was_erased_stops_answering_with_it():
    from types import SimpleNamespace

    from tuneforge.serving.champion import ChampionFollower
    from tuneforge.serving.router import Router

    router = Router(SimpleNamespace(served=SimpleNamespace(version="1")), canary_share=0.0)
    registry = SimpleNamespace(champion=lambda: None, canary=lambda: None)
    follower = ChampionFollower(lambda: registry, router, make_engine=None, poll_seconds=1.0)
    assert follower.check() and router.withdrawn == "1", "the erased version is withdrawn, not kept serving"
    assert not follower.check(), "withdrawn once"


def test_a_plan_never_names_a_whole_artifact_directory(workspace):
    from tuneforge.governance.plan import _add_path

    layout = Layout(workspace)
    layout.adapters.mkdir(parents=True)
    plan = ErasurePlan(request="er-1", created="", by="", selector_sha256="", salt="", selectors={})
    with pytest.raises(ErasureError, match="refusing to plan the deletion of models/adapters/ as a whole"):
        _add_path(plan, workspace, layout.adapters / "", "adapter", "a version without an adapter_dir tag")
    assert plan.paths == []

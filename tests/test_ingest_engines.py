"""Ingestion writes the same bytes on every engine: in this process, in local worker processes and as tasks on a
2-CPU local Ray, the same rows, quarantine and report, bad input included; and the first-occurrence decisions made
with the ids in shards are those of one dictionary of every id."""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import json
import random
import socket
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tuneforge.corpus import firsts, readers
from tuneforge.corpus import ingest as ingest_module
from tuneforge.corpus.engines import EngineConfig
from tuneforge.corpus.ingest import ingest_source
from tuneforge.corpus.records import Example
from tuneforge.corpus.shards import FileShards, MemoryShards
from tuneforge.corpus.sources import SOURCE_CONFIG
from tuneforge.governance.tombstones import Tombstones, tombstone_for

DOC = "Sharded state keeps the ingestion of a corpus beyond one machine exactly as it was on one."
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "dummy-secret", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent/aws-config",
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials"}


# --- the sharded first occurrences against one dictionary --------------------------------------------------------


def one_dictionary(records: list[tuple]) -> dict[int, tuple[int, int, int]]:
    """Today's decisions, record by record with one dictionary of every id: an id read before is an exact repeat or
    a clash, unless the record brings an id of its own, from another file than the first one, with other content:
    then it is qualified by its file, and that id may repeat or clash in turn."""
    seen: dict[str, tuple[int, int, int]] = {}
    decided = {}
    for position, (example_id, digest, qualified, file, line) in enumerate(records):
        first = seen.get(example_id)
        qualify = qualified is not None and first is not None and first[0] != digest and first[1] != file
        if qualify:
            example_id, digest = qualified
            first = seen.get(example_id)
        code = firsts.QUALIFIED if qualify else 0
        if first is not None:
            decided[position] = (code | (firsts.REPEAT if first[0] == digest else firsts.CLASH), first[1], first[2])
            continue
        if qualify:
            decided[position] = (firsts.QUALIFIED, 0, 0)
        seen[example_id] = (digest, file, line)
    return decided


def random_records(rng: random.Random, count: int) -> list[tuple]:
    """Records drawn from few ids, files and contents, so that ids repeat, clash and are qualified, and some
    literal ids are the qualified ids of others ('s/1@b.jsonl')."""
    files = ["a.jsonl", "b.jsonl", "c@d.jsonl"]
    ids = ["s/1", "s/2", "s/3", "s/1@b.jsonl", "s/2@c@d.jsonl", "s/1@b.jsonl@c@d.jsonl", "s/x@y"]
    records = []
    for _ in range(count):
        file = rng.randrange(len(files))
        example_id = rng.choice(ids)
        qualified = (f"{example_id}@{files[file]}", rng.randint(1, 3)) if rng.random() < 0.8 else None
        records.append((example_id, rng.randint(1, 3), qualified, file, rng.randint(0, 50)))
    return records


def sharded(records: list[tuple], shards, batch: int) -> dict[int, tuple[int, int, int]]:
    found = firsts.FirstOccurrences(shards)
    for start in range(0, len(records), batch):
        keys = b"".join(firsts.key_row(example_id, digest, qualified, file, line)
                        for example_id, digest, qualified, file, line in records[start:start + batch])
        found.add(firsts.rows_of(keys))
    decisions = found.decide()
    return {position: (code, file, line) for position, code, file, line in zip(
        decisions.positions.tolist(), decisions.codes.tolist(), decisions.files.tolist(), decisions.lines.tolist(),
        strict=True)}


@pytest.mark.parametrize("seed", range(6))
def test_sharded_first_occurrences_decide_as_one_dictionary_of_every_id(seed, tmp_path, monkeypatch):
    rng = random.Random(seed)
    records = random_records(rng, 400)
    expected = one_dictionary(records)
    codes = {code for code, _, _ in expected.values()}
    assert {firsts.QUALIFIED, firsts.REPEAT, firsts.CLASH, firsts.QUALIFIED | firsts.REPEAT,
            firsts.QUALIFIED | firsts.CLASH} <= codes, "every kind of decision is exercised"
    monkeypatch.setattr(firsts, "SCATTER_ROWS", 1 + seed * 17)
    for count in (1, 3, 16, 300):
        assert sharded(records, FileShards(tmp_path / f"{count}", count), batch=1 + seed * 13) == expected
        small_buffer = FileShards(tmp_path / f"{count}-small", count, buffer_bytes=500)  # a flush every few rows
        assert sharded(records, small_buffer, batch=1 + seed * 13) == expected
    assert sharded(records, MemoryShards(), batch=400) == expected


def test_an_id_and_the_ids_qualified_from_it_fall_in_one_shard():
    base = firsts.FIELDS.index("base")
    rows = firsts.rows_of(b"".join(firsts.key_row(example_id, 0, None, 0, 0)
                                   for example_id in ("s/1", "s/1@a.jsonl", "s/1@a.jsonl@b@c.jsonl")))
    assert len(set(rows[:, base].tolist())) == 1
    with pytest.raises(ValueError, match="extends the id"):
        firsts.key_row("s/1", 0, ("s/2@a.jsonl", 0), 0, 0)


def test_row_digests_tell_rows_apart_as_their_json_lines_do():
    assert set(Example.model_fields) == {"id", "group", *ingest_module.CONTENT_FIELDS}
    rng = random.Random(3)
    rows = [Example(id=rng.choice(["s/1", "s/1@f.jsonl"]), source="s",
                    group=rng.choice(["1", "1@f.jsonl", "1@f.jsonl@f.jsonl", "g"]),
                    document=rng.choice(["a b", "a  b", "a b c"]), summary=rng.choice(["s", "t"]),
                    references=rng.choice([[], ["s", "t"], ["st"]])) for _ in range(300)]
    for one in rows:
        qualified_id, qualified_group = ingest_module._qualified_names(one.id, one.group, "f.jsonl")
        digest, qualified_digest = ingest_module._row_digests(one, (qualified_id, qualified_group))
        qualified = one.model_copy(update={"id": qualified_id, "group": qualified_group})
        assert qualified_digest == ingest_module._row_digests(qualified, None)[0]
        assert ingest_module._qualified_line(ingest_module._row_line(one), "f.jsonl") == ingest_module._row_line(
            qualified)
        for other in rows:
            if other.id == one.id:
                same = ingest_module._row_line(other) == ingest_module._row_line(one)
                assert (ingest_module._row_digests(other, None)[0] == digest) == same


@pytest.mark.parametrize("line", [b"\n", b" \t\r\n", b"\x0b\x0c\n", b"\x1c\x1d\n", "\u3000\u00a0\n".encode(),
                                  "\u2028x\n".encode(), b"\xff\n", b" {}\n", b"x", "\u00e9\n".encode()])
def test_a_line_is_blank_as_str_strip_sees_it(line):
    try:
        blank = not line.decode("utf-8").strip()
    except UnicodeDecodeError:
        blank = False
    assert readers._blank(line) == blank


# --- every engine, the same bytes ------------------------------------------------------------------------------


def jsonl(records: list) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


def record(key: str | None, text: str = "", **fields) -> dict:
    row = {"document": f"{DOC} {text}".strip(), "summary": f"the summary {text}".strip(), **fields}
    return row if key is None else {"id": key, **row}


def write_bad_source(source: Path) -> None:
    """Everything ingestion must sort out, over several files and formats: invalid JSON, missing and wrong fields,
    blank lines, an id clash in one file, ids restarting in the next files (qualified), exact repeats in and across
    files, a literal id equal to a qualified one, records without ids, an empty file, compressed files, a CSV with a
    malformed row, Parquet, a plain text document, a hidden file and documentation."""
    source.mkdir(parents=True)
    (source / "part-0.jsonl").write_bytes(jsonl([
        *(record(str(i), f"zero {i}") for i in range(12)),
        "{not json", "", "   ", record("12", "twelve"), record(None, "no id"), record(None, "no id"),
        {"id": "13", "document": DOC}, {"id": "14", "document": 3, "summary": "s"},
        record("2", "zero 2"), record("3", "a clash in the same file"), record("9@part-1.jsonl.gz", "literal"),
    ]))
    (source / "part-1.jsonl.gz").write_bytes(gzip.compress(jsonl([
        *(record(str(i), f"one {i}") for i in range(10)),  # ids restarting: qualified
        record("4", "one 4"), record("5", "zero 5"), record("9", "one 9 again"),
        record("0", "zero 0"), "[1, 2]",
    ])))
    (source / "part-2.jsonl.bz2").write_bytes(bz2.compress(jsonl([record("1", "two 1"), record("1", "two 1")])))
    (source / "empty.jsonl").write_bytes(b"")
    (source / "table.csv").write_text(f"id,document,summary\nc0,{DOC} csv,csv summary\nc1,only two fields\n"
                                      f"0,{DOC} csv zero,s\nc0,{DOC} csv,csv summary\n")
    pq.write_table(pa.table({"id": ["q0", "q0", "1"], "document": [f"{DOC} q", f"{DOC} q", f"{DOC} q1"],
                             "summary": ["pq", "pq", "pq one"]}), source / "rows.parquet")
    (source / "paper.txt").write_text(f"{DOC} text\n")
    (source / "paper.summary.txt").write_text("a text summary\n")
    (source / ".hidden.jsonl").write_bytes(jsonl([record("h")]))
    (source / "README.md").write_text("# about\n")


def ingested(source: Path, out: Path, shards: int | None = None, **kwargs) -> tuple[bytes, bytes, dict]:
    """The rows, quarantine and report of ingesting ``source``; ``shards``: the id shard count it must have used."""
    rows, quarantine = out / "rows.jsonl", out / "quarantine.jsonl"
    report = ingest_source(source, rows, quarantine, max_bad_share=1.0, **kwargs)
    assert not [path for path in out.iterdir() if path.name.startswith(".")], "no temporary file is left"
    figures = dataclasses.asdict(report)
    used = figures.pop("dedup_shards")  # how it ran, not what it found: the rest is the same on any engine
    assert shards is None or used == shards, (used, shards)
    return rows.read_bytes(), quarantine.read_bytes(), figures


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray with 2 CPUs for the module, as CI's machine has; its workers see dummy AWS credentials (the
    object-storage test's server takes any)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": AWS_ENV})
    yield ray
    ray.shutdown()


@pytest.fixture
def small_pieces(monkeypatch):
    """Pieces of 5 records and key rows scattered 7 at a time: files span pieces, and decisions cross them."""
    monkeypatch.setattr(ingest_module, "PIECE_RECORDS", 5)
    monkeypatch.setattr(firsts, "SCATTER_ROWS", 7)


@pytest.mark.slow
def test_ingestion_writes_the_same_bytes_in_one_process_in_local_workers_and_on_ray(tmp_path, small_pieces,
                                                                                    local_ray, monkeypatch):
    source = tmp_path / "data" / "raw" / "bad"
    write_bad_source(source)
    erased = Example(id="bad/7", source="bad", group="7", document=f"{DOC} zero 7", summary="the summary zero 7")
    tombstones = Tombstones([tombstone_for(erased, "request-1")])
    runs = {"in memory": ingested(source, tmp_path / "one", shards=1, tombstones=tombstones)}
    with monkeypatch.context() as patched:
        patched.setattr(ingest_module, "PARALLEL_MIN_BYTES", 0)  # a large source: spooled to disk, 16 shards
        runs["spooled"] = ingested(source, tmp_path / "spooled", shards=16, tombstones=tombstones, workers=1)
        for count in (1, 300):
            runs[f"spooled, {count} shards"] = ingested(source, tmp_path / f"spooled-{count}", shards=count,
                                                        tombstones=tombstones, workers=1,
                                                        engine=EngineConfig(dedup_shards=count))
    runs["2 processes"] = ingested(source, tmp_path / "processes", tombstones=tombstones, workers=2)
    runs["ray"] = ingested(source, tmp_path / "ray", shards=3, tombstones=tombstones,
                           engine=EngineConfig(engine="ray", dedup_shards=3))
    runs["ray, 300 shards"] = ingested(source, tmp_path / "ray-300", shards=300, tombstones=tombstones,
                                       engine=EngineConfig(engine="ray", dedup_shards=300))

    rows, quarantine, report = runs["in memory"]
    reasons = report["quarantine_reasons"]
    for reason in ("invalid_json", "missing_field", "wrong_type", "not_an_object", "duplicate_id", "duplicate_record",
                   "empty_file", "malformed_row"):
        assert reasons.get(reason), (reason, reasons)
    # bad/7 is erased where it was read, and where a later file reuses its id (erasure is checked before an id is
    # qualified, as it always was)
    assert report["qualified_ids"]["part-1.jsonl.gz"] >= 8 and report["erased"] == 2
    assert b'"bad/9@part-1.jsonl.gz"' in rows and b"bad/7" not in rows
    entries = [json.loads(line) for line in quarantine.splitlines()]
    assert any(entry["reason"] == "duplicate_id" and "bad/9@part-1.jsonl.gz" in entry["detail"] for entry in entries)
    for name, run in runs.items():
        assert run[0] == rows, f"{name}: rows"
        assert run[1] == quarantine, f"{name}: quarantine"
        assert run[2] == report, f"{name}: report"


@pytest.mark.slow
def test_a_source_on_object_storage_reads_the_same_on_ray_its_tasks_reading_the_objects(tmp_path, small_pieces,
                                                                                         local_ray, monkeypatch):
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(ingest_module, "TASK_READ_BYTES", 2000)  # uncompressed objects but part-0.jsonl: by tasks
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket="corpora")
        files = tmp_path / "disk" / "data" / "raw" / "bad"
        write_bad_source(files)
        for path in sorted(files.iterdir()):
            client.put_object(Bucket="corpora", Key=f"bad/{path.name}", Body=path.read_bytes())
        source = tmp_path / "data" / "raw" / "bad"
        source.mkdir(parents=True)
        (source / SOURCE_CONFIG).write_text(
            f"location: s3://corpora/bad/\nstorage_options:\n  endpoint_url: {endpoint}\n  region: us-east-1\n")
        local = ingested(source, tmp_path / "local")
        on_ray = ingested(source, tmp_path / "ray", engine=EngineConfig(engine="ray", dedup_shards=2))
    finally:
        server.stop()
    assert on_ray == local
    assert local[2]["etags"] and local[2]["location"] == "s3://corpora/bad/"
    assert b'"url": "s3://corpora/bad/part-0.jsonl"' in local[1]
    disk = ingested(files, tmp_path / "disk")
    assert disk[0] == local[0], "the rows are those of the same files on disk"


def test_a_small_object_is_shipped_to_its_task_with_only_its_summary_beside_it(tmp_path):
    from tuneforge.corpus.objectstore import ObjectInfo, ObjectPath, ObjectStore

    listing = {name: ObjectInfo(name, 10, 0, "etag") for name in ("a.txt", "a.summary.txt", "b.txt", "c.jsonl")}
    store = ObjectStore("s3://bucket/prefix/", filesystem=object())
    data_file = readers.DataFile(ObjectPath(store, listing["a.txt"], "a.txt", listing), "a.txt", "text")
    options = readers.ReadOptions(raw_root=tmp_path)
    shipped = ingest_module._for_task(data_file, options)
    assert shipped.path.with_name("a.summary.txt").is_file() and not shipped.path.with_name("b.txt").is_file()
    assert ingest_module._read_by_task(data_file) and not ingest_module._read_by_task(
        readers.DataFile(tmp_path / "a.txt", "a.txt", "text"))


def test_decisions_come_back_by_position():
    rows = np.array([[7, firsts.CLASH, 0, 3], [2, firsts.QUALIFIED, 0, 0], [5, firsts.REPEAT, 1, 0]])
    decisions = firsts.Decisions.of(rows)
    assert decisions.positions.tolist() == [2, 5, 7]
    assert decisions.between(3, 8) == {5: (firsts.REPEAT, 1, 0), 7: (firsts.CLASH, 0, 3)}
    assert decisions.between(0, 2) == {}

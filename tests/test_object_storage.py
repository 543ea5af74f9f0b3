"""Sources and the DVC remote on object storage, against a real S3 server on loopback (moto's, started here): a
source listed and read through s3fs gives the same rows and quarantine as the same files on disk, and a curated
dataset pushed to an S3 remote by one workspace is pulled byte for byte by another."""

from __future__ import annotations

import bz2
import gzip
import json
import logging
import re
import shutil
import socket
import uuid
from pathlib import Path

import boto3
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto.server import ThreadedMotoServer

from resources.dvc import DvcRepository
from tuneforge.corpus.ingest import ingest_source
from tuneforge.corpus.objectstore import ObjectStore, ObjectStoreError, StorageOptions
from tuneforge.corpus.sources import SOURCE_CONFIG, SourceError, list_sources, load_source_config
from tuneforge.corpus.watch import WatchState, diff, scan
from tuneforge.layout import Layout
from tuneforge.monitoring.drift import read_raw_source
from tuneforge.project import ProjectFileError, load_project

REPO = Path(__file__).resolve().parents[1]
DOC = "Object storage holds the corpus shards that a single machine's disk cannot, read as streams of lines."
SUMMARY = "corpus shards read from object storage"
DUMMY_SECRET = "dummy-secret-never-logged"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 for this module's tests (each test uses buckets of its own)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint, monkeypatch, tmp_path):
    """Dummy credentials in the environment only (no AWS files, no instance metadata); a client to lay out data."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


def new_bucket(client) -> str:
    name = f"tf-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return name


def upload_tree(client, directory: Path, bucket: str, prefix: str) -> None:
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name != SOURCE_CONFIG:
            key = prefix + path.relative_to(directory).as_posix()
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())


def remote_config(endpoint: str, location: str, extra: str = "") -> str:
    return f"location: {location}\nstorage_options:\n  endpoint_url: {endpoint}\n  region: us-east-1\n{extra}"


def record(i: int, prefix: str = "p") -> dict:
    return {"id": f"{prefix}{i}", "document": f"{DOC} ({prefix} {i})", "summary": SUMMARY}


def lines(records: list) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


def write_corpus(source: Path) -> None:
    """One of each: gzip JSONL with a bad line, bzip2 JSONL, CSV with a malformed row, Parquet, a workbook, a plain
    text document and its summary, an id clash, a repeat, a hidden file, documentation and an unsupported file."""
    source.mkdir(parents=True)
    (source / "part-0.jsonl.gz").write_bytes(gzip.compress(lines(
        [record(0), record(1), '{"id": "broken", "document": ', record(2), record(1)])))
    (source / "nested" / "deeper").mkdir(parents=True)
    (source / "nested" / "deeper" / "part-1.jsonl.bz2").write_bytes(bz2.compress(lines([record(3), record(4)])))
    (source / "nested" / "table.csv").write_text(
        "id,document,summary\nc0,\"" + DOC + " (c0)\",csv summary one\nc1,only two fields\n"
        "c2,\"" + DOC + " (c2)\",csv summary two\n", encoding="utf-8")
    pq.write_table(pa.table({"id": ["q0", "q1"], "document": [f"{DOC} (q0)", f"{DOC} (q1)"],
                             "summary": ["parquet one", "parquet two"], "unused": [1, 2]}), source / "rows.parquet")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["id", "document", "summary"])
    sheet.append(["x0", f"{DOC} (x0)", "sheet summary"])
    sheet.append(["p0", f"{DOC} (clash)", "an id already read"])  # p0 again, other content, other file: qualified
    workbook.save(source / "sheet.xlsx")
    (source / "paper.txt").write_text(f"{DOC} (text)\n", encoding="utf-8")
    (source / "paper.summary.txt").write_text("a plain text summary\n", encoding="utf-8")
    (source / ".DS_Store").write_bytes(b"\0\0")
    (source / "README.md").write_text("# about this corpus\n")
    (source / "notes.docx").write_bytes(b"PK not read")
    (source / "empty.jsonl").write_bytes(b"")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def ingest(source_dir: Path, **kwargs):
    out = source_dir.parents[2] / "ingested"
    rows, quarantine = out / f"{source_dir.name}.jsonl", out / f"{source_dir.name}.quarantine.jsonl"
    report = ingest_source(source_dir, rows, quarantine, max_bad_share=1.0, **kwargs)
    return report, rows, quarantine


# --- inputs ---------------------------------------------------------------------------------------------------


def test_source_on_s3_reads_as_the_same_files_on_disk(s3, s3_endpoint, tmp_path):
    local = tmp_path / "disk" / "data" / "raw" / "papers"
    write_corpus(local)
    bucket = new_bucket(s3)
    upload_tree(s3, local, bucket, "corpora/papers/")
    remote = tmp_path / "bucket" / "data" / "raw" / "papers"
    remote.mkdir(parents=True)
    location = f"s3://{bucket}/corpora/papers"
    (remote / SOURCE_CONFIG).write_text(remote_config(s3_endpoint, location))

    on_disk, disk_rows, disk_quarantine = ingest(local)
    on_s3, s3_rows, s3_quarantine = ingest(remote)

    assert s3_rows.read_bytes() == disk_rows.read_bytes()
    rows = read_jsonl(s3_rows)
    assert len(rows) == 12 and {"papers/paper", "papers/p0@sheet.xlsx", "papers/q1", "papers/c2"} <= {
        row["id"] for row in rows}
    figures, expected = on_s3.as_dict(), on_disk.as_dict()
    assert figures.pop("location") == location + "/"
    listed = {item["Key"].removeprefix("corpora/papers/"): item["ETag"].strip('"')
              for item in s3.list_objects_v2(Bucket=bucket, Prefix="corpora/papers/")["Contents"]}
    assert figures.pop("etags") == {name: listed[name] for name in expected["files"]}
    assert figures == expected
    assert expected["quarantine_reasons"] == {"duplicate_record": 1, "empty_file": 1, "invalid_json": 1,
                                              "malformed_row": 1, "unsupported_file": 1}
    assert expected["skipped"] == {".DS_Store": "hidden", "README.md": "documentation"}
    assert expected["detected"] == {"nested/table.csv": {"delimiter": ",", "encoding": "utf-8"},
                                    "sheet.xlsx": {"sheet": "Sheet"}}

    entries = read_jsonl(s3_quarantine)
    assert all(entry.pop("url") == f"{location}/{entry['file']}" for entry in entries)
    assert entries == read_jsonl(disk_quarantine)
    bad = next(entry for entry in entries if entry["reason"] == "invalid_json")
    assert (bad["file"], bad["line"]) == ("part-0.jsonl.gz", 3)
    assert list(read_raw_source(remote)) == list(read_raw_source(local))  # drift monitoring reads it the same way


def test_bad_share_error_names_the_object_url_and_line(s3, s3_endpoint, tmp_path):
    bucket = new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="in/a.jsonl.gz", Body=gzip.compress(lines([record(0), "not json", "[1]"])))
    source = tmp_path / "data" / "raw" / "bad"
    source.mkdir(parents=True)
    (source / SOURCE_CONFIG).write_text(remote_config(s3_endpoint, f"s3://{bucket}/in/"))
    with pytest.raises(SourceError, match=rf"first at s3://{bucket}/in/a\.jsonl\.gz:2: invalid JSON"):
        ingest_source(source, tmp_path / "rows.jsonl", tmp_path / "q.jsonl", max_bad_share=0.5)
    assert [entry["url"] for entry in read_jsonl(tmp_path / "q.jsonl")] == [f"s3://{bucket}/in/a.jsonl.gz"] * 2


@pytest.mark.parametrize(("case", "match"), [
    ("missing bucket", r"the bucket does not exist"),
    ("empty prefix", r"no object lies under this prefix"),
    ("no credentials", r"no credentials were found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
])
def test_location_that_cannot_be_listed_fails_naming_source_and_url_and_keeps_outputs(
    s3, s3_endpoint, tmp_path, monkeypatch, case, match
):
    bucket = new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="in/a.jsonl", Body=lines([record(0)]))
    location = {"missing bucket": "s3://no-such-bucket-here/in/", "empty prefix": f"s3://{bucket}/nothing/",
                "no credentials": f"s3://{bucket}/in/"}[case]
    if case == "no credentials":
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    source = tmp_path / "data" / "raw" / "remote"
    source.mkdir(parents=True)
    (source / SOURCE_CONFIG).write_text(remote_config(s3_endpoint, location))
    rows, quarantine = tmp_path / "out" / "remote.jsonl", tmp_path / "out" / "remote.quarantine.jsonl"
    rows.parent.mkdir()
    rows.write_text("earlier rows\n")
    with pytest.raises(SourceError) as raised:
        ingest_source(source, rows, quarantine)
    message = str(raised.value)
    assert message.startswith(f"Source 'remote' ({location}): cannot list {location}: ")
    assert re.search(match, message), message
    assert DUMMY_SECRET not in message and raised.value.__cause__ is None
    assert rows.read_text() == "earlier rows\n" and not quarantine.exists()
    assert [p.name for p in rows.parent.iterdir()] == ["remote.jsonl"]  # no temporary file left behind


@pytest.mark.parametrize(("config", "match"), [
    ("location: s3://b-1/x/\nstorage_options:\n  endpoint: http://127.0.0.1:9000\n",
     r"unknown key 'storage_options\.endpoint' \(allowed: endpoint_url, region, profile, anon, requester_pays, "
     r"addressing_style\)"),
    (f"location: s3://b-1/x/\nstorage_options:\n  secret: {DUMMY_SECRET}\n",
     r"key 'storage_options\.secret': credentials are never read from source\.yaml; set AWS_ACCESS_KEY_ID"),
    ("location: s3://b-1/x/\nstorage_options:\n  endpoint_url: minio:9000\n",
     r"key 'storage_options\.endpoint_url': must be an http:// or https:// URL"),
    ("location: s3://b-1/x/\nstorage_options:\n  addressing_style: sideways\n",
     r"key 'storage_options\.addressing_style': Input should be 'auto', 'virtual' or 'path'"),
    ("location: s3://b-1/x/\nstorage_options: [endpoint_url]\n", r"key 'storage_options'"),
    ("location: gs://b-1/x/\n", r"key 'location': unsupported scheme 'gs://'; use s3://"),
    ("location: s3://Bad_Bucket/x/\n", r"key 'location': bucket name 'Bad_Bucket' is not valid"),
    ("location: s3://user:pw@b-1/x/\n", r"key 'location': must not hold credentials"),
    ("location: s3://b-1/../x/\n", r"key 'location': .*must not contain '\.' or '\.\.' segments"),
    ("storage_options:\n  region: eu-west-1\n", r"storage_options is set but location is not"),
])
def test_bad_storage_settings_name_the_file_and_key(tmp_path, config, match):
    source = tmp_path / "data" / "raw" / "s"
    source.mkdir(parents=True)
    (source / SOURCE_CONFIG).write_text(config)
    with pytest.raises(SourceError, match=r"s/source\.yaml: .*" + match) as raised:
        load_source_config(source)
    assert DUMMY_SECRET not in str(raised.value) and raised.value.__cause__ is None


def test_a_source_is_read_from_one_place(s3, s3_endpoint, tmp_path):
    source = tmp_path / "data" / "raw" / "both"
    source.mkdir(parents=True)
    (source / "a.jsonl").write_bytes(lines([record(0)]))
    (source / SOURCE_CONFIG).write_text(remote_config(s3_endpoint, "s3://some-bucket/x/"))
    with pytest.raises(SourceError, match=r"names location s3://some-bucket/x/, but .*both holds data files as well"):
        ingest_source(source, tmp_path / "r.jsonl", tmp_path / "q.jsonl")


def test_remote_sources_are_listed_without_contacting_the_server(tmp_path):
    raw = tmp_path / "raw"
    (raw / "remote").mkdir(parents=True)
    (raw / "remote" / SOURCE_CONFIG).write_text(remote_config("http://127.0.0.1:9", "s3://never-contacted/x/"))
    (raw / "empty").mkdir()
    assert list_sources(raw) == ["remote"]


def test_watch_uses_etags_and_holds_back_an_unreachable_location(s3, s3_endpoint, tmp_path, monkeypatch):
    bucket = new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="in/a.jsonl", Body=lines([record(0)]))
    s3.put_object(Bucket=bucket, Key="in/sub/b.csv", Body=b"id,document,summary\n")
    s3.put_object(Bucket=bucket, Key="in/.hidden/c.jsonl", Body=b"{}\n")
    s3.put_object(Bucket=bucket, Key="in/d.jsonl.part", Body=b"{}\n")
    raw = tmp_path / "raw"
    (raw / "remote").mkdir(parents=True)
    (raw / "remote" / SOURCE_CONFIG).write_text(remote_config(s3_endpoint, f"s3://{bucket}/in/"))
    hashed: list[Path] = []

    def hash_file(path: Path) -> str:
        hashed.append(path)
        return "sha-" + path.name

    def look(state: WatchState):
        return diff(state, scan(raw, now=4e9, settle_seconds=0), hash_file=hash_file)

    first = look(WatchState())
    assert [(c.source, c.added) for c in first.changed] == [("remote", ("a.jsonl", "source.yaml", "sub/b.csv"))]
    assert first.state.files["remote"]["a.jsonl"].sha256.startswith("etag:")
    assert hashed == [raw / "remote" / SOURCE_CONFIG]  # the objects are not downloaded to be hashed
    assert look(first.state).changed == []

    s3.put_object(Bucket=bucket, Key="in/a.jsonl", Body=lines([record(1)]))  # same size, maybe the same second
    again = look(first.state)
    assert [(c.modified, c.added, c.removed) for c in again.changed] == [(("a.jsonl",), (), ())]

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    unreachable = look(again.state)
    assert unreachable.changed == [] and unreachable.vanished == []
    assert "its location could not be listed" in unreachable.deferred["remote"]
    assert unreachable.state.files["remote"] == again.state.files["remote"]


# --- outputs --------------------------------------------------------------------------------------------------


def dvc_workspace(root: Path) -> Path:
    root.mkdir(parents=True)
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    return root


def test_curated_dataset_pushed_to_s3_is_pulled_byte_for_byte_by_another_workspace(s3, s3_endpoint, tmp_path):
    bucket = new_bucket(s3)
    remote = {"remote_url": f"s3://{bucket}/dvcstore", "remote_endpoint_url": s3_endpoint,
              "remote_region": "us-east-1"}
    producer = DvcRepository(root=str(dvc_workspace(tmp_path / "producer")), **remote)
    producer.ensure_initialized()
    layout = Layout(producer.path)
    layout.cleaned.mkdir(parents=True)
    (layout.cleaned / "papers.jsonl").write_bytes(lines([record(i) for i in range(9)]))
    layout.curated.mkdir(parents=True)
    for split, count in (("train", 5), ("validation", 2), ("test", 2)):
        (layout.curated / f"{split}.jsonl").write_bytes(lines([record(i, split) for i in range(count)]))
    (layout.curated / "manifest.json").write_text(json.dumps({"sizes": {"train": 5}}) + "\n")
    md5 = producer.commit("curate")["data/curated"]  # what curated_dataset does, then it pushes
    producer.push()
    pushed = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(pushed) == 5 and all(key.startswith("dvcstore/files/md5/") for key in pushed)

    consumer = DvcRepository(root=str(dvc_workspace(tmp_path / "consumer")), **remote)
    consumer.ensure_initialized()
    restored = consumer.restore(md5, tmp_path / "consumer" / "restored")
    assert files_of(restored) == files_of(layout.curated)
    config = (consumer.path / ".dvc" / "config.local").read_text()
    assert s3_endpoint in config and f"s3://{bucket}/dvcstore" in config
    assert DUMMY_SECRET not in config and "testing" not in config
    assert not list((consumer.path / ".dvc").glob("config")) or "testing" not in (
        consumer.path / ".dvc" / "config").read_text()


def files_of(directory: Path) -> dict[str, bytes]:
    return {path.relative_to(directory).as_posix(): path.read_bytes()
            for path in sorted(directory.rglob("*")) if path.is_file()}


def test_dvc_remote_is_set_from_the_project_file(tmp_path):
    (tmp_path / "tuneforge.yaml").write_text(
        "environment:\n  dvc:\n    remote_url: s3://datasets/tuneforge\n"
        "    remote_endpoint_url: http://127.0.0.1:9000\n")
    assert load_project(tmp_path).environment.dvc.model_dump() == {
        "remote_url": "s3://datasets/tuneforge", "remote_endpoint_url": "http://127.0.0.1:9000", "remote_region": ""}
    for settings, match in (("remote_endpoint: http://x", r"environment\.dvc\.remote_endpoint: Extra inputs"),
                            ("remote_url: /srv/dvc\n    remote_region: eu-west-1",
                             r"environment\.dvc: .*remote_region apply to an s3:// remote_url only$"),
                            ("remote_url: s3://AKIAEXAMPLE:se/cret@datasets/x",
                             r"environment\.dvc: .*must not hold credentials \(user:password@\); set AWS_[^@]*$")):
        (tmp_path / "tuneforge.yaml").write_text(f"environment:\n  dvc:\n    {settings}\n")
        with pytest.raises(ProjectFileError, match=r"tuneforge\.yaml: " + match):
            load_project(tmp_path)


def test_an_object_replaced_after_its_listing_is_not_read(s3, s3_endpoint):
    bucket = new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="in/a.jsonl", Body=lines([record(0)]))
    store = ObjectStore(f"s3://{bucket}/in", StorageOptions(endpoint_url=s3_endpoint))
    assert ObjectStore(f"s3://{bucket}", StorageOptions(endpoint_url=s3_endpoint)).list_dir() == ([], ["in"])
    (listed,), directories = store.list_dir()
    assert (listed.name, listed.size, directories) == ("a.jsonl", len(lines([record(0)])), [])
    with store.open(listed) as handle:
        assert handle.read() == lines([record(0)])
    s3.put_object(Bucket=bucket, Key="in/a.jsonl", Body=lines([record(1), record(2)]))
    with pytest.raises(ObjectStoreError, match=rf"s3://{bucket}/in/a\.jsonl was replaced after it was listed"):
        store.open(listed)


def test_a_task_process_reuses_one_filesystem_per_server_options_and_credentials(s3, s3_endpoint, monkeypatch,
                                                                                    tmp_path):
    """A store shipped to a task travels without its filesystem; the task's process takes one it already built for
    the same server, options and credentials, instead of building one (an AWS client, a connection pool) per piece."""
    import pickle

    from tuneforge.corpus import objectstore

    bucket = new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="in/a.jsonl", Body=lines([record(0)]))
    options = StorageOptions(endpoint_url=s3_endpoint, region="us-east-1")
    store = ObjectStore(f"s3://{bucket}/in/", options)
    shipped = pickle.dumps(store)
    assert DUMMY_SECRET.encode() not in shipped and b"S3FileSystem" not in shipped
    first, second = pickle.loads(shipped), pickle.loads(pickle.dumps(store))
    assert first._fs is second._fs and first._fs is not store._fs, "one per process, not one per piece"
    info = next(second.walk())
    with first.open(info) as handle:
        assert handle.read() == lines([record(0)])
    other = pickle.loads(pickle.dumps(ObjectStore(f"s3://{bucket}/in/", StorageOptions(endpoint_url=s3_endpoint))))
    assert other._fs is not first._fs, "other options, another filesystem"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "another-dummy-secret")
    rotated = pickle.loads(shipped)
    assert rotated._fs is not first._fs, "other credentials in the environment, another filesystem"
    monkeypatch.setattr(objectstore, "SHARED_FILESYSTEM_SECONDS", 0.0)
    assert pickle.loads(shipped)._fs is not rotated._fs, "none is kept past its time"
    injected = ObjectStore(f"s3://{bucket}/in/", options, filesystem=store._fs)
    assert pickle.loads(pickle.dumps(injected))._fs is not None, "a filesystem given by the caller travels with it"

    # Ingestion in task processes (spawned) reads the source as one process does.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET)
    source = tmp_path / "data" / "raw" / "papers"
    source.mkdir(parents=True)
    for part in range(4):
        s3.put_object(Bucket=bucket, Key=f"papers/part-{part}.jsonl",
                      Body=lines([record(part * 10 + i) for i in range(5)]))
    (source / SOURCE_CONFIG).write_text(remote_config(s3_endpoint, f"s3://{bucket}/papers/"))
    report, rows, _ = ingest(source, workers=1)
    expected = rows.read_bytes()
    parallel, rows, _ = ingest(source, workers=2)
    assert (parallel.rows, rows.read_bytes()) == (report.rows, expected) and report.rows == 20


def test_configured_remote_is_applied_once_and_follows_the_settings(tmp_path, monkeypatch):
    root = dvc_workspace(tmp_path / "ws")
    calls: list[tuple[str, ...]] = []
    run = DvcRepository._dvc

    def counted(self, *args: str) -> str:
        calls.append(args)
        return run(self, *args)

    monkeypatch.setattr(DvcRepository, "_dvc", counted)
    DvcRepository(root=str(root), remote_url="stores/a").ensure_initialized()
    calls.clear()
    DvcRepository(root=str(root), remote_url="stores/a").ensure_initialized()
    assert calls == [("config", "--local", "--list")]  # already as configured: nothing rewritten
    DvcRepository(root=str(root), remote_url="s3://b-1/x", remote_endpoint_url="http://127.0.0.1:9").ensure_initialized()
    DvcRepository(root=str(root), remote_url="s3://b-1/y").ensure_initialized()
    listed = dict(line.split("=", 1) for line in run(DvcRepository(root=str(root)), "config", "--local", "--list")
                  .splitlines())
    assert listed == {"core.remote": "tuneforge", "remote.tuneforge.url": "s3://b-1/y"}  # the endpoint went with it
    with pytest.raises(ValueError, match=r"DvcRepository config: remote_endpoint_url and remote_region apply to an "
                                         r"s3:// remote_url only"):
        DvcRepository(root=str(root), remote_url="stores/a", remote_endpoint_url="http://127.0.0.1:9")

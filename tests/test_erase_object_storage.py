"""Erasure and a source on object storage, against the real S3 server on loopback of tests/test_object_storage.py:
the bucket's objects are searched like raw files, the records found there are tombstoned (the next ingestion drops
them) but never rewritten (the bucket is the source owner's), the proof lists each object as outstanding at the
source, and a bucket that cannot be reached fails the plan before anything is written."""

from __future__ import annotations

import gzip
import json

import pytest

from pipelines.erase_command import _apply, _print_plan, _status
from tests import test_object_storage
from tests.test_governance import EMAIL, MAPPING, NAME, PHONE, _jsonl, _rows
from tests.test_object_storage import DUMMY_SECRET, new_bucket, remote_config
from tuneforge.corpus.ingest import ingest_source
from tuneforge.corpus.objectstore import ObjectStore, StorageOptions
from tuneforge.governance import audit
from tuneforge.governance.apply import Erasure
from tuneforge.governance.plan import HELD_AT_SOURCE, ErasureError, ErasurePlan, build_plan
from tuneforge.governance.tombstones import Tombstones
from tuneforge.layout import Layout

# The S3 server on loopback and the environment with dummy credentials, as tests/test_object_storage.py sets them up.
s3_endpoint = test_object_storage.s3_endpoint
s3 = test_object_storage.s3


def _bucket_source(client, endpoint: str, layout: Layout, name: str = "tickets") -> tuple[str, str]:
    """A source whose objects are in a new bucket: the person's record on line 3 of a gzip JSONL object, another
    object without them. Returns the bucket and the location."""
    bucket = new_bucket(client)
    client.put_object(Bucket=bucket, Key=f"{name}/part-0.jsonl.gz", Body=gzip.compress(_jsonl(_rows())))
    others = [{"ticket": f"u{n}", "body": f"Another customer, number {n}, asked where parcel {n * 11} is.",
               "resolution": f"Tracked parcel {n}."} for n in range(3)]
    client.put_object(Bucket=bucket, Key=f"{name}/more/part-1.jsonl", Body=_jsonl(others))
    source = layout.raw / name
    source.mkdir(parents=True)
    location = f"s3://{bucket}/{name}/"
    (source / "source.yaml").write_text(remote_config(endpoint, location) + MAPPING)
    return bucket, location


def _objects(client, bucket: str) -> dict[str, tuple[str, bytes]]:
    """Every object of the bucket: key -> (ETag, bytes)."""
    listing = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {item["Key"]: (item["ETag"], client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            for item in listing}


def _ingest(layout: Layout, source: str = "tickets"):
    layout.ingested.mkdir(parents=True, exist_ok=True)
    return ingest_source(layout.raw / source, layout.ingested / f"{source}.jsonl",
                         layout.ingested / f"{source}.quarantine.jsonl",
                         tombstones=Tombstones.load(layout.tombstones))


def test_a_person_in_a_bucket_source_is_tombstoned_listed_as_held_at_the_source_and_not_read_again(
        s3, s3_endpoint, tmp_path, capsys):
    layout = Layout(tmp_path / "ws")
    bucket, location = _bucket_source(s3, s3_endpoint, layout)
    assert _ingest(layout).rows == 9
    assert EMAIL in (layout.ingested / "tickets.jsonl").read_text()
    before = _objects(s3, bucket)

    plan, needles = build_plan(layout, None, [], [EMAIL, PHONE])
    url = f"{location}part-0.jsonl.gz"
    etag = before["tickets/part-0.jsonl.gz"][0].strip('"')
    assert [(r["file"], r["position"], r["url"], r["etag"]) for r in plan.records] == [
        ("part-0.jsonl.gz", 3, url, etag)]
    assert "id_sha256" in plan.records[0], "a tombstone is planned for it"
    assert plan.held_at_source == [{"source": "tickets", "file": "part-0.jsonl.gz", "url": url, "etag": etag,
                                    "positions": [3], "tombstoned": True, "note": HELD_AT_SOURCE}]
    assert plan.raw_files == [], "no local raw file to rewrite"
    assert plan.datasets == ["data/ingested/tickets.jsonl"] and plan.counts()["source_objects"] == 1

    _print_plan(plan, layout, type("Args", (), {"apply": False, "experiment": "baseline"})())
    printed = capsys.readouterr().out
    assert f"{url}:3" in printed and "held by the source's owner: not rewritten" in printed
    assert f"{url} (ETag {etag}): record(s) at 3; tombstoned" in printed

    retrained = []

    def retrain() -> dict:  # what the retrain step does first: every source ingested again, tombstones honoured
        retrained.append(_ingest(layout))
        return {"promoted": False}

    assert _apply(Erasure(plan, layout, None, needles, retrain, log=lambda _: None)) == 0
    done = ErasurePlan.load(layout.erasure_requests / f"{plan.request}.json")
    assert done.state == "done"
    assert done.outcome["raw"] == {"rewritten": 0, "deleted": 0, "already": 0, "held_at_source": 1}
    assert done.outcome["verify"]["outstanding_at_source"] == [
        {"source": "tickets", "file": "part-0.jsonl.gz", "url": url, "etag": etag, "positions": [3],
         "tombstoned": True, "note": HELD_AT_SOURCE}], "the proof says where the person remains, not 'erased'"
    printed = capsys.readouterr().out
    assert "8 record(s) erased" not in printed and "0 record(s) erased from the workspace, 1 more tombstoned but " \
        "outstanding at the source" in printed
    assert "OUTSTANDING AT THE SOURCE: 1 object(s)" in printed and url in printed

    # The bucket is untouched: the same objects, the same ETags, the same bytes.
    assert _objects(s3, bucket) == before
    # The re-ingestion (the retrain's) and any later one drop the record though the object still holds it.
    assert retrained[0].erased == 1 and retrained[0].rows == 8
    again = _ingest(layout)
    assert again.erased == 1 and again.rows == 8 and again.as_dict()["erasures"] == [plan.request]
    assert EMAIL not in (layout.ingested / "tickets.jsonl").read_text() + (
        layout.ingested / "tickets.quarantine.jsonl").read_text()

    trail = layout.erasure_log.read_text() + (layout.erasure_requests / f"{plan.request}.json").read_text()
    assert EMAIL not in trail and NAME not in trail and "7946" not in trail and DUMMY_SECRET not in trail
    verify = [entry for entry in audit.read(layout.erasure_log) if entry["event"] == "step verify"]
    assert verify[0]["detail"]["outstanding_at_source"][0]["url"] == url, "the audit log records it too"
    assert _status(layout) == 0
    assert f"outstanding at the source ({HELD_AT_SOURCE}): {url} (ETag {etag})" in capsys.readouterr().out


def test_a_record_put_in_the_bucket_after_the_plan_keeps_the_erasure_from_being_reported_done(
        s3, s3_endpoint, tmp_path):
    layout = Layout(tmp_path / "ws")
    bucket, location = _bucket_source(s3, s3_endpoint, layout)
    plan, needles = build_plan(layout, None, [], [EMAIL])
    late = [{"ticket": "t-late", "body": f"A new complaint from {EMAIL} about a second refund.",
             "resolution": "Escalated."}]
    s3.put_object(Bucket=bucket, Key="tickets/late.jsonl", Body=_jsonl(late))  # not tombstoned by this plan
    with pytest.raises(ErasureError, match=rf"not complete.*{location}late\.jsonl.*not tombstoned"):
        Erasure(plan, layout, None, needles, lambda: {}, log=lambda _: None).run()
    assert ErasurePlan.load(layout.erasure_requests / f"{plan.request}.json").state == "applying"


def test_a_person_absent_from_the_bucket_is_not_planned(s3, s3_endpoint, tmp_path):
    layout = Layout(tmp_path / "ws")
    _bucket_source(s3, s3_endpoint, layout)
    plan, _ = build_plan(layout, None, [], ["someone.else@example.org"])
    assert plan.empty and plan.records == [] and plan.held_at_source == []


def test_an_unreachable_bucket_fails_the_plan_naming_the_source_and_url_and_changes_nothing(
        s3, s3_endpoint, tmp_path):
    layout = Layout(tmp_path / "ws")
    _bucket_source(s3, s3_endpoint, layout)  # a reachable source beside it
    gone = layout.raw / "archive"
    gone.mkdir(parents=True)
    location = "s3://tf-no-such-bucket-here/archive/"
    (gone / "source.yaml").write_text(remote_config(s3_endpoint, location) + MAPPING)
    before = sorted(path.relative_to(layout.root) for path in layout.root.rglob("*"))
    with pytest.raises(ErasureError) as failed:
        build_plan(layout, None, [], [EMAIL])
    message = str(failed.value)
    assert "Source 'archive'" in message and location in message and "bucket does not exist" in message
    assert "nothing was changed" in message and DUMMY_SECRET not in message
    assert sorted(path.relative_to(layout.root) for path in layout.root.rglob("*")) == before
    assert not layout.governance.exists(), "no tombstone, request or audit entry"

    # A server that cannot be reached at all fails the same way.
    (gone / "source.yaml").write_text(remote_config("http://127.0.0.1:9", location) + MAPPING)
    with pytest.raises(ErasureError, match=r"Source 'archive' \(s3://tf-no-such-bucket-here/archive/\).*cannot list"):
        build_plan(layout, None, [], [EMAIL])
    assert not layout.governance.exists()


def test_a_strict_store_fails_on_an_object_it_may_not_read(s3, s3_endpoint):
    """An erasure's search cannot skip an object it is refused (an ingestion with other credentials may read it):
    the store it reads through turns the refusal into an error rather than an unreadable file."""
    bucket = new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="p/a.jsonl", Body=b"{}\n")
    options = StorageOptions(endpoint_url=s3_endpoint, region="us-east-1")

    class Refusing:
        def __init__(self, real):
            self.real = real

        def ls(self, *args, **kwargs):
            return self.real.ls(*args, **kwargs)

        def open(self, *args, **kwargs):
            raise PermissionError("AccessDenied")

    import fsspec

    from tuneforge.corpus.objectstore import ObjectStoreError

    real = fsspec.filesystem("s3", **options.filesystem_kwargs())
    lenient = ObjectStore(f"s3://{bucket}/p/", options, Refusing(real))
    strict = ObjectStore(f"s3://{bucket}/p/", options, Refusing(real), strict=True)
    info = next(lenient.walk())
    with pytest.raises(PermissionError):
        lenient.open(info)
    with pytest.raises(ObjectStoreError, match=rf"cannot read s3://{bucket}/p/a\.jsonl: access denied"):
        strict.open(info)


def test_bucket_sources_leave_local_sources_erased_as_before(s3, s3_endpoint, tmp_path):
    layout = Layout(tmp_path / "ws")
    _bucket_source(s3, s3_endpoint, layout)
    local = layout.raw / "desk"
    local.mkdir(parents=True)
    (local / "source.yaml").write_text(MAPPING)
    (local / "a.jsonl").write_bytes(_jsonl(_rows()))
    plan, needles = build_plan(layout, None, [], [EMAIL])
    assert sorted((r["source"], r.get("url") is not None) for r in plan.records) == [("desk", False),
                                                                                      ("tickets", True)]
    assert [entry["file"] for entry in plan.raw_files] == ["a.jsonl"] and len(plan.held_at_source) == 1
    Erasure(plan, layout, None, needles, lambda: {}, log=lambda _: None).run()
    assert EMAIL not in (local / "a.jsonl").read_text(), "the local file is rewritten"
    assert len(json.loads((layout.erasure_requests / f"{plan.request}.json").read_text())["outcome"]["verify"]
               ["outstanding_at_source"]) == 1
    assert len(Tombstones.load(layout.tombstones)) == 2, "one tombstone per source's record"

"""The data funnel on Ray gives the same bytes as on this machine: the same kept and rejected rows and the same
funnel, whichever engine and however many workers ran the chunks."""

import json
from pathlib import Path

import pytest

from tuneforge.corpus.aclsum import papers
from tuneforge.corpus.clean import clean_file
from tuneforge.corpus.curate import curate_sources
from tuneforge.corpus.engines import EngineConfig, open_engine
from tuneforge.corpus.records import stable_id
from tuneforge.profiles import load_profile

pytestmark = pytest.mark.slow

GERMAN = ("Die vorgeschlagene Methode verbessert die Übersetzungsqualität deutlich, wie unsere Experimente auf "
          "mehreren Datensätzen zeigen, und sie benötigt dafür keine zusätzlichen Trainingsdaten oder Annotationen.")


def _rows(count: int) -> list[dict]:
    """Real papers with what cleaning must catch: exact and near copies, personal data, a document too short to be
    one, another language, markup."""
    rows = []
    for index, paper in enumerate(papers()[:count]):
        document = " ".join(s for section in ("abstract", "introduction") for s in paper["sentences"][section])
        row = {"id": f"p/{paper['id']}", "source": "p", "group": paper["id"], "document": document,
               "summary": paper["summary"]["outcome"], "references": []}
        if index % 9 == 1:
            row["document"] += f" Contact the first author at author{index}@example.org or +1 415 555 0{index:03d}."
        if index % 13 == 2:
            row["document"] = "<p>" + row["document"] + "</p>"
        rows.append(row)
        if index % 7 == 3:
            rows.append({**row, "id": f"p/{paper['id']}-copy"})
        if index % 11 == 4:
            words = row["document"].split()
            words[len(words) // 2] = "notably"
            rows.append({**row, "id": f"p/{paper['id']}-near", "document": " ".join(words)})
    rows.append({**rows[0], "id": "p/short", "group": "short", "document": "Too short."})
    rows.append({**rows[0], "id": "p/german", "group": "german", "document": GERMAN * 3})
    return rows


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("engines") / "rows.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in _rows(160)))
    return path


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray with 2 CPUs for the module, as CI's machine has."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def _clean(corpus: Path, out: Path, shards: int = 16, **engine) -> tuple[bytes, bytes, list]:
    """Kept rows, rejected rows and funnel of cleaning ``corpus``, which must have used ``shards`` dedup shards."""
    config = load_profile("demo").cleaning
    cleaned = clean_file(corpus, out / "kept.jsonl", out / "rejected.jsonl", config, **engine)
    assert cleaned.dedup_shards == shards
    return (out / "kept.jsonl").read_bytes(), (out / "rejected.jsonl").read_bytes(), cleaned.funnel.as_rows()


def test_cleaning_on_ray_writes_the_same_bytes_as_in_one_process_and_in_local_workers(corpus, tmp_path, local_ray):
    one = _clean(corpus, tmp_path / "one", workers=1)
    processes = _clean(corpus, tmp_path / "processes", workers=2)
    on_ray = _clean(corpus, tmp_path / "ray", engine=EngineConfig(engine="ray"))

    kept, rejected, funnel = one
    removed = {json.loads(line)["reason"] for line in rejected.splitlines()}
    assert {"exact_duplicate", "near_duplicate", "document_length"} <= removed, removed
    assert b"@example.org" not in kept, "personal data was redacted"
    assert processes == one
    assert on_ray == one


def test_cleaning_writes_the_same_bytes_for_any_shard_count_on_any_engine(corpus, tmp_path, local_ray):
    expected = _clean(corpus, tmp_path / "auto", workers=1)  # a small input: the floor of 16
    for count in (1, 300):
        assert _clean(corpus, tmp_path / f"one-{count}", count, workers=1,
                      engine=EngineConfig(dedup_shards=count)) == expected, count
    assert _clean(corpus, tmp_path / "processes-300", 300, workers=2, engine=EngineConfig(dedup_shards=300)) == expected
    for count in (1, 16, 300):
        assert _clean(corpus, tmp_path / f"ray-{count}", count,
                      engine=EngineConfig(engine="ray", dedup_shards=count)) == expected, count


def test_curation_on_ray_writes_the_same_bytes_as_locally(corpus, tmp_path, local_ray):
    profile = load_profile("demo")
    sources = {}
    for name in ("a", "b"):  # two sources sharing papers: cross-source duplicates for curation to find
        sources[name] = tmp_path / f"{name}.jsonl"
        lines = corpus.read_text().splitlines(keepends=True)
        sources[name].write_text("".join(lines[: 120] if name == "a" else lines[60:]))
    written = []
    runs = (("local", EngineConfig(), 16), ("ray", EngineConfig(engine="ray", dedup_shards=3), 3),
            ("local-1", EngineConfig(dedup_shards=1), 1), ("local-300", EngineConfig(dedup_shards=300), 300),
            ("ray-300", EngineConfig(engine="ray", dedup_shards=300), 300))
    for name, engine, shards in runs:
        out = tmp_path / name
        curated = curate_sources(sources, out, profile.split, profile.cleaning, engine=engine)
        assert curated.dedup_shards == shards, name
        written.append({path.name: path.read_bytes() for path in sorted(out.iterdir()) if path.is_file()})
    assert b"exact_duplicate" in written[0]["removed.jsonl"]
    for name, files in zip([name for name, _, _ in runs], written, strict=True):
        assert files == written[0], name


def test_the_ray_engine_joins_a_running_ray_and_leaves_it_running(local_ray):
    with open_engine(EngineConfig(engine="ray"), local_workers=1) as engine:
        assert engine.workers == 2
        items = [str(n) for n in range(20)]
        expected = [stable_id(item, "salt") for item in items]
        assert list(engine.map_ordered(stable_id, items, "salt")) == expected, "results come back in input order"
    assert local_ray.is_initialized()


def test_an_unknown_engine_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="'local' or 'ray'"):
        EngineConfig(engine="spark")


def test_dedup_shards_in_rays_object_store_find_what_file_shards_find(tmp_path, local_ray):
    import numpy as np

    from tuneforge.corpus.shards import FileShards, RayShards, ShardedDuplicateFinder

    rng = np.random.default_rng(7)
    exact = rng.integers(0, 400, size=2000).astype(np.uint64)
    bands = rng.integers(0, 900, size=(2000, 4)).astype(np.uint64)
    found = []
    ray_shards = RayShards(local_ray, 300, buffer_bytes=20_000)  # a flush every few chunks, 300 objects each
    for shards in (FileShards(tmp_path, 5), RayShards(local_ray, 5), ray_shards):
        finder = ShardedDuplicateFinder(shards)
        for start in range(0, 2000, 100):
            finder.add(exact[start:start + 100], bands[start:start + 100])
        found.append({row: (d.kept, d.reason, d.partner) for row, d in finder.find(lambda a, b: "near").items()})
    assert found[0] and found[1] == found[0] and found[2] == found[0]
    scattered = 2000 * (2 + 4 * 3) * 8
    assert ray_shards.writes <= (scattered // 20_000 + 1) * 300 * 2, "objects per flush, not per chunk"
    assert ray_shards.writes < 20 * 300 * 2

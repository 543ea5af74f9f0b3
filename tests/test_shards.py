"""Dedup state in shards finds exactly the duplicates the in-memory finder finds, whatever the shard count and however
the rows arrive in chunks, with colliding keys, empty shards and chains of near duplicates."""

import numpy as np
import pytest

from tuneforge.corpus.dedup import DuplicateFinder
from tuneforge.corpus.shards import FileShards, MemoryShards, ShardedDuplicateFinder


def _as_tuples(duplicates: dict) -> dict:
    return {int(row): (int(d.kept), d.reason, int(d.partner), d.similarity) for row, d in duplicates.items()}


def _verify(earlier: int, later: int) -> str | None:
    return None if (earlier * 7 + later * 3) % 5 == 0 else f"{earlier}~{later}"  # some candidates are rejected


@pytest.mark.parametrize("seed", range(12))
def test_sharded_keys_give_the_duplicates_of_the_in_memory_finder(tmp_path, seed):
    rng = np.random.default_rng(seed)
    rows, band_count = int(rng.integers(1, 3000)), int(rng.integers(1, 6))
    exact = rng.integers(0, rows // 3 + 2, size=rows).astype(np.uint64)
    bands = rng.integers(0, rows // 2 + 2, size=(rows, band_count)).astype(np.uint64)
    chunk = int(rng.integers(1, 400))
    whole, sharded = DuplicateFinder(), ShardedDuplicateFinder(FileShards(tmp_path, int(rng.integers(1, 9))))
    for start in range(0, rows, chunk):
        whole.add(exact[start:start + chunk], bands[start:start + chunk])
        sharded.add(exact[start:start + chunk], bands[start:start + chunk])
    expected = whole.find(_verify)
    assert expected, "the case must hold duplicates to mean anything"
    assert _as_tuples(sharded.find(_verify)) == _as_tuples(expected)
    assert sharded.rows == rows


def test_no_rows_no_duplicates(tmp_path):
    assert ShardedDuplicateFinder(FileShards(tmp_path, 4)).find(_verify) == {}


def test_mismatched_keys_are_refused(tmp_path):
    with pytest.raises(ValueError, match="3 exact keys but 2 band-key rows"):
        ShardedDuplicateFinder(FileShards(tmp_path)).add(np.zeros(3), np.zeros((2, 4)))


def _chunks(seed: int, rows: int, chunk: int):
    rng = np.random.default_rng(seed)
    exact = rng.integers(0, rows // 3 + 2, size=rows).astype(np.uint64)
    bands = rng.integers(0, rows // 2 + 2, size=(rows, 4)).astype(np.uint64)
    return [(exact[start:start + chunk], bands[start:start + chunk]) for start in range(0, rows, chunk)]


@pytest.mark.parametrize("buffer_bytes", [1, 5000, None])
def test_any_shard_count_and_buffer_size_find_the_same_duplicates(tmp_path, buffer_bytes):
    chunks = _chunks(3, 4000, 97)
    whole = DuplicateFinder()
    for exact, bands in chunks:
        whole.add(exact, bands)
    expected = _as_tuples(whole.find(_verify))
    assert expected
    for count in (1, 16, 300):
        for shards in (FileShards(tmp_path / f"{count}-{buffer_bytes}", count, buffer_bytes),
                       MemoryShards(count, buffer_bytes)):
            sharded = ShardedDuplicateFinder(shards)
            for exact, bands in chunks:
                sharded.add(exact, bands)
            assert _as_tuples(sharded.find(_verify)) == expected, (count, type(shards).__name__)


def test_many_shards_cost_pieces_per_buffer_not_per_chunk(tmp_path):
    """400 chunks of 50 rows into 300 shards: unbuffered, each chunk would append to about every shard (some 200,000
    writes); buffered, each flush writes each shard once per kind."""
    chunks = _chunks(5, 20_000, 50)
    buffer_bytes = 1 << 20
    shards = FileShards(tmp_path, 300, buffer_bytes)
    finder = ShardedDuplicateFinder(shards)
    scattered = 0
    for exact, bands in chunks:
        finder.add(exact, bands)
        scattered += exact.nbytes * 2 + bands.nbytes * 3  # the records: (key, row) and (band, key, row)
        assert shards._pending_bytes < buffer_bytes, "the buffer stays under its bound"
    finder.find(_verify)
    flushes = scattered // buffer_bytes + 1
    assert shards.writes <= flushes * 300 * 2, shards.writes
    assert shards.writes < len(chunks) * 300 / 20
    assert len(list(tmp_path.iterdir())) == 600


def test_a_buffer_as_large_as_the_input_writes_each_shard_once(tmp_path):
    shards = FileShards(tmp_path, 64)
    finder = ShardedDuplicateFinder(shards)
    for exact, bands in _chunks(11, 5000, 10):
        finder.add(exact, bands)
    finder.find(_verify)
    assert shards.writes == 2 * 64

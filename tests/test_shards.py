"""Dedup state in shards finds exactly the duplicates the in-memory finder finds, whatever the shard count and however
the rows arrive in chunks, with colliding keys, empty shards and chains of near duplicates."""

import numpy as np
import pytest

from tuneforge.corpus.dedup import DuplicateFinder
from tuneforge.corpus.shards import FileShards, ShardedDuplicateFinder


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

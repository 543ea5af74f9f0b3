"""JSONL files → pandas frames with the computed columns the suites check (word counts, splits per group)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tuneforge.corpus.records import SPLITS, read_jsonl
from tuneforge.profiles import SplitConfig

# Column → GX type name (``str``/``list`` are checked value by value on object columns).
COLUMN_TYPES = {
    "id": "str",
    "source": "str",
    "group": "str",
    "document": "str",
    "summary": "str",
    "references": "list",
    "language": "str",
}
NON_NULL_COLUMNS = ("id", "source", "group", "document", "summary", "language")
WORD_COUNT_COLUMNS = {"document": "document_words", "summary": "summary_words"}

# Failing rows are reported by this column: the row's id, or its position in the file when the id is missing.
ROW_REF = "row_ref"


def read_rows(path: Path) -> pd.DataFrame:
    """A file's rows with ``row_ref`` and word counts; an empty file gives an empty frame with the schema's columns."""
    if not path.is_file():
        raise FileNotFoundError(f"Data file to validate not found: {path}")
    records = list(read_jsonl(path))
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=list(COLUMN_TYPES))
    positions = pd.Series([f"{path.name} row {n}" for n in range(1, len(frame) + 1)], index=frame.index, dtype=object)
    ids = frame["id"] if "id" in frame else pd.Series(None, index=frame.index, dtype=object)
    frame[ROW_REF] = ids.where(ids.notna(), positions).astype(str)
    for text_column, count_column in WORD_COUNT_COLUMNS.items():
        if text_column in frame:
            frame[count_column] = frame[text_column].map(_word_count).astype(float)
    return frame


def read_splits(curated_dir: Path) -> pd.DataFrame:
    """All splits in one frame with a ``split`` column and ``group_splits`` (distinct splits of each row's group)."""
    frames = []
    for split in SPLITS:
        frame = read_rows(curated_dir / f"{split}.jsonl")
        frame["split"] = split
        frames.append(frame)
    # pandas warns about concatenating empty frames; keep one only when every split is empty.
    combined = pd.concat([frame for frame in frames if len(frame)] or frames[:1], ignore_index=True)
    if "group" in combined:
        combined["group_splits"] = combined.groupby("group")["split"].transform("nunique")
    return combined


def split_shares(combined: pd.DataFrame, config: SplitConfig) -> pd.DataFrame:
    """One row per split: its row count, share of all rows, configured share and the absolute deviation."""
    expected = {
        "train": 1.0 - config.validation_share - config.test_share,
        "validation": config.validation_share,
        "test": config.test_share,
    }
    counts = combined["split"].value_counts().reindex(SPLITS, fill_value=0)
    total = int(counts.sum())
    table = pd.DataFrame(
        {"split": list(SPLITS), "rows": counts.to_numpy(), "expected_share": [expected[name] for name in SPLITS]}
    )
    table["share"] = table["rows"] / total if total else 0.0
    table["share_deviation"] = (table["share"] - table["expected_share"]).abs()
    return table


def _word_count(text: object) -> int | None:
    return len(text.split()) if isinstance(text, str) else None

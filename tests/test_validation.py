import json
from pathlib import Path
from typing import NamedTuple

import pytest

from tuneforge.corpus.records import write_jsonl
from tuneforge.profiles import load_profile
from tuneforge.validation import ValidationOutcome, validate_cleaned, validate_curated

PROFILE = load_profile("smoke")
# What cleaning applied (it learns length bounds per source; here, a floor of 5 document words).
CLEANED_WITH = PROFILE.cleaning.model_copy(update={"min_document_words": 5})
SPLIT_SIZES = {"train": 14, "validation": 2, "test": 4}  # the configured 70/10/20


def row(row_id: str, **fields: object) -> dict[str, object]:
    return {
        "id": row_id,
        "source": "papers",
        "group": row_id,
        "document": f"This is the body of paper {row_id}, which describes a method and reports what it found.",
        "summary": f"Paper {row_id} proposes a method.",
        "references": [],
        "language": "en",
    } | fields


def failing(outcome: ValidationOutcome) -> dict[tuple[str, str | None], list[str]]:
    return {(item.expectation, item.column): item.failing_ids for item in outcome.failed}


def write_curated(directory: Path, extra: dict[str, list[dict]] | None = None, sizes=SPLIT_SIZES) -> Path:
    extra = extra or {}
    for split, size in sizes.items():
        rows = [row(f"{split}-{n}") for n in range(size)] + extra.get(split, [])
        write_jsonl(directory / f"{split}.jsonl", rows)
    return directory


def test_clean_file_passes(tmp_path):
    path = tmp_path / "papers.jsonl"
    write_jsonl(path, [row(f"ok-{n}") for n in range(5)])

    outcome = validate_cleaned(path, PROFILE, CLEANED_WITH)

    assert outcome.success, outcome.as_markdown()
    assert outcome.rows == 5
    assert outcome.failed == []
    json.dumps(outcome.as_dict())


def without_language(row_id: str) -> dict[str, object]:
    data = row(row_id)
    del data["language"]
    return data


class Defect(NamedTuple):
    row: dict[str, object]
    expectation: str
    column: str
    reported_id: str | None = None  # the id the failure names, when not the row's own


# Each defective row and the one expectation (type, column) it must fail.
DEFECTS = {
    "duplicate id": Defect(
        row("ok-2", summary="Another paper reusing an id."), "expect_column_values_to_be_unique", "id", "ok-2"
    ),
    "null language": Defect(row("null-lang", language=None), "expect_column_values_to_not_be_null", "language"),
    "missing language": Defect(without_language("no-lang"), "expect_column_values_to_not_be_null", "language"),
    "short document": Defect(
        row("short-doc", document="Too short."), "expect_column_values_to_be_between", "document_words"
    ),
    "e-mail in summary": Defect(
        row("email", summary="Write to jane.doe@example.org for the data."),
        "expect_column_values_to_not_match_regex",
        "summary",
    ),
    "duplicate pair": Defect(
        row("copy", document=row("ok-1")["document"], summary=row("ok-1")["summary"]),
        "expect_compound_columns_to_be_unique",
        "document, summary",
    ),
    "wrong language": Defect(row("german", language="de"), "expect_column_values_to_be_in_set", "language"),
}


@pytest.fixture(scope="module")
def defective_outcome(tmp_path_factory) -> ValidationOutcome:
    """One file holding every defect on its own row, validated once: the suite must tell them apart."""
    path = tmp_path_factory.mktemp("cleaned") / "papers.jsonl"
    write_jsonl(path, [row(f"ok-{n}") for n in range(4)] + [defect.row for defect in DEFECTS.values()])
    return validate_cleaned(path, PROFILE, CLEANED_WITH)


@pytest.mark.parametrize("defect", DEFECTS)
def test_each_defect_fails_its_expectation_and_names_the_row(defective_outcome, defect):
    expected = DEFECTS[defect]
    key = (expected.expectation, expected.column)
    reported_id = expected.reported_id or expected.row["id"]

    failures = failing(defective_outcome)

    assert not defective_outcome.success
    assert reported_id in failures[key], defective_outcome.as_markdown()
    assert [other for other, ids in failures.items() if reported_id in ids and other != key] == []


def test_only_the_defects_fail(defective_outcome):
    expected = {(defect.expectation, defect.column) for defect in DEFECTS.values()}
    assert set(failing(defective_outcome)) == expected


def test_outcome_reports_the_defect(defective_outcome):
    email = next(item for item in defective_outcome.failed if item.column == "summary" and "EMAIL" in item.detail)
    assert email.unexpected_count == 1
    assert failing(defective_outcome)[("expect_compound_columns_to_be_unique", "document, summary")] == ["ok-1", "copy"]

    table = defective_outcome.as_markdown()
    assert "| expect_column_values_to_not_match_regex | summary | ✗ | 1 | email | residual PII: EMAIL |" in table
    assert "✓" in table
    as_dict = json.loads(json.dumps(defective_outcome.as_dict()))
    assert as_dict["success"] is False and as_dict["rows"] == 4 + len(DEFECTS)


def test_failing_ids_are_capped(tmp_path):
    path = tmp_path / "papers.jsonl"
    write_jsonl(path, [row(f"de-{n}", language="de") for n in range(PROFILE.validation.max_failed_rows_shown + 5)])

    (language,) = validate_cleaned(path, PROFILE, CLEANED_WITH).failed

    assert language.unexpected_count == PROFILE.validation.max_failed_rows_shown + 5
    assert len(language.failing_ids) == PROFILE.validation.max_failed_rows_shown


def test_row_without_id_is_named_by_position(tmp_path):
    path = tmp_path / "papers.jsonl"
    anonymous = row("ok-1")
    del anonymous["id"]
    write_jsonl(path, [row("ok-0"), anonymous])

    failures = failing(validate_cleaned(path, PROFILE, CLEANED_WITH))

    assert failures[("expect_column_values_to_not_be_null", "id")] == ["papers.jsonl row 2"]


def test_empty_file_fails_clearly(tmp_path):
    path = tmp_path / "papers.jsonl"
    path.write_text("")

    outcome = validate_cleaned(path, PROFILE, CLEANED_WITH)

    assert not outcome.success
    assert outcome.rows == 0
    (empty,) = outcome.failed
    assert empty.expectation == "expect_table_row_count_to_be_between"
    assert "empty" in empty.detail and "observed 0" in empty.detail


def test_missing_file_raises(tmp_path):
    path = tmp_path / "nowhere.jsonl"
    with pytest.raises(FileNotFoundError, match="nowhere.jsonl"):
        validate_cleaned(path, PROFILE, CLEANED_WITH)


def test_clean_curated_dataset_passes(tmp_path):
    outcome = validate_curated(write_curated(tmp_path), PROFILE)

    assert outcome.success, outcome.as_markdown()
    assert outcome.rows == sum(SPLIT_SIZES.values())


def test_group_straddling_splits_and_id_reused_across_splits_fail(tmp_path):
    extra = {
        "test": [row("straddler", group="train-0"), row("train-1", group="reused-id", summary="A different paper.")]
    }

    outcome = validate_curated(write_curated(tmp_path, extra), PROFILE)

    failures = failing(outcome)
    assert failures[("expect_column_values_to_be_between", "group_splits")] == ["train-0", "straddler"]
    assert failures[("expect_column_values_to_be_unique", "id")] == ["train-1"]
    assert len(failures) == 2, outcome.as_markdown()


def test_skewed_split_shares_fail_naming_the_splits(tmp_path):
    outcome = validate_curated(write_curated(tmp_path, sizes={"train": 10, "validation": 6, "test": 4}), PROFILE)

    (shares,) = outcome.failed
    assert shares.column == "share_deviation"
    assert shares.failing_ids == ["train", "validation"]
    assert "train 0.500 (expected 0.700)" in shares.detail


def test_empty_split_fails(tmp_path):
    write_curated(tmp_path)
    (tmp_path / "validation.jsonl").write_text("")

    outcome = validate_curated(tmp_path, PROFILE)

    assert failing(outcome)[("expect_column_values_to_be_between", "rows")] == ["validation"]


def test_missing_split_file_raises(tmp_path):
    write_curated(tmp_path)
    (tmp_path / "test.jsonl").unlink()

    with pytest.raises(FileNotFoundError, match="test.jsonl"):
        validate_curated(tmp_path, PROFILE)

"""The expectations of each suite, each paired with a short human detail shown next to its result."""

from __future__ import annotations

import great_expectations.expectations as gxe
import pandas as pd
from great_expectations.expectations import Expectation

from tuneforge.corpus.lengths import UNBOUNDED
from tuneforge.pii.residual import RESIDUAL_PATTERNS
from tuneforge.profiles import CleaningConfig, ValidationConfig
from tuneforge.validation.frames import COLUMN_TYPES, NON_NULL_COLUMNS

Check = tuple[Expectation, str]


def row_checks(cleaning: CleaningConfig, *, curated: bool) -> list[Check]:
    """Row-level expectations; ``curated`` adds the ones that only make sense across splits."""
    checks: list[Check] = [
        (gxe.ExpectTableRowCountToBeBetween(min_value=1), "the data must not be empty"),
    ]
    for column, type_name in COLUMN_TYPES.items():
        checks.append((gxe.ExpectColumnToExist(column=column), "schema"))
        checks.append((gxe.ExpectColumnValuesToBeOfType(column=column, type_=type_name), f"type {type_name}"))
    checks += [(gxe.ExpectColumnValuesToNotBeNull(column=column), "no nulls") for column in NON_NULL_COLUMNS]
    checks.append(
        (gxe.ExpectColumnValuesToBeUnique(column="id"), "ids unique across all splits" if curated else "ids unique")
    )
    checks += [
        _length_check("document", cleaning.min_document_words, cleaning.max_document_words),
        _length_check("summary", cleaning.min_summary_words, cleaning.max_summary_words),
    ]
    checks += [
        (gxe.ExpectColumnValuesToNotMatchRegex(column=column, regex=pattern), f"residual PII: {kind}")
        for column in ("document", "summary")
        for kind, pattern in RESIDUAL_PATTERNS.items()
        if kind in cleaning.pii.kinds
    ]
    checks += [
        (gxe.ExpectCompoundColumnsToBeUnique(column_list=["document", "summary"]), "duplicate document/summary pair"),
        (
            gxe.ExpectColumnValuesToBeInSet(column="language", value_set=list(cleaning.languages)),
            f"language in {', '.join(cleaning.languages)}",
        ),
    ]
    if curated:
        checks.append(
            (
                gxe.ExpectColumnValuesToBeBetween(column="group_splits", min_value=1, max_value=1),
                "each group in exactly one split",
            )
        )
    return checks


def _length_check(text: str, low: int | None, high: int | None) -> Check:
    """Word counts within the bounds cleaning applied (learned per source, or configured)."""
    low = low or 1
    high = high if high is not None and high < UNBOUNDED else None
    return (
        gxe.ExpectColumnValuesToBeBetween(column=f"{text}_words", min_value=low, max_value=high),
        f"{text} words in [{low}, {high if high is not None else 'no limit'}]",
    )


def share_checks(shares: pd.DataFrame, validation: ValidationConfig) -> list[Check]:
    """Expectations on the per-split table of ``frames.split_shares``; failing "ids" are split names."""
    observed = ", ".join(
        f"{row.split} {row.share:.3f} (expected {row.expected_share:.3f})" for row in shares.itertuples()
    )
    return [
        (gxe.ExpectColumnValuesToBeBetween(column="rows", min_value=1), "no split may be empty"),
        (
            gxe.ExpectColumnValuesToBeBetween(column="share_deviation", max_value=validation.split_share_tolerance),
            f"share within ±{validation.split_share_tolerance} of the configured one: {observed}",
        ),
    ]

"""The two entry points: a cleaned source file, and the curated train/validation/test dataset."""

from __future__ import annotations

from pathlib import Path

from tuneforge.profiles import CleaningConfig, Profile
from tuneforge.validation.outcome import ExpectationOutcome, ValidationOutcome


def validate_cleaned(path: Path, profile: Profile, cleaning: CleaningConfig | None = None) -> ValidationOutcome:
    """Schema, nulls, unique ids, length ranges, residual PII, duplicate pairs and language of one cleaned file.
    ``cleaning``: the settings the file was cleaned with (its source's, with the length bounds applied), by default
    the profile's."""
    # Great Expectations takes seconds to import: pay for it when a check runs, not when Dagster loads definitions.
    from tuneforge.validation import frames, runner, suites

    frame = frames.read_rows(path)
    name = f"cleaned:{path.stem}"
    checks = suites.row_checks(cleaning or profile.cleaning, curated=False)
    outcomes = runner.run_suite(
        name, checks, frame, index_column=frames.ROW_REF, max_ids=profile.validation.max_failed_rows_shown
    )
    return _outcome(name, outcomes, len(frame))


def validate_curated(
    curated_dir: Path, profile: Profile, cleaning: CleaningConfig | None = None
) -> ValidationOutcome:
    """The cleaned-corpus checks on all splits together, plus no group straddling splits and sane split shares.
    ``cleaning``: settings every source's rows satisfy (the union of their length bounds), by default the profile's."""
    from tuneforge.validation import frames, runner, suites

    combined = frames.read_splits(curated_dir)
    max_ids = profile.validation.max_failed_rows_shown
    shares = frames.split_shares(combined, profile.split)
    row_checks = suites.row_checks(cleaning or profile.cleaning, curated=True)
    outcomes = runner.run_suite("curated", row_checks, combined, index_column=frames.ROW_REF, max_ids=max_ids)
    share_checks = suites.share_checks(shares, profile.validation)
    outcomes += runner.run_suite("curated:splits", share_checks, shares, index_column="split", max_ids=max_ids)
    return _outcome("curated", outcomes, len(combined))


def _outcome(suite: str, outcomes: list[ExpectationOutcome], rows: int) -> ValidationOutcome:
    return ValidationOutcome(
        suite=suite, success=all(outcome.success for outcome in outcomes), expectations=outcomes, rows=rows
    )

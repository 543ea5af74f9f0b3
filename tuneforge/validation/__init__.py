"""Great Expectations suites for the cleaned corpora and the curated dataset, run as blocking asset checks.

Importing this package is cheap; Great Expectations itself is imported on the first validation.
"""

from tuneforge.validation.checks import validate_cleaned, validate_curated
from tuneforge.validation.outcome import ExpectationOutcome, ValidationOutcome

__all__ = ["ExpectationOutcome", "ValidationOutcome", "validate_cleaned", "validate_curated"]

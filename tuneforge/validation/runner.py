"""Runs a suite on a pandas frame with one ephemeral GX context per process, and turns results into outcomes."""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.core.batch_definition import BatchDefinition
from great_expectations.core.expectation_validation_result import ExpectationValidationResult
from great_expectations.data_context.types.base import ProgressBarsConfig

from tuneforge.validation.outcome import ExpectationOutcome
from tuneforge.validation.suites import Check

# The pandas execution engine keeps the batch under a fixed id, so concurrent validations would overwrite each other.
_LOCK = threading.Lock()


@cache
def _batch_definition() -> BatchDefinition:
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("tuneforge").add_dataframe_asset("frame")
    return asset.add_batch_definition_whole_dataframe("whole frame")


def run_suite(
    name: str, checks: list[Check], frame: pd.DataFrame, *, index_column: str, max_ids: int
) -> list[ExpectationOutcome]:
    """Outcomes in the order of ``checks``; failing rows are named by ``index_column``, at most ``max_ids`` of them."""
    result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": [index_column]}
    with _LOCK:
        # The context must exist before a suite is built: GX binds new suites to the current context.
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
        suite = gx.ExpectationSuite(name=name)
        for position, (expectation, detail) in enumerate(checks):
            # GX returns results grouped by metric, not in suite order; the position restores the order.
            expectation.meta = {"detail": detail, "position": position}
            suite.add_expectation(expectation)
        results = batch.validate(suite, result_format=result_format).results
    results = sorted(results, key=lambda result: result.expectation_config.meta["position"])
    return [_outcome(result, index_column, max_ids) for result in results]


def _outcome(result: ExpectationValidationResult, index_column: str, max_ids: int) -> ExpectationOutcome:
    config = result.expectation_config
    kwargs = config.kwargs
    column = kwargs.get("column") or ", ".join(kwargs.get("column_list") or []) or None
    details = [config.meta["detail"]]
    observed = result.result.get("observed_value")
    if observed is not None:
        details.append(f"observed {observed}")
    details += dict.fromkeys(_exception_messages(result.exception_info))
    rows = result.result.get("unexpected_index_list") or []
    ids = list(dict.fromkeys(str(row[index_column]) for row in rows))
    return ExpectationOutcome(
        expectation=config.type,
        column=column,
        success=bool(result.success),
        unexpected_count=int(result.result.get("unexpected_count") or 0),
        failing_ids=ids[:max_ids],
        detail="; ".join(details),
    )


def _exception_messages(info: dict[str, Any] | None) -> list[str]:
    """GX reports errors either flat or keyed by metric; either way only the messages are worth showing."""
    if not info:
        return []
    if "exception_message" in info:
        return [info["exception_message"]] if info.get("raised_exception") else []
    return [message for nested in info.values() if isinstance(nested, dict) for message in _exception_messages(nested)]

"""When assets update on their own (the default automation sensor evaluates these conditions), and how fresh they
should be."""

from datetime import timedelta

import dagster as dg

# Update when an input changed, once every input partition's blocking checks passed: a source failing its suite, or
# a candidate the promotion gate refused, stops there. (Dagster's all_deps_blocking_checks_passed() is satisfied by
# any one partition of a dependency, so one passing source would let a failing one through to curation.)
EVERY_DEP_PARTITION_PASSED = ~dg.AutomationCondition.any_deps_match(
    ~dg.AutomationCondition.all_checks_match(
        dg.AutomationCondition.check_passed() | dg.AutomationCondition.will_be_requested(), blocking_only=True
    )
).with_label("every dependency partition passed its blocking checks")
FOLLOW_PASSING_INPUTS = dg.AutomationCondition.eager() & EVERY_DEP_PARTITION_PASSED

# Freshness, shown in the UI (the daemon evaluates it: `freshness: enabled` in dagster.yaml). New data is expected
# weekly; the model is retrained weekly, so a champion older than two weeks means retraining stopped or keeps failing.
CURATED_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(days=8), warn_window=timedelta(days=7))
MODEL_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(days=15), warn_window=timedelta(days=8))

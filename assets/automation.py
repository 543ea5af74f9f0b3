"""When assets update on their own (the default automation sensor evaluates these conditions), and how fresh they
should be."""

from datetime import timedelta

import dagster as dg

# Update when an input changed, once every input's blocking checks passed: a source failing its suite, or a
# candidate the promotion gate refused, stops there.
FOLLOW_PASSING_INPUTS = dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()

# Freshness, shown in the UI (the daemon evaluates it: `freshness: enabled` in dagster.yaml). New data is expected
# weekly; the model is retrained weekly, so a champion older than two weeks means retraining stopped or keeps failing.
CURATED_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(days=8), warn_window=timedelta(days=7))
MODEL_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(days=15), warn_window=timedelta(days=8))

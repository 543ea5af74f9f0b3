"""When assets update on their own (the default automation sensor evaluates these conditions)."""

import dagster as dg

# Update when an input changed, once every input's blocking checks passed: a source failing its suite, or a
# candidate the promotion gate refused, stops there.
FOLLOW_PASSING_INPUTS = dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()

"""Nightly monitoring. Its time zone is a project setting, so ``stages.definitions`` builds the schedule
(``build_nightly_monitoring``); it starts RUNNING."""

import dagster as dg

from stages.monitoring.jobs import monitoring_job
from stages.names import TRIGGER_TAG

NIGHTLY_MONITORING_CRON = "0 2 * * *"  # every night at 02:00


def build_nightly_monitoring(cron: str = NIGHTLY_MONITORING_CRON, timezone: str = "UTC") -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="nightly_monitoring",
        cron_schedule=cron,
        job=monitoring_job,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        tags={TRIGGER_TAG: "nightly_monitoring"},
        description="Measure raw-data drift and re-evaluate the champion every night.",
    )

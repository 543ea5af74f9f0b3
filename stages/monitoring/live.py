"""Live traffic, one partition per UTC day: what ``tuneforge serve`` answered (its request log) and what users said
of it (the feedback log), with a warning check per threshold of ``LiveConfig``. A breach sends an alert; a breach of
quality, ratings or drift also has ``live_retrain_sensor`` request a retrain (``live.retrain_on_breach``). The
``daily_live_monitoring`` schedule (built in ``stages.definitions``, in the project's time zone) measures each UTC day
after it ends; any day can be (re)materialized."""

from datetime import UTC, timedelta

import dagster as dg

from resources import Workspace
from stages.monitoring.alerts import AlertNotifier
from stages.names import TRIGGER_TAG
from tuneforge.monitoring.live import LiveReport, measure_live, read_day
from tuneforge.notify import Alert

live_days = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_offset=1)  # today too, as it goes
CHECKS = {
    "error_rate": "Share of requests failed (5xx) or turned away (429) is within live.max_error_rate.",
    "latency_p95": "95th-percentile request latency is within live.max_latency_p95_seconds.",
    "degenerate_rate": "Share of looping, empty or cut-off answers is within live.max_degenerate_rate.",
    "mean_rating": "Users' mean rating is at least live.min_mean_rating.",
    "document_drift": "Documents sent to the instruction models do not drift from the training documents.",
}
RETRAIN_CHECKS = ("degenerate_rate", "mean_rating", "document_drift")  # a better adapter can fix these


def check_name(measure: str) -> str:
    return f"live_{measure}"


@dg.asset(
    group_name="monitoring",
    partitions_def=live_days,
    check_specs=[dg.AssetCheckSpec(check_name(name), asset="live_traffic", description=description)
                 for name, description in CHECKS.items()],
)
def live_traffic(context: dg.AssetExecutionContext, workspace: Workspace,
                 alert_notifier: AlertNotifier) -> dg.MaterializeResult:
    """A day of served requests: volume, errors, latency, tokens/s, degenerate and ungrounded answers, ratings and
    corrections, and drift of the live documents from the training split."""
    layout, profile = workspace.layout, workspace.load_profile()
    day = context.partition_key
    report = measure_live(day, read_day(layout.request_logs, day), read_day(layout.feedback_logs, day),
                          layout.curated / "train.jsonl", profile.live, profile.drift)
    breached = report.breached()
    if breached:
        alert_notifier.notifier(layout.root).send(Alert(
            run_id=context.run_id, job=context.job_name or "live_traffic", partition=day,
            error=f"live traffic of {day} breached: " + "; ".join(f"{j.name} {j.detail}" for j in breached)))
    context.log.info(f"{day}: {report.requests} requests, {report.errors} errors, {report.ratings} ratings, "
                     f"breached: {', '.join(j.name for j in breached) or 'nothing'}")
    return dg.MaterializeResult(
        metadata={**_figures(report), "versions": dg.MetadataValue.json(report.versions),
                  "drift": dg.MetadataValue.json([m.__dict__ for m in report.drift]),
                  "breached": ", ".join(j.name for j in breached) or "none"},
        check_results=[
            dg.AssetCheckResult(
                check_name=check_name(j.name), passed=not j.breached, severity=dg.AssetCheckSeverity.WARN,
                description=j.detail,
                metadata={"threshold": j.threshold, **({"value": j.value} if j.value is not None else {})},
            ) for j in report.judged
        ],
    )


def _figures(report: LiveReport) -> dict[str, float | int]:
    """The numbers, each a metadata entry the UI charts across days (absent when the day has none)."""
    names = ("requests", "answered", "errors", "error_rate", "latency_p50", "latency_p95", "latency_p99",
             "first_token_p50", "tokens_per_second", "degenerate_rate", "unsupported_number_share", "ratings",
             "mean_rating", "low_rating_share", "corrections")
    return {name: getattr(report, name) for name in names if getattr(report, name) is not None}


live_monitoring_job = dg.define_asset_job(
    "live_monitoring", selection=dg.AssetSelection.assets(live_traffic), partitions_def=live_days,
    description="Measure one day of served traffic and feedback, with its checks.")


def build_daily_live_monitoring(timezone: str = "UTC", cron: str = "30 0 * * *") -> dg.ScheduleDefinition:
    """Each tick measures the latest UTC day that has ended (the request log's days are UTC, the schedule runs in the
    project's time zone like the others)."""

    @dg.schedule(name="daily_live_monitoring", cron_schedule=cron, job=live_monitoring_job,
                 execution_timezone=timezone, default_status=dg.DefaultScheduleStatus.RUNNING,
                 description="Measure the latest UTC day of served traffic that has ended.")
    def daily_live_monitoring(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        ended = (context.scheduled_execution_time.astimezone(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
        return dg.RunRequest(run_key=ended, partition_key=ended, tags={TRIGGER_TAG: "daily_live_monitoring"})

    return daily_live_monitoring

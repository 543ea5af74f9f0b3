"""Monitoring: has the raw data drifted from the training data (``raw_data_drift``, with a warning check), and does
the champion still score what it did (``champion_monitor``)? The ``monitoring`` job runs both; ``drift_retrain_sensor``
retrains once per failed drift check; ``run_failure_alert`` sends an alert for every failed run. The
``nightly_monitoring`` schedule (``schedules.build_nightly_monitoring``) is built in ``stages.definitions``, in the
project's time zone. ``live_traffic`` measures each day of served traffic (``live_monitoring`` job; the
``daily_live_monitoring`` schedule is built in ``stages.definitions`` too), and ``live_retrain_sensor`` retrains on a
breach of its quality checks."""

import dagster as dg

from stages.monitoring.alerts import run_failure_alert
from stages.monitoring.assets import champion_monitor, raw_data_drift
from stages.monitoring.jobs import monitoring_job
from stages.monitoring.live import live_monitoring_job, live_traffic
from stages.monitoring.sensors import drift_retrain_sensor, live_retrain_sensor

defs = dg.Definitions(
    assets=[raw_data_drift, champion_monitor, live_traffic],
    jobs=[monitoring_job, live_monitoring_job],
    sensors=[drift_retrain_sensor, live_retrain_sensor, run_failure_alert],
)

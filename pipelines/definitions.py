"""The code location: every asset, job, schedule, sensor and resource, loaded by workspace.yaml."""

import dagster as dg

from assets import ALL_ASSETS
from assets.monitoring import champion_monitor, raw_data_drift
from pipelines.jobs import JOBS
from pipelines.schedules import MONITORING_JOBS, SCHEDULES
from pipelines.schedules import SENSORS as MONITORING_SENSORS
from pipelines.sensors import AlertNotifier, RawDataWatch, raw_data_sensor, run_failure_alert
from resources import Compute, DvcRepository, ModelRegistry, Workspace

defs = dg.Definitions(
    assets=[*ALL_ASSETS, raw_data_drift, champion_monitor],
    jobs=[*JOBS, *MONITORING_JOBS],
    schedules=SCHEDULES,
    sensors=[raw_data_sensor, run_failure_alert, *MONITORING_SENSORS],
    resources={
        "workspace": Workspace(),
        "dvc": DvcRepository(),
        "registry": ModelRegistry(),
        "compute": Compute(),
        "raw_watch": RawDataWatch(),
        "alert_notifier": AlertNotifier(),
    },
)

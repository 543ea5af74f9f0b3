"""The code location: every asset, job, schedule, sensor and resource, loaded by workspace.yaml."""

import dagster as dg
from dagster_k8s import k8s_job_executor

from assets import ALL_ASSETS
from assets.monitoring import champion_monitor, raw_data_drift
from pipelines.jobs import JOBS
from pipelines.retrain_sensor import new_data_retrain_sensor
from pipelines.schedules import MONITORING_JOBS, SCHEDULES
from pipelines.schedules import SENSORS as MONITORING_SENSORS
from pipelines.sensors import AlertNotifier, RawDataWatch, raw_data_sensor, run_failure_alert
from resources import Compute, DvcRepository, ModelRegistry, Workspace
from resources.workspace import resolve_root
from tuneforge.project import load_project, settings_markdown

# On the cluster (deploy/k8s) every step runs in its own pod. Locally each step is a process forked from a server
# that imported the code location once (torch, transformers, MLflow), instead of a fresh interpreter per step.
LOCAL_EXECUTOR = dg.multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": ["pipelines.definitions"]}}}
)
PROJECT = load_project(resolve_root())
ENVIRONMENT = PROJECT.environment
EXECUTOR = k8s_job_executor if ENVIRONMENT.executor == "k8s" else LOCAL_EXECUTOR

defs = dg.Definitions(
    executor=EXECUTOR,
    # The code location's page in the UI shows where settings came from.
    metadata={
        "project_file": dg.MetadataValue.path(str(PROJECT.file)),
        "settings": dg.MetadataValue.md(settings_markdown(PROJECT)),
    },
    assets=[*ALL_ASSETS, raw_data_drift, champion_monitor],
    jobs=[*JOBS, *MONITORING_JOBS],
    schedules=SCHEDULES,
    sensors=[
        raw_data_sensor,
        run_failure_alert,
        new_data_retrain_sensor,
        *MONITORING_SENSORS,
        # Dagster's automation sensor starts stopped unless declared RUNNING.
        dg.AutomationConditionSensorDefinition(
            "default_automation_sensor", target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.RUNNING
        ),
    ],
    resources={
        "workspace": Workspace(),
        "dvc": DvcRepository(),
        "registry": ModelRegistry(),
        "compute": Compute(**ENVIRONMENT.compute),
        "raw_watch": RawDataWatch(),
        "alert_notifier": AlertNotifier(),
    },
)

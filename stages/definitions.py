"""The code location, loaded by workspace.yaml: the four stages' definitions merged, plus what the platform gives them
all (the executor, the resources, the automation sensor, the schedules in the project's time zone, and the project
file's settings shown on the code location's page)."""

import dagster as dg
from dagster_k8s import k8s_job_executor

from resources import Compute, DataEngine, DvcRepository, ModelRegistry, Serving, Workspace
from resources.workspace import resolve_root
from stages import data, evaluation, model, monitoring
from stages.data.sensors import RawDataWatch
from stages.model.retraining import build_weekly_retrain
from stages.monitoring.alerts import AlertNotifier
from stages.monitoring.live import build_daily_live_monitoring
from stages.monitoring.schedules import build_nightly_monitoring
from tuneforge.project import load_project, settings_markdown

# On the cluster (deploy/k8s) every step runs in its own pod. Locally each step is a process forked from a server
# that imported the code location once (torch, transformers, MLflow), instead of a fresh interpreter per step.
LOCAL_EXECUTOR = dg.multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": ["stages.definitions"]}}}
)
PROJECT = load_project(resolve_root())
ENVIRONMENT = PROJECT.environment
EXECUTOR = k8s_job_executor if ENVIRONMENT.executor == "k8s" else LOCAL_EXECUTOR

# Dagster loads one Definitions object from this module: the stages' own, merged with the platform's.
defs = dg.Definitions.merge(
    data.defs,
    model.defs,
    evaluation.defs,
    monitoring.defs,
    dg.Definitions(
        executor=EXECUTOR,
        # The code location's page in the UI shows where settings came from.
        metadata={
            "project_file": dg.MetadataValue.path(str(PROJECT.file)),
            "settings": dg.MetadataValue.md(settings_markdown(PROJECT)),
        },
        # Built here rather than in their stages: a schedule's time zone is a project setting
        # (environment.schedule_timezone in tuneforge.yaml, or TUNEFORGE_SCHEDULE_TIMEZONE).
        schedules=[
            build_weekly_retrain(timezone=ENVIRONMENT.schedule_timezone),
            build_nightly_monitoring(timezone=ENVIRONMENT.schedule_timezone),
            build_daily_live_monitoring(timezone=ENVIRONMENT.schedule_timezone),
        ],
        sensors=[
            # Dagster's automation sensor starts stopped unless declared RUNNING.
            dg.AutomationConditionSensorDefinition(
                "default_automation_sensor",
                target=dg.AssetSelection.all(),
                default_status=dg.DefaultSensorStatus.RUNNING,
            ),
        ],
        resources={
            "workspace": Workspace(),
            "dvc": DvcRepository(**ENVIRONMENT.dvc.model_dump()),
            "registry": ModelRegistry(),
            "compute": Compute(**ENVIRONMENT.compute),
            "data_engine": DataEngine(**ENVIRONMENT.data_engine),
            "serving": Serving(**ENVIRONMENT.serving),
            "raw_watch": RawDataWatch(),
            "alert_notifier": AlertNotifier(),
        },
    ),
)

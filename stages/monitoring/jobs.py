"""The monitoring job: both monitoring assets, run together every night."""

import dagster as dg

from stages.monitoring.assets import champion_monitor, raw_data_drift

monitoring_job = dg.define_asset_job(
    "monitoring",
    selection=dg.AssetSelection.assets(raw_data_drift, champion_monitor),
    description="Raw-data drift against the training data (with its warning check) and the champion re-evaluated.",
)

"""Data: raw files → raw_corpus → cleaned_corpus (one partition of ``sources`` per source, each behind a blocking
Great Expectations check) → curated_dataset (all sources merged and split). ``ingest_source`` reads and cleans one
source; ``raw_data_sensor`` registers new sources and runs it when a source's files change."""

import dagster as dg

from stages.data.assets import cleaned_corpus, curated_dataset, raw_corpus
from stages.data.jobs import ingest_source_job
from stages.data.sensors import raw_data_sensor

defs = dg.Definitions(
    assets=[raw_corpus, cleaned_corpus, curated_dataset],
    jobs=[ingest_source_job],
    sensors=[raw_data_sensor],
)

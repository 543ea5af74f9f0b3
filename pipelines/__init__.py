"""Dagster definitions, jobs and the demo driver."""

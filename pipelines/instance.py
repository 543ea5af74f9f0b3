"""The Dagster instance the command line works on, and the error its commands raise."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg


class CliError(RuntimeError):
    pass


def open_instance(root: Path) -> dg.DagsterInstance:
    # Without DAGSTER_HOME, use the workspace's own instance (the Makefile's default) rather than failing.
    home = Path(os.environ.get("DAGSTER_HOME") or root / ".dagster")
    if not home.is_dir():
        raise CliError(f"No Dagster instance at {home}: set DAGSTER_HOME to the one `make demo` used (.dagster/).")
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()

"""The ``tuneforge`` command line (``cli.main``) and the demo driver; the Dagster code location is ``stages``."""

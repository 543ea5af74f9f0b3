"""Monitoring, in plain Python: drift of the raw data against the training data, and the champion re-evaluated."""

"""Scoring generated summaries and writing the evaluation report."""

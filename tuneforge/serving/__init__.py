"""Serving the champion: an OpenAI-compatible HTTP API over dynamic batching, following the model registry."""

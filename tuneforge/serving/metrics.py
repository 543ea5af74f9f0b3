"""Prometheus metrics of the server, in a registry of its own (``/metrics``)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tuneforge.serving.engine import BatchStats
from tuneforge.serving.router import Router

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)


class ServingMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, queue_depth: Callable[[], int], log_dropped: Callable[[], int] = lambda: 0) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("tuneforge_requests", "Requests answered, by route and HTTP status.",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("tuneforge_request_duration_seconds", "Time from request to last byte, by route.",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.first_token = Histogram("tuneforge_time_to_first_token_seconds", "Time from request to first token.",
                                     buckets=LATENCY_BUCKETS, registry=self.registry)
        self.generated = Counter("tuneforge_generated_tokens", "Tokens generated.", registry=self.registry)
        self.tokens_per_second = Gauge("tuneforge_generated_tokens_per_second",
                                       "Tokens per second of the last decoded batch.", registry=self.registry)
        self.batch_rows = Histogram("tuneforge_batch_size", "Requests decoded together.",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=self.registry)
        depth = Gauge("tuneforge_queue_depth", "Requests waiting or decoding.", registry=self.registry)
        depth.set_function(queue_depth)
        self.model = Gauge("tuneforge_model_info", "The models served (1 per version, by role: champion, canary).",
                           ["version", "fingerprint", "role"], registry=self.registry)
        dropped = Gauge("tuneforge_request_log_dropped", "Request-log entries dropped because its queue was full.",
                        registry=self.registry)
        dropped.set_function(log_dropped)
        self.swaps = Counter("tuneforge_model_swaps", "Times the served model changed.", registry=self.registry)

    def serving(self, router: Router) -> None:
        self.model.clear()
        for role, engine in (("champion", router.champion), ("canary", router.canary)):
            if engine is not None:
                self.model.labels(engine.served.version, engine.served.fingerprint, role).set(1)

    def batch(self, stats: BatchStats) -> None:
        self.batch_rows.observe(stats.rows)
        self.generated.inc(stats.new_tokens)
        if stats.seconds > 0:
            self.tokens_per_second.set(stats.new_tokens / stats.seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

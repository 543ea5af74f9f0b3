"""``tuneforge serve``: load the champion, start the batch engine and the registry follower, run uvicorn until
SIGINT/SIGTERM, then drain: uvicorn stops accepting and finishes the requests in flight before the engine stops."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable

import uvicorn

from tuneforge.profiles import DecodingConfig, ServingConfig
from tuneforge.registry import ChampionRegistry
from tuneforge.serving.app import create_app
from tuneforge.serving.auth import load_keys, require_keys_beyond_loopback
from tuneforge.serving.champion import ChampionFollower, load_champion
from tuneforge.serving.engine import BatchEngine, ServedModel
from tuneforge.serving.metrics import ServingMetrics

log = logging.getLogger("tuneforge.serving")
GRACEFUL_SHUTDOWN_SECONDS = 60


def serve(config: ServingConfig, open_registry: Callable[[], ChampionRegistry], decoding: DecodingConfig,
          summary_prompt_tokens: int) -> None:
    keys = load_keys(config.api_keys_file)
    require_keys_beyond_loopback(config.host, keys)  # before any weights load
    served = load_champion(open_registry(), config.precision)
    metrics: ServingMetrics | None = None
    engine = BatchEngine(served, config.max_batch_size, config.batch_wait_ms, config.max_queue,
                         on_batch=lambda stats: metrics.batch(stats) if metrics else None)
    metrics = ServingMetrics(engine.depth)
    metrics.serving(served.version, served.fingerprint)

    def swap(new: ServedModel) -> None:
        engine.swap(new)
        metrics.serving(new.version, new.fingerprint)
        metrics.swaps.inc()

    follower = ChampionFollower(open_registry, served.version, swap, config.poll_seconds, config.precision)
    app = create_app(engine, config, keys, metrics, decoding, summary_prompt_tokens)
    log.info("serving %s version %s (adapter %s, %s on %s) on http://%s:%s with %s", served.name, served.version,
             served.fingerprint, "bf16" if served.bf16 else "fp32", served.device, config.host, config.port,
             f"{len(keys)} API key(s)" if keys else "no API keys (loopback only)")
    follower.start()
    server = uvicorn.Server(uvicorn.Config(
        app, host=config.host, port=config.port, log_level="info", access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS))
    # uvicorn re-raises the signal that stopped it once it has drained; these handlers let it return instead, so the
    # engine and follower stop and the process exits 0.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: None)
    try:
        server.run()
    finally:
        app.state.draining = True
        follower.stop()
        engine.stop()

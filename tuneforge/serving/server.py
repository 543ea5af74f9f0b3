"""``tuneforge serve``: load the champion, start the batch engine and the registry follower, run uvicorn until
SIGINT/SIGTERM, then drain: uvicorn stops accepting and finishes the requests in flight before the engine stops."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable

import uvicorn

from tuneforge.layout import Layout
from tuneforge.profiles import Profile, ServingConfig
from tuneforge.registry import ChampionRegistry
from tuneforge.serving.app import create_app
from tuneforge.serving.auth import load_keys, require_keys_beyond_loopback
from tuneforge.serving.champion import ChampionFollower, load_champion
from tuneforge.serving.engine import BatchEngine, ServedModel
from tuneforge.serving.feedback import FeedbackStore
from tuneforge.serving.metrics import ServingMetrics
from tuneforge.serving.request_log import RequestLog
from tuneforge.serving.router import Router

log = logging.getLogger("tuneforge.serving")
GRACEFUL_SHUTDOWN_SECONDS = 60


def _summary_budget(profile: Profile, layout: Layout, served: ServedModel) -> tuple[int | None, int]:
    """The evaluation's generation budget and prompt length (configured, or learned from the training rows), so that
    an instruction model reads and answers a request without max_tokens as the gate measured it. Without training
    data: no default answer length, and the prompt length configured or, unset, the serving limit."""
    from tuneforge.evaluation.budget import resolve_generation_budget

    train = layout.curated / "train.jsonl"
    evaluation = profile.evaluation
    if served.directory is None or (None in (evaluation.max_new_tokens, evaluation.max_prompt_tokens)
                                    and not train.is_file()):
        return evaluation.max_new_tokens, evaluation.max_prompt_tokens or profile.serving.max_prompt_tokens
    budget = resolve_generation_budget(evaluation, served.directory, train, served.instructions.values())
    log.info("instruction models read prompts of at most %d tokens (%s) and answer at most %d new tokens by "
             "default (%s)", budget.max_prompt_tokens, budget.prompt_from, budget.max_new_tokens,
             budget.learned_from)
    return budget.max_new_tokens, budget.max_prompt_tokens


def serve(config: ServingConfig, open_registry: Callable[[], ChampionRegistry], profile: Profile,
          layout: Layout) -> None:
    keys = load_keys(config.api_keys_file)
    require_keys_beyond_loopback(config.host, keys)  # before any weights load
    served = load_champion(open_registry(), config.precision)
    metrics: ServingMetrics | None = None

    def make_engine(model: ServedModel) -> BatchEngine:
        return BatchEngine(model, config.max_batch_size, config.batch_wait_ms, config.max_queue,
                           on_batch=lambda stats: metrics.batch(stats) if metrics else None)

    router = Router(make_engine(served), config.canary_share)
    request_log, feedback = None, None
    if config.request_log:
        from tuneforge.pii.redactor import redactor_for

        redactor = redactor_for(profile.cleaning.pii)
        request_log = RequestLog(layout.request_logs, redactor, config.request_log_queue)
        feedback = FeedbackStore(layout.feedback_logs, layout.raw, redactor)
    metrics = ServingMetrics(router.depth, lambda: request_log.dropped if request_log else 0)

    follower = ChampionFollower(open_registry, router, make_engine, config.poll_seconds, config.precision)
    follower.check()  # a canary running already
    metrics.serving(router)

    def served_changed() -> None:
        metrics.serving(router)
        metrics.swaps.inc()

    follower.on_change = served_changed
    summary_max_tokens, summary_prompt_tokens = _summary_budget(profile, layout, served)
    app = create_app(router, config, keys, metrics, profile.evaluation.decoding, summary_prompt_tokens,
                     request_log, feedback, summary_max_tokens=summary_max_tokens)
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
        for engine in (router.champion, router.canary):
            if engine is not None:
                engine.stop()
        if request_log is not None:
            request_log.close()

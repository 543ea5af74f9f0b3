"""The OpenAI-compatible HTTP API: ``/v1/chat/completions`` (streaming too), ``/v1/completions``, ``/v1/models``,
plus ``/health``, ``/ready`` and ``/metrics``.

Model ids: the registered model's name (e.g. ``tuneforge-summarizer``) answers chat as given, through the model's
chat template; ``<name>:<source>`` wraps the last user message in the instruction the champion's adapter was trained
with for that source, cut to the prompt length evaluation used, so its answers are the ones the gate measured.
Every response names the registry version and adapter that produced it (``X-Tuneforge-Model-Version``,
``X-Tuneforge-Adapter``, and ``system_fingerprint``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tuneforge.modeling.prompts import prompt_ids
from tuneforge.profiles import DecodingConfig, ServingConfig
from tuneforge.serving.auth import authorized
from tuneforge.serving.engine import BatchEngine, Done, Failed, Job, QueueFull, ServedModel, Started, Token
from tuneforge.serving.feedback import FeedbackStore
from tuneforge.serving.metrics import ServingMetrics
from tuneforge.serving.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    FeedbackRequest,
    Sampling,
    error_body,
    plain_request_id,
)
from tuneforge.serving.request_log import RequestLog, now
from tuneforge.serving.router import Router

access_log = logging.getLogger("tuneforge.serving.access")
OPEN_ROUTES = ("/health", "/ready")
COMPLETION_ROUTES = ("/v1/chat/completions", "/v1/completions")
ROUTES = ("/v1/chat/completions", "/v1/completions", "/v1/models", "/v1/feedback", "/metrics", *OPEN_ROUTES)


@dataclass(frozen=True)
class Asked:
    """What a prompt was, for the request log: its text, and for an instruction model the source, instruction and
    document (what a correction trains on)."""

    prompt: str
    source: str | None = None
    instruction: str | None = None
    document: str | None = None


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error", headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse(error_body(self.message, self.kind, self.param, self.code), self.status,
                            headers=self.headers)


@dataclass
class Pending:
    """One request's side of the engine: its events, delivered on the event loop."""

    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue

    def emit(self, event) -> None:
        self.loop.call_soon_threadsafe(self.events.put_nowait, event)


class Detokenizer:
    """Text as tokens arrive: each call returns what the new token added (nothing while a character is split)."""

    def __init__(self, tokenizer, eos: frozenset[int]) -> None:
        self.tokenizer, self.eos, self.ids, self.text = tokenizer, eos, [], ""

    def add(self, token: int) -> str:
        if token in self.eos:
            return ""
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return ""
        delta, self.text = text[len(self.text):], text
        return delta


def create_app(router: Router, config: ServingConfig, keys: frozenset[str], metrics: ServingMetrics,
               decoding: DecodingConfig, summary_prompt_tokens: int, request_log: RequestLog | None = None,
               feedback: FeedbackStore | None = None, summary_max_tokens: int | None = None) -> FastAPI:
    """``decoding`` is the evaluation's (greedy unless a request samples); ``summary_prompt_tokens`` is the prompt
    length evaluation cut documents to, used for the instruction-wrapped model ids. Without ``request_log`` nothing
    is recorded and ``/v1/feedback`` answers 503. ``summary_max_tokens`` is the evaluation's generation budget, the
    default ``max_tokens`` of the instruction models (``serving.default_max_tokens`` where it is None)."""
    app = FastAPI(title="tuneforge", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.draining = False

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return _validation_error(error).response()

    @app.middleware("http")
    async def _guard(request: Request, call_next):
        started = time.perf_counter()
        request.state.id = uuid.uuid4().hex
        route = request.url.path if request.url.path in ROUTES else "other"
        response = _refuse(request, keys, config.max_request_bytes)
        if response is None:
            response = await call_next(request)
        response.headers["X-Request-Id"] = request.state.id
        status = response.status_code

        def record() -> None:
            seconds = time.perf_counter() - started
            if request_log is not None and status >= 400 and route in COMPLETION_ROUTES:
                request_log.record({"request_id": request.state.id, "time": now(), "route": route, "status": status,
                                    "seconds": round(seconds, 4)})
            metrics.requests.labels(route, str(status)).inc()
            metrics.latency.labels(route).observe(seconds)
            access_log.info(json.dumps({
                "request_id": request.state.id, "method": request.method, "path": request.url.path,
                "status": status, "seconds": round(seconds, 4),
                "model_version": response.headers.get("X-Tuneforge-Model-Version"),
                "prompt_tokens": getattr(request.state, "prompt_tokens", None),
                "completion_tokens": getattr(request.state, "completion_tokens", None),
                "client": request.client.host if request.client else None,
            }))

        # call_next's response streams its body (a Starlette _StreamingResponse, whatever the route returned): the
        # request is over when the last chunk is sent, which for a streamed completion is long after the headers.
        if hasattr(response, "body_iterator"):
            inner = response.body_iterator

            async def counted() -> AsyncIterator[bytes]:
                try:
                    async for chunk in inner:
                        yield chunk
                finally:
                    record()

            response.body_iterator = counted()
        else:
            record()
        return response

    def _engine(request: Request) -> BatchEngine:
        if router.withdrawn is not None:
            raise ApiError(503, f"no champion: version {router.withdrawn} was withdrawn from the registry (e.g. by "
                           "`tuneforge erase`); requests are answered again once a model is promoted",
                           kind="server_error", code="no_champion")
        return router.engine_for(request.state.id)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        served = router.champion.served
        if app.state.draining:
            return JSONResponse({"status": "draining"}, 503)
        if router.withdrawn is not None:
            return JSONResponse({"status": "no champion", "withdrawn": router.withdrawn}, 503)
        canary = router.canary
        return JSONResponse({"status": "ready", "model": served.name, "version": served.version,
                             "adapter": served.fingerprint, "precision": "bf16" if served.bf16 else "fp32",
                             "device": str(served.device),
                             "canary": None if canary is None else {"version": canary.served.version,
                                                                    "adapter": canary.served.fingerprint,
                                                                    "share": router.canary_share}})

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        served = router.champion.served
        data = [{"id": model_id, "object": "model", "created": 0, "owned_by": "tuneforge",
                 "version": served.version, "adapter": served.fingerprint, "instruction": instruction}
                for model_id, instruction in _model_ids(served).items()]
        return JSONResponse({"object": "list", "data": data}, headers=_model_headers(served))

    @app.post("/v1/chat/completions")
    async def chat(body: ChatCompletionRequest, request: Request) -> Response:
        engine = _engine(request)
        ids, asked = _chat_prompt(engine.served, body, summary_prompt_tokens)
        return await _complete(request, body, [ids], [asked], engine, chat=True)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Response:
        engine = _engine(request)
        served = engine.served
        if body.model != served.name:
            raise _unknown_model(body.model, served)
        prompts = [served.tokenizer(text)["input_ids"] for text in body.prompts]
        return await _complete(request, body, prompts, [Asked(text) for text in body.prompts], engine, chat=False)

    @app.post("/v1/feedback")
    async def give_feedback(body: FeedbackRequest) -> JSONResponse:
        if request_log is None or feedback is None:
            raise ApiError(503, "feedback needs the request log, which is off (serving.request_log)",
                           kind="server_error")
        request_id = plain_request_id(body.request_id)
        logged = await asyncio.to_thread(request_log.find, request_id)
        if logged is None:
            raise ApiError(404, f"request_id: no request {body.request_id!r} in the request log",
                           param="request_id", code="request_not_found")
        result = await asyncio.to_thread(feedback.add, logged, body.rating, body.correction, body.comment)
        return JSONResponse({"request_id": request_id, "recorded": True, "training_source": result.training_source,
                             "note": result.why_not})

    def _record(request: Request, body: Sampling, asked: Asked, answered: Started | None, text: str,
                finished: bool, tokens: int, prompt_tokens: int, seconds: float, first_token: float | None,
                request_id: str) -> None:
        if request_log is None:
            return
        request_log.record({
            "request_id": request_id, "time": now(), "route": request.url.path, "status": 200, "model": body.model,
            "version": answered.version if answered else None, "adapter": answered.fingerprint if answered else None,
            "source": asked.source, "instruction": asked.instruction, "prompt": asked.prompt,
            "document": asked.document, "output": text, "finish_reason": "stop" if finished else "length",
            "prompt_tokens": prompt_tokens, "completion_tokens": tokens, "seconds": round(seconds, 4),
            "first_token_seconds": None if first_token is None else round(first_token, 4), "stream": body.stream,
            "temperature": body.temperature or 0.0,
        })

    async def _complete(request: Request, body: Sampling, prompts: list[list[int]], asked: list[Asked],
                        engine: BatchEngine, chat: bool) -> Response:
        served = engine.served
        default = summary_max_tokens if asked[0].source is not None and summary_max_tokens else \
            config.default_max_tokens
        max_tokens = body.requested_tokens or min(default, config.max_tokens_limit)
        if max_tokens > config.max_tokens_limit:
            raise ApiError(400, f"max_tokens: {max_tokens} exceeds this server's limit of {config.max_tokens_limit} "
                           "(serving.max_tokens_limit)", param="max_tokens")
        _check_prompt_lengths(prompts, max_tokens, config.max_prompt_tokens, served.context, chat)
        job_decoding = _decoding(decoding, body)
        loop = asyncio.get_running_loop()
        pendings = [Pending(loop, asyncio.Queue()) for _ in prompts]
        jobs = [Job(ids, max_tokens, job_decoding, pending.emit, seed=body.seed or 0)
                for ids, pending in zip(prompts, pendings, strict=True)]
        submitted = []
        try:
            for job in jobs:
                engine.submit(job)
                submitted.append(job)
        except QueueFull as full:
            for job in submitted:
                job.cancel()
            raise ApiError(429, str(full), kind="rate_limit_error", code="queue_full",
                           headers={"Retry-After": "1"}) from None
        request.state.prompt_tokens = sum(len(ids) for ids in prompts)
        started = time.perf_counter()
        kind = "chat.completion" if chat else "text_completion"
        if body.stream:
            first = await pendings[0].events.get()
            if isinstance(first, Failed):
                raise ApiError(503, first.message, kind="server_error")
            return StreamingResponse(
                _stream(request, body, jobs[0], pendings[0], first, served, kind, started, asked[0], len(prompts[0])),
                media_type="text/event-stream", headers=_version_headers(first))
        choices, usage, answered = [], 0, None
        try:
            for index, pending in enumerate(pendings):
                text, finished, tokens, answered, first_token = await _collect(pending, served, started, index == 0)
                usage += tokens
                request_id = request.state.id if len(pendings) == 1 else f"{request.state.id}-{index}"
                _record(request, body, asked[index], answered, text, finished, tokens, len(prompts[index]),
                        time.perf_counter() - started, first_token, request_id)
                content = {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
                choices.append({"index": index, **content, "finish_reason": "stop" if finished else "length",
                                "logprobs": None})
        except asyncio.CancelledError:
            for job in jobs:
                job.cancel()
            raise
        request.state.completion_tokens = usage
        return JSONResponse({
            "id": _response_id(request, chat), "object": kind, "created": int(time.time()), "model": body.model,
            "system_fingerprint": _system_fingerprint(answered), "choices": choices,
            "usage": {"prompt_tokens": request.state.prompt_tokens, "completion_tokens": usage,
                      "total_tokens": request.state.prompt_tokens + usage},
        }, headers=_version_headers(answered))

    async def _collect(pending: Pending, served: ServedModel, started: float, timed: bool):
        answered, first_token = None, None
        while True:
            event = await pending.events.get()
            if isinstance(event, Started):
                answered = event
            elif isinstance(event, Token):
                if first_token is None:
                    first_token = time.perf_counter() - started
                    if timed:
                        metrics.first_token.observe(first_token)
            elif isinstance(event, Failed):
                raise ApiError(503, event.message, kind="server_error")
            elif isinstance(event, Done):
                text = served.tokenizer.decode(event.tokens, skip_special_tokens=True)
                return text, event.finished, len(event.tokens), answered, first_token

    async def _stream(request: Request, body: Sampling, job: Job, pending: Pending, first: Started,
                      served: ServedModel, kind: str, started: float, asked: Asked,
                      prompt_tokens: int) -> AsyncIterator[bytes]:
        chat = kind == "chat.completion"
        base = {"id": _response_id(request, chat), "object": f"{kind}.chunk" if chat else kind,
                "created": int(time.time()), "model": body.model, "system_fingerprint": _system_fingerprint(first)}

        def chunk(delta: str | None, finish: str | None, role: bool = False) -> bytes:
            if chat:
                piece = {"role": "assistant", "content": ""} if role else ({"content": delta} if delta else {})
                choice = {"index": 0, "delta": piece, "finish_reason": finish, "logprobs": None}
            else:
                choice = {"index": 0, "text": delta or "", "finish_reason": finish, "logprobs": None}
            return _sse({**base, "choices": [choice]})

        detokenizer = Detokenizer(served.tokenizer, served.eos)
        first_token = None
        try:
            if chat:
                yield chunk(None, None, role=True)
            while True:
                event = await pending.events.get()
                if isinstance(event, Token):
                    if first_token is None:
                        first_token = time.perf_counter() - started
                        metrics.first_token.observe(first_token)
                    delta = detokenizer.add(event.token)
                    if delta:
                        yield chunk(delta, None)
                elif isinstance(event, Failed):
                    yield _sse(error_body(event.message, "server_error"))
                    break
                elif isinstance(event, Done):
                    request.state.completion_tokens = len(event.tokens)
                    _record(request, body, asked, first, detokenizer.text, event.finished, len(event.tokens),
                            prompt_tokens, time.perf_counter() - started, first_token, request.state.id)
                    yield chunk(None, "stop" if event.finished else "length")
                    if body.stream_options and body.stream_options.include_usage:
                        prompt = request.state.prompt_tokens
                        yield _sse({**base, "choices": [], "usage": {
                            "prompt_tokens": prompt, "completion_tokens": len(event.tokens),
                            "total_tokens": prompt + len(event.tokens)}})
                    break
            yield b"data: [DONE]\n\n"
        finally:
            job.cancel()  # a no-op once done; frees the row when the client went away mid-stream

    return app


def _refuse(request: Request, keys: frozenset[str], max_bytes: int) -> JSONResponse | None:
    if request.url.path not in OPEN_ROUTES and not authorized(request.headers.get("authorization"), keys):
        return ApiError(401, "a valid API key is required: send it as 'Authorization: Bearer <key>'",
                        kind="authentication_error", code="invalid_api_key").response()
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        return ApiError(413, f"the request body is {int(length)} bytes; this server accepts at most {max_bytes} "
                        "(serving.max_request_bytes)", code="request_too_large").response()
    if length is None and request.headers.get("transfer-encoding", "").lower() == "chunked":
        return ApiError(411, "send the request with a Content-Length header (chunked bodies are not accepted)",
                        code="length_required").response()
    return None


def _check_prompt_lengths(prompts: list[list[int]], max_tokens: int, max_prompt_tokens: int, context: int | None,
                          chat: bool) -> None:
    limit = max_prompt_tokens if context is None else min(max_prompt_tokens, context - max_tokens)
    field = "messages" if chat else "prompt"
    for ids in prompts:
        if len(ids) > limit:
            raise ApiError(400, f"{field}: the prompt is {len(ids)} tokens and this server accepts at most {limit} "
                           f"with max_tokens={max_tokens} (serving.max_prompt_tokens={max_prompt_tokens}, model "
                           f"context {context})", param=field, code="context_length_exceeded")


def _validation_error(error: RequestValidationError) -> ApiError:
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        if item.get("type") == "json_invalid":
            return ApiError(400, f"the request body is not valid JSON ({item.get('ctx', {}).get('error', '')})")
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{location}: {message}" if location and not message.startswith(location) else message)
    first = error.errors()[0] if error.errors() else {}
    param = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or None
    return ApiError(400, "; ".join(problems) or "invalid request", param=param)


def _model_ids(served: ServedModel) -> dict[str, str | None]:
    ids: dict[str, str | None] = {served.name: None}
    ids.update({f"{served.name}:{source}": instruction for source, instruction in sorted(served.instructions.items())})
    return ids


def _unknown_model(model: str, served: ServedModel) -> ApiError:
    return ApiError(404, f"model: {model!r} is not served here; models: {', '.join(_model_ids(served))}",
                    param="model", code="model_not_found")


def _chat_prompt(served: ServedModel, body: ChatCompletionRequest,
                 summary_prompt_tokens: int) -> tuple[list[int], Asked]:
    tokenizer = served.tokenizer
    if body.model == served.name:
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text}
                    for m in body.messages]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        asked = Asked("\n".join(f"{m['role']}: {m['content']}" for m in messages))
        return tokenizer(text, add_special_tokens=False)["input_ids"], asked
    source = body.model.removeprefix(served.name + ":") if body.model.startswith(served.name + ":") else None
    if source is None or source not in served.instructions:
        raise _unknown_model(body.model, served)
    instruction, document = served.instructions[source], body.messages[-1].text
    asked = Asked(f"{instruction}\n\n{document}", source, instruction, document)
    return prompt_ids(tokenizer, instruction, document, summary_prompt_tokens), asked


def _decoding(evaluation: DecodingConfig, body: Sampling) -> DecodingConfig:
    if not body.temperature:
        return evaluation.model_copy(update={"strategy": "greedy"})
    return evaluation.model_copy(update={"strategy": "sample", "temperature": body.temperature,
                                         "top_p": body.top_p if body.top_p is not None else 1.0})


def _version_headers(answered: Started | None) -> dict[str, str]:
    if answered is None:
        return {}
    return {"X-Tuneforge-Model-Version": answered.version, "X-Tuneforge-Adapter": answered.fingerprint}


def _model_headers(served: ServedModel) -> dict[str, str]:
    return {"X-Tuneforge-Model-Version": served.version, "X-Tuneforge-Adapter": served.fingerprint}


def _system_fingerprint(answered: Started | None) -> str | None:
    return f"v{answered.version}-{answered.fingerprint}" if answered else None


def _response_id(request: Request, chat: bool) -> str:
    return f"{'chatcmpl' if chat else 'cmpl'}-{request.state.id}"


def _sse(payload: dict) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()

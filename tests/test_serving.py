"""``tuneforge serve``: a real server process on loopback, driven by the official ``openai`` client (and raw HTTP for
what a client library would refuse to send), serving the registry's champion of a smoke workspace.

Two registered versions share the smoke base model's architecture and tokenizer; version 2's weights are perturbed,
so which version answered shows in the output as well as in the headers.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from conftest import workspace_env
from serving_helpers import INSTRUCTION, KEY, MODEL, TUNEFORGE, Server, candidate

from resources.registry import ModelRegistry
from tuneforge.registry import Candidate

pytestmark = pytest.mark.e2e
SUMMARY = "Low-rank adapters match full fine-tuning on summarization at a fraction of the cost."


@pytest.fixture(scope="module")
def served_workspace(tmp_path_factory, smoke_base_models) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("serving") / "ws"
    env = workspace_env(root, smoke_base_models)
    registry = ModelRegistry(root=str(root)).open()
    registry.promote(candidate(root, "adapter-a", None), expected_champion=None)
    candidate(root, "adapter-b", seed=7)  # registered by the promotion test
    curated = root / "data" / "curated"
    curated.mkdir(parents=True)
    rows = [{"id": f"r{i}", "group": f"r{i}", "source": "abstract", "document": "A paper about adapters.",
             "summary": SUMMARY} for i in range(20)]
    (curated / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (root / "tuneforge.yaml").write_text("evaluation: {max_new_tokens: null}\n")  # learned, as on the demo profile
    return root, env


@pytest.fixture(scope="module")
def server(served_workspace):
    root, env = served_workspace
    running = Server(root, env, "--precision", "fp32")  # greedy outputs then do not depend on the batch
    yield running
    assert running.stop() == 0, running.output()


def _chat(client: openai.OpenAI, text: str = "Tell me about LoRA.", max_tokens: int = 8, **options):
    return client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": text}], max_tokens=max_tokens, **options)


def test_chat_answers_with_the_champion_and_names_its_version(server):
    raw = _chat(server.client(), max_tokens=6)
    completion = raw.parse()
    assert raw.headers["x-tuneforge-model-version"] == "1"
    assert raw.headers["x-tuneforge-adapter"] == "adapter-a"
    assert completion.system_fingerprint == "v1-adapter-a"
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    # random weights never reach the end of turn: the answer runs to max_tokens
    assert choice.finish_reason == "length" and completion.usage.completion_tokens == 6
    assert completion.usage.prompt_tokens > 5


def test_streaming_gives_the_same_text_as_a_whole_answer(server):
    client = server.client()
    whole = _chat(client, "What is a summary?", max_tokens=12).parse().choices[0].message.content
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "What is a summary?"}], max_tokens=12, stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 12


def test_models_lists_the_champion_and_its_instruction_model(server):
    models = {model.id: model for model in server.client().models.list()}
    assert set(models) == {MODEL, f"{MODEL}:abstract"}
    assert models[f"{MODEL}:abstract"].model_extra["instruction"] == INSTRUCTION
    assert models[MODEL].model_extra["version"] == "1"


def test_the_instruction_model_and_completions_answer(server):
    client = server.client()
    summary = client.chat.completions.create(
        model=f"{MODEL}:abstract", messages=[{"role": "user", "content": "A long paper. " * 40}], max_tokens=5)
    assert summary.usage.completion_tokens == 5
    completion = client.completions.create(model=MODEL, prompt=["Once upon a time", "LoRA is"], max_tokens=4)
    assert [c.index for c in completion.choices] == [0, 1] and completion.usage.completion_tokens == 8
    with pytest.raises(openai.NotFoundError, match=f"model: 'gpt-4o' is not served here; models: {MODEL}"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])


def test_an_instruction_model_answers_within_the_evaluations_budget_by_default(served_workspace, server):
    """Without max_tokens, `<name>:<source>` generates what the evaluation generated: the budget learned from the
    training summaries (99th percentile of their tokens x 1.25 + 1); plain chat gets serving.default_max_tokens."""
    from transformers import AutoTokenizer

    root, _ = served_workspace
    tokens = len(AutoTokenizer.from_pretrained(root / "models" / "exports" / "adapter-a")(
        SUMMARY, add_special_tokens=False)["input_ids"])
    client = server.client()
    summary = client.chat.completions.create(model=f"{MODEL}:abstract",
                                             messages=[{"role": "user", "content": "A paper."}])
    assert summary.usage.completion_tokens == math.ceil(tokens * 1.25) + 1  # random weights never stop early
    assert "and answer at most" in server.output() and "instruction models read prompts of at most" in server.output()


def test_concurrent_requests_are_batched_and_all_answered(server):
    client = server.client()
    prompts = [f"Question number {i}: what does fine-tuning change?" for i in range(24)]
    alone = {p: _chat(client, p, max_tokens=10).parse().choices[0].message.content for p in prompts[:3]}
    answers: dict[str, str] = {}
    errors: list[Exception] = []

    def ask(prompt: str) -> None:
        try:
            answers[prompt] = _chat(client, prompt, max_tokens=10).parse().choices[0].message.content
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=ask, args=(p,)) for p in prompts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(answers) == len(prompts)
    # greedy fp32 decoding gives the same answer in a batch as alone
    assert all(answers[p] == text for p, text in alone.items())
    metrics = httpx.get(f"{server.url}/metrics").text
    batches = _metric(metrics, "tuneforge_batch_size_count")
    rows = _metric(metrics, "tuneforge_batch_size_sum")
    assert rows / batches > 1.5, f"{rows} requests in {batches} batches: concurrent requests were not batched"


def _metric(text: str, name: str, labels: str = "") -> float:
    for line in text.splitlines():
        if line.startswith(name + (labels and "{")) and (not labels or labels in line):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{labels}}} is not in /metrics:\n{text}")


def test_metrics_report_requests_latency_first_tokens_and_the_version(server):
    _chat(server.client(), max_tokens=3)
    text = httpx.get(f"{server.url}/metrics").text
    assert _metric(text, "tuneforge_requests_total", 'route="/v1/chat/completions",status="200"') >= 1
    assert _metric(text, "tuneforge_request_duration_seconds_count", 'route="/v1/chat/completions"') >= 1
    assert _metric(text, "tuneforge_time_to_first_token_seconds_count") >= 1
    assert _metric(text, "tuneforge_generated_tokens_total") >= 3
    assert "tuneforge_queue_depth" in text and "tuneforge_generated_tokens_per_second" in text
    assert _metric(text, "tuneforge_model_info", 'version="1"') == 1


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5000}, 400,
     "max_tokens: 5000 exceeds this server's limit of 1024 (serving.max_tokens_limit)"),
    ({"model": MODEL, "messages": []}, 400, "messages: List should have at least 1 item"),
    ({"model": MODEL, "messages": [{"role": "robot", "content": "hi"}]}, 400, "messages.0.role: Input should be"),
    ({"model": MODEL, "messages": [{"role": "assistant", "content": "hi"}]}, 400,
     "the last message must be the user's (got 'assistant')"),
    ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "n": 2}, 400, "n: Input should be less"),
    ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stop": ["\n"]}, 400,
     "stop: stop sequences are not supported"),
    ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "temperature": -1}, 400, "temperature:"),
    ({"messages": [{"role": "user", "content": "hi"}]}, 400, "model: Field required"),
    ({"model": MODEL, "messages": [{"role": "user", "content": "word " * 5000}]}, 400,
     "messages: the prompt is 50"),
])
def test_bad_requests_get_a_4xx_that_says_what_is_wrong(server, body, status, message):
    response = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error["message"] and error["type"] == "invalid_request_error"


def test_malformed_and_oversize_bodies_are_refused(server):
    response = httpx.post(f"{server.url}/v1/chat/completions", content=b'{"model": ', timeout=30,
                          headers={"content-type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]["message"]
    huge = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 1_100_000}]}
    response = httpx.post(f"{server.url}/v1/chat/completions", json=huge, timeout=30)
    assert response.status_code == 413
    assert "accepts at most 1000000 (serving.max_request_bytes)" in response.json()["error"]["message"]


def test_promotion_and_rollback_switch_the_model_without_failing_a_request(served_workspace, server):
    root, _ = served_workspace
    client = server.client()
    before = _chat(client, "Same question", max_tokens=10).parse().choices[0].message.content
    versions: list[str] = []
    failures: list[Exception] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                versions.append(_chat(client, "Under load", max_tokens=6).headers["x-tuneforge-model-version"])
            except Exception as error:  # noqa: BLE001 - asserted below
                failures.append(error)

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        registry = ModelRegistry(root=str(root)).open()
        second = registry.promote(Candidate(root / "models/adapters/adapter-b", root / "models/exports/adapter-b",
                                            params={"fingerprint": "adapter-b"}), expected_champion="1")
        _wait_for_version(client, second)
        after = _chat(client, "Same question", max_tokens=10)
        assert after.headers["x-tuneforge-adapter"] == "adapter-b"
        assert after.parse().choices[0].message.content != before
        env = {**os.environ, "TUNEFORGE_ROOT": str(root)}
        env.pop("MLFLOW_TRACKING_URI", None)
        subprocess.run([str(TUNEFORGE), "rollback"], env=env, check=True, capture_output=True)
        _wait_for_version(client, "1")
        assert _chat(client, "Same question", max_tokens=10).parse().choices[0].message.content == before
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert not failures, failures[:3]
    assert {"1", second} <= set(versions)
    models = {m.id: m for m in client.models.list()}
    assert models[MODEL].model_extra["version"] == "1"


def _wait_for_version(client: openai.OpenAI, version: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _chat(client, max_tokens=1).headers["x-tuneforge-model-version"] == version:
            return
        time.sleep(0.2)
    raise AssertionError(f"the server never served version {version}")


def test_api_keys_guard_every_route_but_health_and_never_reach_the_log(served_workspace):
    root, env = served_workspace
    # bf16 here whatever this machine's auto would pick, so both precisions are served by some test
    keyed = Server(root, env, "--precision", "bf16", extra_env={"TUNEFORGE_API_KEYS": f"other-key,{KEY}"})
    try:
        with pytest.raises(openai.AuthenticationError, match="a valid API key is required"):
            _chat(keyed.client("wrong-key"))
        assert httpx.get(f"{keyed.url}/v1/models").status_code == 401
        assert httpx.get(f"{keyed.url}/metrics").status_code == 401
        assert httpx.get(f"{keyed.url}/health").status_code == 200
        assert httpx.get(f"{keyed.url}/ready").json()["precision"] == "bf16"
        assert _chat(keyed.client(KEY), max_tokens=2).parse().usage.completion_tokens == 2
    finally:
        assert keyed.stop() == 0
    log = keyed.output()
    assert "2 API key(s)" in log and KEY not in log and "other-key" not in log
    access = [json.loads(line.split(": ", 1)[1]) for line in log.splitlines() if "tuneforge.serving.access" in line]
    assert {entry["status"] for entry in access} >= {200, 401}


def test_a_full_queue_answers_429(served_workspace):
    root, env = served_workspace
    small = Server(root, env, "--max-queue", "1", "--max-tokens-limit", "4096")
    statuses: list[int] = []
    body = {"model": MODEL, "messages": [{"role": "user", "content": "go on"}], "max_tokens": 400}

    def ask() -> None:
        response = httpx.post(f"{small.url}/v1/chat/completions", json=body, timeout=120)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert "serving.max_queue=1" in response.json()["error"]["message"]
            assert response.headers["retry-after"] == "1"

    try:
        threads = [threading.Thread(target=ask) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        assert small.stop() == 0
    assert 200 in statuses and 429 in statuses


def test_binding_beyond_loopback_without_keys_is_refused(served_workspace):
    root, env = served_workspace
    environ = {k: v for k, v in os.environ.items() if k != "TUNEFORGE_API_KEYS"}
    result = subprocess.run([str(TUNEFORGE), "serve", "--host", "0.0.0.0"], cwd=root, env={**environ, **env},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "serving.host: 0.0.0.0 is reachable beyond this machine, so API keys are required" in result.stderr


def test_serving_without_a_champion_says_what_to_run(tmp_path, smoke_base_models):
    root = tmp_path / "empty"
    env = workspace_env(root, smoke_base_models)
    environ = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    result = subprocess.run([str(TUNEFORGE), "serve"], cwd=root, env={**environ, **env}, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1 and "has no champion" in result.stderr and "make demo" in result.stderr


# --- the request log and feedback ----------------------------------------------------------------------------------

PERSON = "Contact Dr. Alice Johnson at alice.johnson@example.org or +44 20 7946 0958."


def _logged(root: Path, request_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in (root / "logs" / "requests").glob("*.jsonl"):
            for line in path.read_text().splitlines():
                entry = json.loads(line)
                if entry["request_id"] == request_id:
                    return entry
        time.sleep(0.2)
    raise AssertionError(f"request {request_id} never reached the request log")


def test_every_request_is_logged_with_personal_data_redacted(served_workspace, server):
    root, _ = served_workspace
    raw = server.client().chat.completions.with_raw_response.create(
        model=f"{MODEL}:abstract", messages=[{"role": "user", "content": PERSON}], max_tokens=4)
    entry = _logged(root, raw.headers["x-request-id"])
    assert raw.parse().id == f"chatcmpl-{entry['request_id']}"
    assert entry["source"] == "abstract" and entry["instruction"] == INSTRUCTION
    assert entry["version"] == "1" and entry["adapter"] == "adapter-a"
    assert entry["completion_tokens"] == 4 and entry["finish_reason"] == "length" and entry["seconds"] > 0
    assert "[EMAIL]" in entry["document"] and "[PHONE]" in entry["document"]
    text = json.dumps(entry)
    assert "alice.johnson@example.org" not in text and "7946" not in text
    streamed = server.client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": PERSON}], max_tokens=3, stream=True)
    chunks = list(streamed)
    entry = _logged(root, chunks[0].id.removeprefix("chatcmpl-"))
    assert entry["stream"] and "user: " in entry["prompt"] and "alice.johnson" not in entry["prompt"]
    assert entry["output"] == "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # the access log times a streamed request to its last chunk, not to its headers
    access = _access_entry(server, entry["request_id"])
    assert access["status"] == 200 and access["seconds"] >= entry["seconds"]


def _access_entry(server: Server, request_id: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in server.output().splitlines():
            if "tuneforge.serving.access" in line and request_id in line:
                return json.loads(line.split(": ", 1)[1])
        time.sleep(0.1)
    raise AssertionError(f"no access-log line for request {request_id}")


def _feedback(server: Server, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/feedback", json=body, timeout=30)


def test_a_correction_becomes_a_redacted_training_row_of_a_feedback_source(served_workspace, server):
    root, _ = served_workspace
    answer = server.client().chat.completions.create(
        model=f"{MODEL}:abstract", messages=[{"role": "user", "content": f"A study of LoRA. {PERSON}"}],
        max_tokens=4)
    correction = "LoRA adapters match full fine-tuning; ask bob@example.com."
    response = _feedback(server, {"request_id": answer.id, "rating": 2, "correction": correction,
                                  "comment": "too vague"})
    assert response.status_code == 200, response.text
    request_id = answer.id.removeprefix("chatcmpl-")
    assert response.json() == {"request_id": request_id, "recorded": True, "training_source": "feedback-abstract",
                               "note": None}
    source = root / "data" / "raw" / "feedback-abstract"
    assert yaml.safe_load((source / "source.yaml").read_text()) == {"instruction": INSTRUCTION}
    (row,) = [json.loads(line) for path in source.glob("*.jsonl") for line in path.read_text().splitlines()
              if json.loads(line)["id"] == request_id]
    assert row["summary"] == "LoRA adapters match full fine-tuning; ask [EMAIL]."
    assert row["document"].startswith("A study of LoRA.") and "alice.johnson" not in row["document"]
    (rated,) = [json.loads(line) for path in (root / "logs" / "feedback").glob("*.jsonl")
                for line in path.read_text().splitlines() if json.loads(line)["request_id"] == request_id]
    assert rated["rating"] == 2 and rated["comment"] == "too vague" and rated["version"] == "1"

    # the feedback source is a source like any other: ingestion reads it, its row ids are the request ids
    from tuneforge.corpus.ingest import ingest_source
    report = ingest_source(source, root / "feedback.rows.jsonl", root / "feedback.quarantine.jsonl")
    assert report.rows >= 1
    assert request_id in (root / "feedback.rows.jsonl").read_text()


def test_a_correction_of_plain_chat_is_kept_but_trains_nothing(server):
    answer = server.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                                     max_tokens=2)
    response = _feedback(server, {"request_id": answer.id, "correction": "Hello!"})
    assert response.status_code == 200 and response.json()["training_source"] is None
    assert "a correction trains only answers of an instruction model" in response.json()["note"]


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"request_id": "chatcmpl-0000", "rating": 5}, 404, "request_id: no request 'chatcmpl-0000' in the request log"),
    ({"request_id": "x"}, 400, "give a rating, a correction or a comment"),
    ({"request_id": "x", "rating": 9}, 400, "rating: Input should be less than or equal to 5"),
    ({"rating": 3}, 400, "request_id: Field required"),
    ({"request_id": "x", "rating": 3, "stars": 4}, 400, "stars: Extra inputs are not permitted"),
])
def test_bad_feedback_gets_a_4xx_that_says_what_is_wrong(server, body, status, message):
    response = _feedback(server, body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]

"""The optional LLM judge, against a real OpenAI-compatible HTTP server on loopback driven by the ``openai`` client."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import uvicorn
from fastapi import FastAPI, Request
from pydantic import ValidationError

from tuneforge.evaluation.judge import JudgeError, judge_scores, parse_score
from tuneforge.evaluation.render import judge_section
from tuneforge.evaluation.report import ModelScores
from tuneforge.profiles import EvaluationConfig, JudgeConfig

KEY = "judge-key-8c2f"


def _judge_app(seen: list[dict]) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def grade(request: Request) -> dict:
        body = await request.json()
        prompt = body["messages"][0]["content"]
        seen.append({"model": body["model"], "authorization": request.headers.get("authorization"), "prompt": prompt})
        summary = prompt.rsplit("Summary:\n", 1)[1]
        reply = "Score: 5" if "faithful" in summary else "no idea" if "gibberish" in summary else "2"
        return {"id": "judge-1", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": reply}}]}

    return app


@pytest.fixture
def judge_url():
    seen: list[dict] = []
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_judge_app(seen), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1", seen
    server.should_exit = True
    thread.join()


@pytest.mark.parametrize(("reply", "score"), [
    ("4", 4), ("Score: 5", 5), ("I would say 3.", 3), ("2/5", 2), ("10", None), ("2.5", None), ("none", None),
])
def test_the_score_is_the_first_number_from_1_to_5(reply, score):
    assert parse_score(reply) == score


def test_the_judge_scores_each_summary_and_records_who_judged_and_how(judge_url, monkeypatch):
    url, seen = judge_url
    monkeypatch.setenv("JUDGE_KEY", KEY)
    config = EvaluationConfig(bootstrap_resamples=200, judge=JudgeConfig(base_url=url, model="grader-1",
                                                                          api_key_env="JUDGE_KEY"))
    documents = ["The study found adapters match full fine-tuning."] * 4
    summaries = ["A faithful summary.", "A vague one.", "A faithful one again.", "gibberish"]
    result = judge_scores(config, documents, summaries)
    assert result["scores"] == [5, 2, 5, None] and result["scored"] == 3 and result["unparsed"] == 1
    assert result["mean"] == pytest.approx(4.0) and result["unparsed_replies"] == ["no idea"]
    assert result["model"] == "grader-1" and result["prompt"] == config.judge.prompt
    assert len(result["prompt_sha256"]) == 64 and KEY not in str(result)
    assert {entry["authorization"] for entry in seen} == {f"Bearer {KEY}"}
    assert all(entry["model"] == "grader-1" and "adapters match" in entry["prompt"] for entry in seen)

    scores = ModelScores("candidate", None, {}, {}, {}, [], summaries, [True] * 4, {}, {}, {}, {}, judge=result)
    section = judge_section([scores])
    assert "Judged by grader-1" in section.tables[0].caption and section.tables[0].rows[0][1] == "4.00"


def test_an_unreachable_judge_names_the_setting():
    config = EvaluationConfig(judge=JudgeConfig(base_url="http://127.0.0.1:9/v1", model="grader-1",
                                                timeout_seconds=5))
    with pytest.raises(JudgeError, match="evaluation.judge.base_url: cannot reach http://127.0.0.1:9/v1"):
        judge_scores(config, ["doc"], ["summary"])


@pytest.mark.parametrize(("fields", "message"), [
    ({"base_url": "http://127.0.0.1:8001/v1"}, "model is required when base_url is set"),
    ({"prompt": "Rate {summary}."}, "prompt must contain {document}"),
])
def test_a_judge_misconfigured_is_refused(fields, message):
    with pytest.raises(ValidationError, match=message):
        JudgeConfig(**fields)
    assert not JudgeConfig().enabled

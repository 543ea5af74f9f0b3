"""An LLM judge: every summary scored 1 to 5 by a model behind any OpenAI-compatible endpoint (the official ``openai``
client), with the judge's model id and prompt recorded beside the scores so a figure says who graded it and how.

Off unless ``evaluation.judge.base_url`` is set. The key is read from the environment variable the settings name,
never stored. A reply without a number from 1 to 5 is counted as unparsed, not guessed.
"""

from __future__ import annotations

import hashlib
import os
import re
from concurrent.futures import ThreadPoolExecutor

from tuneforge.evaluation.stats import bootstrap_interval
from tuneforge.profiles import EvaluationConfig, JudgeConfig

SCORE = re.compile(r"(?<![\d.])([1-5])(?!\d|\.\d)")  # a digit 1-5 standing alone: not in 10 or 2.5


class JudgeError(RuntimeError):
    """The judge endpoint cannot be used; the message names the setting."""


def parse_score(reply: str) -> int | None:
    match = SCORE.search(reply or "")
    return int(match.group(1)) if match else None


def judge_summaries(config: JudgeConfig, documents: list[str], summaries: list[str]) -> list[tuple[int | None, str]]:
    """(score or None, the reply) for each summary of its document."""
    import openai

    client = openai.OpenAI(base_url=config.base_url, api_key=os.environ.get(config.api_key_env) or "none",
                           timeout=config.timeout_seconds, max_retries=1)

    def ask(pair: tuple[str, str]) -> tuple[int | None, str]:
        document, summary = pair
        prompt = config.prompt.format(document=document[: config.max_document_chars], summary=summary)
        try:
            reply = client.chat.completions.create(
                model=config.model, messages=[{"role": "user", "content": prompt}], temperature=0, max_tokens=8)
        except openai.APIConnectionError as error:
            raise JudgeError(f"evaluation.judge.base_url: cannot reach {config.base_url} ({error})") from None
        except openai.APIStatusError as error:
            raise JudgeError(f"evaluation.judge: {config.base_url} answered {error.status_code} for model "
                             f"{config.model!r}: {error.message}") from None
        text = reply.choices[0].message.content or ""
        return parse_score(text), text

    with ThreadPoolExecutor(max_workers=config.concurrency) as pool:
        return list(pool.map(ask, zip(documents, summaries, strict=True)))


def judge_scores(config: EvaluationConfig, documents: list[str], summaries: list[str]) -> dict:
    """The judge's figures for one model: mean score with its bootstrap interval, per-row scores, unparsed replies,
    and what judged (model, endpoint, prompt and its sha256)."""
    judge = config.judge
    graded = judge_summaries(judge, documents, summaries)
    scores = [score for score, _ in graded]
    parsed = [float(score) for score in scores if score is not None]
    return {
        "model": judge.model, "base_url": judge.base_url, "prompt": judge.prompt,
        "prompt_sha256": hashlib.sha256(judge.prompt.encode()).hexdigest(),
        "scores": scores, "scored": len(parsed), "unparsed": len(scores) - len(parsed),
        "unparsed_replies": [reply for score, reply in graded if score is None][:5],
        "mean": sum(parsed) / len(parsed) if parsed else None,
        "interval": bootstrap_interval(parsed, config.confidence, config.bootstrap_resamples, config.seed)
        if len(parsed) > 1 else None,
    }

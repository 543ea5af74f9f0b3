"""The OpenAI request bodies tuneforge answers, and its error shape. Fields the API defines but tuneforge does not
implement are accepted only at their neutral value, so a client never gets silently different behaviour."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "developer"]
    content: str | list[TextPart]

    @property
    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    include_usage: bool = False


class Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0, description="0 or absent: greedy (deterministic).")
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = None
    n: int = Field(1, ge=1, le=1, description="One completion per prompt.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    logprobs: bool | int | None = None

    @model_validator(mode="after")
    def _implemented(self) -> Sampling:
        if self.stop:
            raise ValueError("stop: stop sequences are not supported; the model ends at its end of turn")
        if self.logprobs:
            raise ValueError("logprobs: not supported")
        return self


class ChatCompletionRequest(Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _ends_with_a_user_turn(self) -> ChatCompletionRequest:
        if self.messages[-1].role != "user":
            raise ValueError(f"the last message must be the user's (got {self.messages[-1].role!r})")
        return self

    @property
    def requested_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(Sampling):
    prompt: str | list[str]

    @model_validator(mode="after")
    def _one_prompt_when_streaming(self) -> CompletionRequest:
        if isinstance(self.prompt, list):
            if not self.prompt:
                raise ValueError("prompt: give at least one prompt")
            if self.stream and len(self.prompt) > 1:
                raise ValueError("prompt: stream one prompt at a time")
        return self

    @property
    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    @property
    def requested_tokens(self) -> int | None:
        return self.max_tokens


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, description="The response's id, or its X-Request-Id header.")
    rating: int | None = Field(None, ge=1, le=5, description="1 (bad) to 5 (good).")
    correction: str | None = Field(None, min_length=1, description="What the answer should have been.")
    comment: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _says_something(self) -> FeedbackRequest:
        if self.rating is None and self.correction is None and self.comment is None:
            raise ValueError("give a rating, a correction or a comment")
        return self


def plain_request_id(request_id: str) -> str:
    """The request id behind a response id (``chatcmpl-<id>``, ``cmpl-<id>``) or the id itself."""
    for prefix in ("chatcmpl-", "cmpl-"):
        if request_id.startswith(prefix):
            return request_id[len(prefix):]
    return request_id


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}

"""Chat-formatted prompts: the source's instruction plus the (token-truncated) document, in the model's template."""

from __future__ import annotations

from dataclasses import dataclass

USER_TEMPLATE = "{instruction}\n\n{document}"
MIN_DOCUMENT_TOKENS = 8  # a prompt must leave at least this much of the document


@dataclass
class EncodedExample:
    input_ids: list[int]
    labels: list[int]  # -100 on the prompt, so the loss covers the summary tokens only

    @property
    def target_tokens(self) -> int:
        return sum(label != -100 for label in self.labels)


def _messages(instruction: str, document: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": USER_TEMPLATE.format(instruction=instruction, document=document)}]


def _token_ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _truncate(tokenizer, document: str, max_tokens: int) -> str:
    ids = _token_ids(tokenizer, document)
    return document if len(ids) <= max_tokens else tokenizer.decode(ids[: max(max_tokens, 0)])


def template_tokens(tokenizer, instruction: str) -> int:
    """Tokens the chat template and ``instruction`` take in a prompt, before any document."""
    return len(_prompt_tokens(tokenizer, instruction, ""))


def prompt_ids(tokenizer, instruction: str, document: str, max_prompt_tokens: int) -> list[int]:
    """Token ids of the prompt, ending with the assistant turn's opening, at most ``max_prompt_tokens`` long."""
    overhead = template_tokens(tokenizer, instruction)
    budget = max_prompt_tokens - overhead
    if budget < MIN_DOCUMENT_TOKENS:
        raise ValueError(
            f"max prompt length {max_prompt_tokens} leaves {budget} tokens for the document after the instruction "
            f"and chat template ({overhead} tokens); raise it"
        )
    for margin in (0, 8, 32):  # decode/re-encode can shift a few tokens at the cut
        ids = _prompt_tokens(tokenizer, instruction, _truncate(tokenizer, document, budget - margin))
        if len(ids) <= max_prompt_tokens:
            return ids
    return ids[:max_prompt_tokens]


def _prompt_tokens(tokenizer, instruction: str, document: str) -> list[int]:
    text = tokenizer.apply_chat_template(_messages(instruction, document), tokenize=False, add_generation_prompt=True)
    return _token_ids(tokenizer, text)


class SummaryTooLong(ValueError):
    """The summary (with the instruction and at least ``MIN_DOCUMENT_TOKENS`` of document) exceeds max_seq_len."""




def encode_for_training(
    tokenizer, instruction: str, document: str, summary: str, max_seq_len: int
) -> EncodedExample:
    """Prompt + summary + end-of-turn; the document is shortened so the summary always fits. A summary that leaves
    less than ``MIN_DOCUMENT_TOKENS`` of document raises ``SummaryTooLong``: cutting it would teach the model not to
    stop."""
    full_text = tokenizer.apply_chat_template(
        [*_messages(instruction, ""), {"role": "assistant", "content": summary}], tokenize=False
    )
    prompt_text = tokenizer.apply_chat_template(_messages(instruction, ""), tokenize=False, add_generation_prompt=True)
    if not full_text.startswith(prompt_text):
        raise ValueError("the tokenizer's chat template does not extend the prompt with the answer; cannot mask it")
    answer = _token_ids(tokenizer, full_text[len(prompt_text):])
    overhead = template_tokens(tokenizer, instruction)
    if len(answer) + overhead + MIN_DOCUMENT_TOKENS > max_seq_len:
        raise SummaryTooLong(f"a summary of {len(answer)} tokens leaves less than {MIN_DOCUMENT_TOKENS} tokens of "
                             f"document in training.max_seq_len={max_seq_len}")
    prompt = prompt_ids(tokenizer, instruction, document, max_seq_len - len(answer))
    return EncodedExample(input_ids=prompt + answer, labels=[-100] * len(prompt) + answer)

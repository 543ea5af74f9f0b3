"""Batched generation against unbatched ``model.generate`` on the smoke profile's tiny random model (fp32)."""

import pytest
import torch

import tuneforge.modeling.generate as generation_module
from tuneforge.modeling.generate import Generation, Prompt, generate, load_for_inference
from tuneforge.modeling.prompts import prompt_ids
from tuneforge.profiles import DecodingConfig

MAX_PROMPT = 96
NEW = 10
# Documents of very different lengths, so batches are left-padded; not in length order.
PROMPTS = [
    Prompt("Summarize.", "The cat sat on the mat. " * 6),
    Prompt("Summarize.", "Short note."),
    Prompt("State the method.", "We propose a method for parsing long documents with a small model. " * 4),
    Prompt("Summarize.", "A medium sized document about nothing in particular, written for tests."),
    Prompt("State the findings.", "Results improved a lot, as the tables show."),
]


@pytest.fixture(scope="module")
def lively_base(smoke_base_models, tmp_path_factory):
    """The smoke model with larger random weights: at its initial scale it repeats one token whatever the prompt."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = next(smoke_base_models.iterdir())
    model = AutoModelForCausalLM.from_pretrained(source)
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.normal_(0, 0.3)
    target = tmp_path_factory.mktemp("lively-base")
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    return target


@pytest.fixture(scope="module")
def tiny(lively_base):
    return load_for_inference(lively_base)


def reference(model, tokenizer, prompts, max_new_tokens=NEW, **kwargs) -> list[list[int]]:
    """Unbatched greedy decoding with model.generate: the generated tokens, up to and including end-of-sequence."""
    eos = model.generation_config.eos_token_id
    eos = {eos} if isinstance(eos, int) else set(eos)
    outputs = []
    with torch.inference_mode():
        for prompt in prompts:
            ids = prompt_ids(tokenizer, prompt.instruction, prompt.document, MAX_PROMPT)
            input_ids = torch.tensor([ids])
            generated = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                       max_new_tokens=max_new_tokens, do_sample=False, **kwargs)[0, len(ids):].tolist()
            end = next((k for k, token in enumerate(generated) if token in eos), None)
            outputs.append(generated if end is None else generated[: end + 1])
    return outputs


def run(model, tokenizer, prompts=PROMPTS, batch_size=3, **kwargs) -> list[Generation]:
    kwargs.setdefault("max_new_tokens", NEW)
    return generate(model, tokenizer, prompts, MAX_PROMPT, batch_size=batch_size, log=lambda line: None,
                    precision="fp32", **kwargs)


def texts(tokenizer, token_lists) -> list[str]:
    return [tokenizer.decode(tokens, skip_special_tokens=True).strip() for tokens in token_lists]


def test_batched_greedy_equals_unbatched_greedy_in_prompt_order(tiny):
    model, tokenizer = tiny
    expected = reference(model, tokenizer, PROMPTS)
    lengths = [len(prompt_ids(tokenizer, p.instruction, p.document, MAX_PROMPT)) for p in PROMPTS]
    assert len(set(lengths)) == len(PROMPTS)  # every batch of 3 is padded
    for batch_size in (1, 3, 8):
        generations = run(model, tokenizer, batch_size=batch_size)
        assert [g.text for g in generations] == texts(tokenizer, expected)
        assert [g.new_tokens for g in generations] == [len(tokens) for tokens in expected]
    reversed_texts = [g.text for g in run(model, tokenizer, prompts=PROMPTS[::-1])]
    assert reversed_texts == texts(tokenizer, expected)[::-1]


# Prompts of one length (chunks without padding), among others.
SAME_LENGTH = [Prompt("Summarize.", f"The report on {fruit} was long and the results were good.")
               for fruit in ("apples", "pears", "lemons", "grapes")]


@pytest.mark.parametrize(("mixed", "prefill_tokens"), [(False, 2048), (False, 100), (True, 150), (True, 1)])
def test_chunked_prefill_changes_nothing(tiny, monkeypatch, mixed, prefill_tokens):
    """One chunk or two of same-length prompts; mixed lengths in chunks that skip the padding they share."""
    model, tokenizer = tiny
    prompts = SAME_LENGTH[:2] + PROMPTS + SAME_LENGTH[2:] if mixed else SAME_LENGTH
    lengths = {len(prompt_ids(tokenizer, p.instruction, p.document, MAX_PROMPT)) for p in SAME_LENGTH}
    assert len(lengths) == 1
    monkeypatch.setattr(generation_module, "PREFILL_TOKENS", prefill_tokens)
    generations = run(model, tokenizer, prompts=prompts, batch_size=9)
    assert [g.text for g in generations] == texts(tokenizer, reference(model, tokenizer, prompts))


@pytest.mark.parametrize("compact_share", [8, 1])  # finished rows leave the batch at once / ride along to the end
def test_finished_tells_end_of_sequence_from_the_token_limit(tiny, monkeypatch, compact_share):
    monkeypatch.setattr(generation_module, "COMPACT_SHARE", compact_share)
    model, tokenizer = tiny
    unlimited = reference(model, tokenizer, PROMPTS)
    # Make a token the first row generates at its third step (and not before) an end-of-sequence token.
    eos_token = next(t for k, t in enumerate(unlimited[0]) if k >= 2 and t not in unlimited[0][:k])
    original = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = [eos_token, tokenizer.eos_token_id]
    try:
        expected = reference(model, tokenizer, PROMPTS)
        generations = run(model, tokenizer)
    finally:
        model.generation_config.eos_token_id = original
    assert [g.text for g in generations] == texts(tokenizer, expected)  # rows that ended left the batch: no effect
    for generation, tokens in zip(generations, expected, strict=True):
        ended = tokens[-1] in (eos_token, tokenizer.eos_token_id)
        assert generation.finished == ended
        assert generation.new_tokens == len(tokens)
        assert ended or len(tokens) == NEW
    assert generations[0].finished and generations[0].new_tokens == unlimited[0].index(eos_token) + 1
    assert not all(g.finished for g in generations)


def test_repetition_penalty_ignores_padding(tiny):
    model, tokenizer = tiny
    expected = reference(model, tokenizer, PROMPTS, repetition_penalty=1.5)
    generations = run(model, tokenizer, decoding=DecodingConfig(repetition_penalty=1.5))
    assert [g.text for g in generations] == texts(tokenizer, expected)


def test_sampling_repeats_with_its_seed_whatever_the_batching(tiny):
    model, tokenizer = tiny
    decoding = DecodingConfig(strategy="sample", temperature=1.0, top_p=0.95, seed=7)
    first = [g.text for g in run(model, tokenizer, decoding=decoding)]
    assert [g.text for g in run(model, tokenizer, decoding=decoding)] == first
    assert [g.text for g in run(model, tokenizer, decoding=decoding, batch_size=2)] == first
    other_seed = [g.text for g in run(model, tokenizer, decoding=decoding.model_copy(update={"seed": 8}))]
    assert other_seed != first
    assert first != [g.text for g in run(model, tokenizer)]  # not greedy


def test_beam_search_runs_and_keeps_the_order(tiny):
    model, tokenizer = tiny
    decoding = DecodingConfig(strategy="beam", num_beams=2)
    generations = run(model, tokenizer, decoding=decoding, max_new_tokens=4)
    alone = [run(model, tokenizer, prompts=[p], decoding=decoding, max_new_tokens=4)[0] for p in PROMPTS[:2]]
    assert len(generations) == len(PROMPTS)
    assert all(0 < g.new_tokens <= 4 for g in generations)
    assert [g.text for g in alone] == [g.text for g in generations[:2]]


def test_no_prompts_no_generations(tiny):
    model, tokenizer = tiny
    assert run(model, tokenizer, prompts=[]) == []


def test_an_unmerged_adapter_generates_like_the_merged_one(tiny, lively_base, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    base_dir = lively_base
    torch.manual_seed(0)
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                          LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    unmerged, tokenizer = load_for_inference(base_dir, tmp_path / "adapter", merge=False)
    merged, _ = load_for_inference(base_dir, tmp_path / "adapter")
    assert isinstance(unmerged, PeftModel) and not isinstance(merged, PeftModel)
    adapted = [g.text for g in run(merged, tokenizer)]
    assert [g.text for g in run(unmerged, tokenizer)] == adapted
    assert adapted != [g.text for g in run(*tiny)]


@pytest.mark.parametrize("evaluation_precision", ["fp32", "bf16"])
def test_evaluation_generates_in_its_own_precision_and_records_it(lively_base, monkeypatch, precision,
                                                                  evaluation_precision):
    """The evaluation's precision is its own setting (fp32 by default, where batching changes no output), whatever
    precision training uses (``precision`` sets TUNEFORGE_PRECISION), and the report's metric spec records it."""
    from tuneforge.corpus.records import Example
    from tuneforge.evaluation.report import ModelUnderTest, evaluate
    from tuneforge.profiles import EvaluationConfig

    autocasts = []
    real_autocast = generation_module.autocast

    def recording_autocast(device, bf16):
        autocasts.append(bf16)
        return real_autocast(device, bf16)

    monkeypatch.setattr(generation_module, "autocast", recording_autocast)
    rows = [Example(id=str(i), source="s", group=str(i), document=p.document, summary="A short summary here.")
            for i, p in enumerate(PROMPTS)]
    config = EvaluationConfig(precision=evaluation_precision, max_test_rows=4, max_new_tokens=4, batch_size=4,
                              max_prompt_tokens=MAX_PROMPT, bootstrap_resamples=100)
    report = evaluate(lively_base, [ModelUnderTest("base", None, {"s": "Summarize."})], rows, config,
                      log=lambda line: None)
    assert report.metric["precision"] == evaluation_precision
    assert autocasts == [evaluation_precision == "bf16"]
    assert len(report.models["base"].predictions) == 4


def _repeated_ngrams(tokens: list[int], n: int) -> int:
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(grams) - len(set(grams))


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_the_no_repeat_guard_stops_loops_within_an_output_but_not_copying_the_prompt(smoke_base_models, strategy):
    model, tokenizer = load_for_inference(next(smoke_base_models.iterdir()))  # at its initial scale, it loops
    rows = [prompt_ids(tokenizer, p.instruction, p.document, MAX_PROMPT) for p in PROMPTS]

    def outputs(**decoding) -> list[list[int]]:
        config = DecodingConfig(strategy=strategy, num_beams=2, **decoding)
        with torch.inference_mode():
            if strategy == "beam":
                done = generation_module._beam_batch(model, rows, 40, tokenizer.pad_token_id, {-1}, config,
                                                     torch.device("cpu"))
            else:
                done = generation_module.decode_batch(model, rows, 40, tokenizer.pad_token_id, {-1}, config,
                                                       [0] * len(rows), torch.device("cpu"))
        return [tokens for tokens, _ in done]

    assert sum(_repeated_ngrams(tokens, 2) for tokens in outputs(no_repeat_ngram_size=0)) > 0, "it loops unguarded"
    assert all(_repeated_ngrams(tokens, 2) == 0 for tokens in outputs(no_repeat_ngram_size=2))
    # The prompt's own bigrams stay allowed: the processor sees the generated tokens only.
    seen: list[torch.Tensor] = []
    guard = generation_module._GeneratedOnly(lambda ids, scores: seen.append(ids) or scores, prompt_width=5)
    guard(torch.arange(12).reshape(2, 6), torch.zeros(2, 3))
    assert seen[0].tolist() == [[5], [11]]


def test_a_prompt_variant_of_the_base_model_is_generated_and_scored_under_its_own_instruction(lively_base):
    from tuneforge.corpus.records import Example
    from tuneforge.evaluation.report import ModelUnderTest, evaluate
    from tuneforge.profiles import EvaluationConfig, variant_instructions

    rows = [Example(id=str(i), source="s", group=str(i), document=p.document, summary="A short summary here.")
            for i, p in enumerate(PROMPTS)]
    instructions = {"s": "Summarize."}
    models = [ModelUnderTest("base", None, instructions),
              ModelUnderTest("base-tldr", None, variant_instructions("Write a TLDR. {instruction}", instructions))]
    config = EvaluationConfig(max_test_rows=5, max_new_tokens=6, batch_size=5, max_prompt_tokens=MAX_PROMPT,
                              bootstrap_resamples=100)
    report = evaluate(lively_base, models, rows, config, log=lambda line: None)
    assert list(report.models) == ["lead", "base", "base-tldr"]
    assert report.models["base-tldr"].predictions != report.models["base"].predictions, "another prompt, other text"
    assert set(report.models["base-tldr"].scores) == set(report.models["base"].scores)

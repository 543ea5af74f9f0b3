"""How long training runs and how batches are sized: epochs from the data, the time budget, token-sized batches."""

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from training_support import training_job

from tuneforge.modeling.batching import batches_per_epoch, length_grouped_batches
from tuneforge.modeling.plan import (
    PROBE_STEPS,
    fit_time_budget,
    learned_epochs,
    learning_rate_factor,
    plan_training,
)
from tuneforge.modeling.preflight import TrainingConfigError
from tuneforge.modeling.records import load_training_result
from tuneforge.modeling.reporting import LogReporter
from tuneforge.modeling.train import run_training
from tuneforge.profiles import TrainingConfig


def test_token_batches_put_more_short_rows_in_a_step_and_never_exceed_the_budget():
    lengths = [40] * 200 + [400] * 20
    stream = length_grouped_batches(lengths, batch_size=4, seed=0, max_tokens=4 * 448)
    epoch_size = batches_per_epoch(lengths, batch_size=4, seed=0, max_tokens=4 * 448)
    epoch = [next(stream) for _ in range(epoch_size)]
    assert sorted(i for batch in epoch for i in batch) == list(range(220)), "one epoch covers every row once"
    assert all(len(batch) * max(lengths[i] for i in batch) <= 4 * 448 for batch in epoch)
    assert max(len(batch) for batch in epoch) == 44 and epoch_size < 220 / 4 / 2
    by_rows = batches_per_epoch(lengths, batch_size=4, seed=0)
    assert by_rows == 55


def test_a_row_longer_than_the_budget_still_gets_a_batch_of_its_own():
    stream = length_grouped_batches([900, 10, 10], batch_size=1, seed=0, max_tokens=100)
    epoch = [next(stream) for _ in range(batches_per_epoch([900, 10, 10], 1, 0, 100))]
    assert sorted(map(sorted, epoch)) == [[0], [1, 2]]


@pytest.mark.parametrize(("rows", "epochs"), [(10, 10), (20, 5), (30, 4), (34, 3), (1000, 3), (8333, 3),
                                              (10_000, 2), (30_000, 1)])
def test_epochs_are_learned_from_the_number_of_rows(rows, epochs):
    learned, why = learned_epochs(rows)
    assert learned == epochs and f"{rows} rows" in why


def test_configured_epochs_and_max_steps_win_and_the_plan_says_what_bounds_it():
    plan = plan_training(500, 125, TrainingConfig())
    assert (plan.epochs, plan.steps, plan.limited_by) == (3, 375, "epochs") and plan.epochs_from.startswith("learned")
    plan = plan_training(500, 125, TrainingConfig(epochs=0.5))
    assert (plan.steps, plan.epochs_from) == (63, "configured")
    plan = plan_training(500, 125, TrainingConfig(max_steps=32))
    assert (plan.steps, plan.limited_by) == (32, "max_steps")
    assert "32 steps (max_steps): 3 epochs (learned: 500 rows, 3 epochs) of 125 steps" in plan.describe()


def test_the_time_budget_cuts_the_steps_to_what_fits_and_a_later_measurement_can_restore_them():
    planned = plan_training(500, 125, TrainingConfig())
    cut = fit_time_budget(planned, planned, seconds_per_step=6.0, budget_minutes=5, done=PROBE_STEPS)
    assert (cut.steps, cut.limited_by, cut.seconds_per_step) == (50, "time_budget", 6.0)
    faster = fit_time_budget(cut, planned, seconds_per_step=3.0, budget_minutes=5, done=24)
    assert (faster.steps, faster.limited_by) == (100, "time_budget")
    assert fit_time_budget(cut, planned, 0.1, 5, 24) == replace(planned, seconds_per_step=0.1), "budget not reached"
    assert fit_time_budget(planned, planned, 600.0, 5, PROBE_STEPS).steps == PROBE_STEPS, "never below the done steps"
    assert fit_time_budget(planned, planned, 6.0, None, PROBE_STEPS).steps == 375


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_the_learning_rate_warms_up_and_decays_to_zero_at_the_planned_end(schedule):
    factors = [learning_rate_factor(step, 4, 50, schedule) for step in range(51)]
    assert factors[:5] == [0.0, 0.25, 0.5, 0.75, 1.0]
    decaying = factors[4:]
    assert factors[-1] == pytest.approx(0.0, abs=1e-12) and decaying == sorted(decaying, reverse=True)
    assert learning_rate_factor(10, 4, 50, "constant") == 1.0
    assert learning_rate_factor(0, 4, 2, schedule) == 0.0 and learning_rate_factor(1, 4, 2, schedule) == 1.0


def test_a_run_stops_at_its_time_budget_and_records_its_plan(tmp_path, smoke_base_models):
    # 48 rows learn 3 epochs (36 steps); a budget of a hundredth of a second lets no more than the probe run.
    job = training_job(tmp_path, smoke_base_models, max_steps=None, time_budget_minutes=0.0002, checkpoint_every=0)
    result = run_training(job)
    plan = load_training_result(tmp_path / "adapter").plan
    assert plan["limited_by"] == "time_budget" and plan["seconds_per_step"] > 0
    assert plan["epochs"] == 3 and plan["epochs_from"].startswith("learned: 48 rows")
    assert result.steps == plan["steps"] == max(PROBE_STEPS, math.floor(0.0002 * 60 / plan["seconds_per_step"]))
    assert len(result.train_loss_curve) == result.steps


def test_rows_whose_summary_cannot_fit_are_left_out_and_said(tmp_path, smoke_base_models):
    job = training_job(tmp_path, smoke_base_models, max_steps=2, checkpoint_every=0)
    train = [json.loads(line) for line in Path(job.train_path).read_text().splitlines()]
    train[0]["summary"] = " ".join(["alpha beta gamma"] * 60)  # ~180 tokens, over the smoke max_seq_len of 128
    Path(job.train_path).write_text("".join(json.dumps(row) + "\n" for row in train))
    lines: list[str] = []
    run_training(job, [LogReporter(lines.append)])
    assert any(line.startswith("left out 1 of 48 rows whose summary does not fit training.max_seq_len=128")
               and "r0" in line for line in lines), lines
    assert any("training 47 rows" in line for line in lines)

    for row in train:
        row["summary"] = train[0]["summary"]
    Path(job.train_path).write_text("".join(json.dumps(row) + "\n" for row in train))
    with pytest.raises(TrainingConfigError, match="no training row's summary fits training.max_seq_len=128"):
        run_training(job)

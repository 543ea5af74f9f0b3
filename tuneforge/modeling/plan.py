"""How long to train: epochs learned from the dataset's size, optimizer steps from the epochs, and a time budget
that shortens the plan once the first steps have been timed.

Epochs follow OpenAI's fine-tuning defaults (the "chat fine-tuning data preparation" cookbook): 3 epochs, more
for a small dataset so that at least ``MIN_TARGET_EXAMPLES`` rows are seen (up to 25 epochs), fewer for a large one
so that about ``MAX_TARGET_EXAMPLES`` are (at least one epoch). ``training.epochs`` and ``training.max_steps``
override it; ``training.time_budget_minutes`` caps whatever results. The learning-rate schedule follows the plan,
so a budget-shortened run still warms up and decays fully.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from tuneforge.profiles import TrainingConfig

TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25
# The budget is fitted after PROBE_STEPS steps, and again after 4 x PROBE_STEPS on the longer measurement; the first
# step (allocation, cold caches) is never timed.
PROBE_STEPS = 6
REFIT_AT = (PROBE_STEPS, 4 * PROBE_STEPS)


@dataclass(frozen=True)
class TrainingPlan:
    rows: int
    steps_per_epoch: int
    epochs: float
    epochs_from: str  # "configured", or the rule that learned them
    steps: int
    limited_by: str  # "epochs", "max_steps" or "time_budget"
    seconds_per_step: float | None = None  # measured on the first steps, when a time budget applies

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        text = (f"{self.steps} steps ({self.limited_by}): {self.epochs:g} epochs ({self.epochs_from}) of "
                f"{self.steps_per_epoch} steps over {self.rows} rows")
        if self.seconds_per_step is not None:
            text += f", {self.seconds_per_step:.2f} s per step measured"
        return text


def learned_epochs(rows: int) -> tuple[float, str]:
    """Epochs for a dataset of ``rows`` training rows, and the rule that chose them."""
    if rows * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        epochs = min(MAX_DEFAULT_EPOCHS, math.ceil(MIN_TARGET_EXAMPLES / max(rows, 1)))
        return epochs, f"learned: {rows} rows, at least {MIN_TARGET_EXAMPLES} rows seen"
    if rows * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        epochs = max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // rows)
        return epochs, f"learned: {rows} rows, about {MAX_TARGET_EXAMPLES} rows seen"
    return TARGET_EPOCHS, f"learned: {rows} rows, {TARGET_EPOCHS} epochs"


def plan_training(rows: int, steps_per_epoch: int, config: TrainingConfig) -> TrainingPlan:
    """The plan before any step has run: epochs (configured or learned), capped by ``max_steps``."""
    if config.epochs is not None:
        epochs, epochs_from = config.epochs, "configured"
    else:
        epochs, epochs_from = learned_epochs(rows)
    steps, limited_by = max(1, math.ceil(epochs * steps_per_epoch)), "epochs"
    if config.max_steps is not None and config.max_steps < steps:
        steps, limited_by = config.max_steps, "max_steps"
    return TrainingPlan(rows, steps_per_epoch, epochs, epochs_from, steps, limited_by)


def fit_time_budget(
    plan: TrainingPlan, planned: TrainingPlan, seconds_per_step: float, budget_minutes: float | None, done: int
) -> TrainingPlan:
    """``plan`` with the steps that fit ``budget_minutes`` at the measured speed, never more than ``planned`` (the
    plan before any budget) gives and never fewer than the ``done`` steps."""
    plan = replace(plan, seconds_per_step=round(seconds_per_step, 4))
    if budget_minutes is None or seconds_per_step <= 0:
        return plan
    affordable = max(done, math.floor(budget_minutes * 60 / seconds_per_step))
    if affordable < planned.steps:
        return replace(plan, steps=affordable, limited_by="time_budget")
    return replace(plan, steps=planned.steps, limited_by=planned.limited_by)


def learning_rate_factor(step: int, warmup_steps: int, total_steps: int, schedule: str) -> float:
    """Multiplier of the peak learning rate at ``step`` (transformers' warmup-then-decay schedules, with the total
    read at every step so that a plan shortened by the budget still decays to zero)."""
    warmup = min(warmup_steps, max(total_steps - 1, 0))
    if step < warmup:
        return step / max(1, warmup)
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    if schedule == "linear":
        return max(0.0, 1.0 - progress)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))

"""The loss curve of a training run as a small PNG: train loss per step (smoothed when noisy) and validation points.

Drawn in the house style of ``tuneforge.evaluation.charts`` (``matplotlib.figure.Figure`` only, never pyplot; PNG
metadata without a version stamp, so the same curves give the same bytes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.figure import Figure

from tuneforge.evaluation.charts import DPI, MODEL_COLOURS, WIDTH_INCHES, empty_chart, png_bytes
from tuneforge.evaluation.render import Image, markdown_text

TRAIN_COLOUR = MODEL_COLOURS["base"]
VALIDATION_COLOUR = MODEL_COLOURS["champion"]
SMOOTHING = 0.6  # exponential moving average weight, as TensorBoard's slider
SMOOTH_FROM_POINTS = 20  # fewer train points than this are drawn as they are
ALT_TEXT = "Training loss per step (smoothed) and validation loss"

Curve = Sequence[tuple[int, float]]


def loss_curve_png(train_curve: Curve, validation_curve: Curve) -> bytes:
    """A 700x300 PNG of the train loss line and the validation points; non-finite losses are left out."""
    train = finite_points(checked_curve(train_curve, "train_curve"))
    validation = finite_points(checked_curve(validation_curve, "validation_curve"))
    figure = Figure(figsize=(WIDTH_INCHES, 3.0), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    if not train and not validation:
        return empty_chart(figure, axes, "no losses recorded")
    if train:
        steps = [step for step, _ in train]
        losses = [loss for _, loss in train]
        if len(train) >= SMOOTH_FROM_POINTS:
            axes.plot(steps, losses, color=TRAIN_COLOUR, alpha=0.25, linewidth=1.0)
            axes.plot(steps, smoothed(losses), color=TRAIN_COLOUR, linewidth=1.6, label="train (smoothed)")
        else:
            axes.plot(steps, losses, color=TRAIN_COLOUR, linewidth=1.6, marker="." if len(train) < 2 else None,
                      label="train")
    if validation:
        axes.plot([step for step, _ in validation], [loss for _, loss in validation], color=VALIDATION_COLOUR,
                  linestyle="--", linewidth=1.0, marker="o", markersize=5, label="validation")
        best_step, best_loss = min(validation, key=lambda point: point[1])
        all_steps = [step for step, _ in train + validation]
        towards_end = best_step > (min(all_steps) + max(all_steps)) / 2  # keep the label inside the axes
        axes.annotate(f"best {best_loss:.3f}", (best_step, best_loss), textcoords="offset points", xytext=(0, -14),
                      ha="right" if towards_end else "left", fontsize=8, color=VALIDATION_COLOUR)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title("Loss per step", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right", fontsize=8, frameon=False)
    return png_bytes(figure)


def loss_curve_markdown(train_curve: Curve, validation_curve: Curve) -> str:
    """The loss curve as a Markdown image (a base64 data URI), with a one-line summary of the figures under it."""
    image = Image(ALT_TEXT, loss_curve_png(train_curve, validation_curve))
    lines = [f"![{markdown_text(image.alt)}]({image.data_uri})"]
    summary = loss_summary(finite_points(checked_curve(train_curve, "train_curve")),
                           finite_points(checked_curve(validation_curve, "validation_curve")))
    if summary:
        lines += ["", markdown_text(summary)]
    return "\n".join(lines) + "\n"


def loss_summary(train: Curve, validation: Curve) -> str:
    parts = []
    if train:
        first, last = train[0], train[-1]
        parts.append(f"train loss {first[1]:.4f} at step {first[0]} -> {last[1]:.4f} at step {last[0]}")
    if validation:
        best_step, best_loss = min(validation, key=lambda point: point[1])
        parts.append(f"validation loss {validation[-1][1]:.4f} at step {validation[-1][0]}, "
                     f"best {best_loss:.4f} at step {best_step}")
    return "; ".join(parts)


def smoothed(values: Sequence[float], weight: float = SMOOTHING) -> list[float]:
    """Debiased exponential moving average, so the first points are not pulled towards zero."""
    average, result = 0.0, []
    for count, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        result.append(average / (1 - weight**count))
    return result


def checked_curve(curve: Curve, name: str) -> list[tuple[int, float]]:
    """(step, loss) pairs as ints and floats, sorted by step; a malformed point is an error naming it."""
    points = []
    for index, point in enumerate(curve):
        try:
            step, loss = point
            points.append((int(step), float(loss)))
        except (TypeError, ValueError):
            raise ValueError(f"{name}[{index}] must be a (step, loss) pair of numbers, got {point!r}") from None
    return sorted(points, key=lambda point: point[0])


def finite_points(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    return [(step, loss) for step, loss in points if math.isfinite(loss)]

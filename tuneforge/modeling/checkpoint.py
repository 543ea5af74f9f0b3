"""Resumable training checkpoints: one directory per step, written atomically, the newest few kept.

A checkpoint holds the trainable (LoRA) weights, the optimizer and schedule, every process's random state and the
loop's own counters, so a resumed run continues exactly where the killed one stopped.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from tuneforge.atomic import atomic_directory

PREFIX = "step-"
STATE_FILE = "state.pt"


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"{PREFIX}{step:07d}"


def save_checkpoint(directory: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write ``state`` for ``step`` (a crash mid-write leaves only a hidden staging dir), then prune old ones."""
    target = checkpoint_path(directory, step)
    with atomic_directory(target) as staging:
        torch.save(state, staging / STATE_FILE)
    for old in list_checkpoints(directory)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def list_checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.glob(f"{PREFIX}*") if (path / STATE_FILE).is_file())


def load_latest_checkpoint(directory: Path) -> dict[str, Any] | None:
    """The newest readable checkpoint's state, or None when there is none."""
    for path in reversed(list_checkpoints(directory)):
        try:
            # Our own files; they hold Python and NumPy random states, which weights_only refuses.
            return torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)
        except (OSError, RuntimeError, EOFError):
            continue  # unreadable (disk trouble): fall back to the previous one
    return None


def remove_checkpoints(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)

"""A small training job on the smoke profile's tiny model: words the model can learn, documents of many lengths."""

import json
from pathlib import Path

from tuneforge.modeling.records import TrainingJob
from tuneforge.profiles import load_profile

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu"]


def rows(count: int, offset: int) -> list[dict]:
    made = []
    for i in range(count):
        document = " ".join(WORDS[(i + j) % 12] for j in range(20 + (i * 7) % 60))
        rid = f"r{offset + i}"
        made.append({"id": rid, "group": rid, "source": "s", "document": document,
                     "summary": " ".join(WORDS[i % 12 : i % 12 + 3])})
    return made


def training_job(tmp_path: Path, smoke_base_models: Path, **overrides) -> TrainingJob:
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name, count, offset in (("train", 48, 0), ("validation", 8, 100)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows(count, offset)))
    config = load_profile("smoke").training.model_dump() | overrides
    return TrainingJob(str(next(smoke_base_models.iterdir())), str(tmp_path / "train.jsonl"),
                       str(tmp_path / "validation.jsonl"), {"s": "Summarize."}, config,
                       str(tmp_path / "adapter"), str(tmp_path / "checkpoints"))

"""The effect of the no-repeat decoding guard on an adapter's outputs: degenerate outputs and ROUGE-L with the guard
off and on, on the same fixed test sample, in one run.

``python -m bench.decoding_guard WORKSPACE [--ngram 3 4]`` takes a workspace that ``tuneforge run`` (or
``bench/new_corpora.py``) has trained and evaluated: its newest adapter, its curated test split and the evaluation
settings of its profile (the learned generation budget included). The base model is scored too, with the guard
off, as the reference a guard must not hide. Prints one table, and writes it to ``<WORKSPACE>/decoding_guard.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tuneforge.corpus.records import read_examples
from tuneforge.evaluation.budget import resolve_generation_budget, with_budget
from tuneforge.evaluation.report import ModelUnderTest, evaluate
from tuneforge.layout import Layout
from tuneforge.modeling.records import load_training_result
from tuneforge.project import load_project


def newest_adapter(layout: Layout) -> Path:
    trained = [path for path in layout.adapters.iterdir() if load_training_result(path) is not None]
    if not trained:
        raise SystemExit(f"no trained adapter under {layout.adapters}: run `tuneforge run` in the workspace first")
    return max(trained, key=lambda path: path.stat().st_mtime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--ngram", type=int, nargs="+", default=[3], help="guard sizes to try (default: 3)")
    args = parser.parse_args()
    layout = Layout(args.workspace.resolve())
    profile = load_project(layout.root).profile
    adapter = newest_adapter(layout)
    instructions = load_training_result(adapter).instructions
    base_dir = next(path for path in layout.base_models.iterdir() if (path / "config.json").is_file())
    budget = resolve_generation_budget(profile.evaluation, base_dir, layout.curated / "train.jsonl")
    config = with_budget(profile.evaluation, budget)
    test_rows = read_examples(layout.curated / "test.jsonl")

    rows = []
    for ngram in [0, *args.ngram]:
        decoding = config.decoding.model_copy(update={"no_repeat_ngram_size": ngram})
        models = [ModelUnderTest("candidate", adapter, instructions)]
        if ngram == 0:
            models.insert(0, ModelUnderTest("base", None, instructions))
        started = time.perf_counter()
        report = evaluate(base_dir, models, test_rows, config.model_copy(update={"decoding": decoding}),
                          log=lambda line: None)
        seconds = time.perf_counter() - started
        for label in [m.label for m in models]:
            scores = report.models[label]
            rows.append({"model": label, "no_repeat_ngram_size": ngram, "rougeL": round(scores.scores["rougeL"], 2),
                         "interval": [round(v, 2) for v in scores.intervals["rougeL"]],
                         "degenerate": scores.degenerate, "seconds": round(seconds, 1)})
    print(f"{layout.root.name}: adapter {adapter.name}, {len(report.ids)} test rows, at most "
          f"{budget.max_new_tokens} new tokens, greedy, {config.precision}")
    print("| model | no_repeat_ngram_size | ROUGE-L [95% CI] | degenerate | repetitive | cut at the budget |")
    print("|---|---:|---|---:|---:|---:|")
    for row in rows:
        low, high = row["interval"]
        rates = row["degenerate"]
        print(f"| {row['model']} | {row['no_repeat_ngram_size'] or 'off'} | {row['rougeL']:.2f} [{low:.2f}, "
              f"{high:.2f}] | {rates['any']:.1%} | {rates['repetitive']:.1%} | {rates['truncated']:.1%} |")
    (layout.root / "decoding_guard.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

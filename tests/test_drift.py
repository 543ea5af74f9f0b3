"""Drift of raw data against the training data, on constructed corpora, and the monitoring assets in Dagster."""

import json
import random
from pathlib import Path

import dagster as dg
import pytest

from tuneforge.corpus.records import Example, write_jsonl
from tuneforge.monitoring.drift import DriftConfig, DriftInputError, measure_drift, render_markdown

SCIENCE_TEXT = (
    "the model results show that our method improves performance on the task we propose a new approach for "
    "learning representations from text data and evaluate it on several benchmark datasets experiments "
    "demonstrate that the proposed system outperforms strong baselines in accuracy and efficiency we also "
    "analyze errors and discuss limitations of this work in future research language translation parsing "
    "training neural network attention layer corpus annotation sentence document summary evaluation metric "
    "human judgment baseline transfer domain adaptation retrieval question answering dialogue generation"
)
COOKING_TEXT = (
    "preheat oven butter flour sugar whisk eggs until fluffy fold gently bake golden crust simmer sauce garlic "
    "onion chop finely sprinkle salt pepper drizzle olive oil roast vegetables knead dough rise overnight glaze "
    "caramelize shallots braise lamb shoulder marinate chicken thighs lemon zest thyme rosemary basil parsley "
    "cinnamon nutmeg vanilla custard pastry tart skillet saucepan ladle spatula colander"
)
SCIENCE, COOKING = SCIENCE_TEXT.split(), COOKING_TEXT.split()
GERMAN = [
    "Die Forscher haben ein neues Verfahren entwickelt, das die Übersetzung von Texten deutlich verbessert.",
    "In dieser Arbeit untersuchen wir, wie sich die Größe der Trainingsdaten auf die Qualität des Modells auswirkt.",
    "Die Ergebnisse zeigen, dass unser Ansatz auf allen Datensätzen besser abschneidet als die bisherigen Methoden.",
    "Wir beschreiben zunächst die Daten und erklären danach, wie das System aufgebaut ist.",
    "Außerdem diskutieren wir die Grenzen der Methode und mögliche Erweiterungen für zukünftige Arbeiten.",
    "Die Auswertung erfolgte durch drei unabhängige Gutachter, die jeden Satz einzeln bewertet haben.",
    "Es ist bemerkenswert, dass das kleine Modell fast genauso gut ist wie das große.",
    "Für die Experimente verwenden wir Zeitungsartikel, die zwischen den Jahren gesammelt wurden.",
]


def english(rng: random.Random, vocabulary: list[str], words: int) -> str:
    # Zipf-like: early words of the list are frequent, as function and topic words are in real text.
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    chosen = rng.choices(vocabulary, weights=weights, k=words)
    sentences = [" ".join(chosen[i: i + 12]).capitalize() + "." for i in range(0, words, 12)]
    return " ".join(sentences)


def german(rng: random.Random, words: int) -> str:
    text: list[str] = []
    while sum(len(sentence.split()) for sentence in text) < words:
        text.append(rng.choice(GERMAN))
    return " ".join(text)


def documents(seed: int, count: int, mean_words: int = 150, vocabulary: list[str] = SCIENCE,
              language: str = "en") -> list[str]:
    rng = random.Random(seed)
    lengths = [max(30, int(rng.gauss(mean_words, mean_words / 5))) for _ in range(count)]
    if language == "de":
        return [german(rng, length) for length in lengths]
    return [english(rng, vocabulary, length) for length in lengths]


def write_training(root: Path, sources: dict[str, list[str]]) -> Path:
    rows = [Example(id=f"{source}/train-{i}", source=source, group=f"{source}/train-{i}", document=document,
                    summary="A short summary of the text.", language="en")
            for source, texts in sources.items() for i, document in enumerate(texts)]
    path = root / "data" / "curated" / "train.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(path, rows)
    return path


def write_raw(root: Path, source: str, texts: list[str]) -> Path:
    directory = root / "data" / "raw" / source
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "part-0.jsonl").open("w", encoding="utf-8") as handle:
        for i, document in enumerate(texts):
            handle.write(json.dumps({"id": f"new-{i}", "document": document, "summary": "A summary."}) + "\n")
    return directory.parent


def drifted(report, source: str = "all") -> set[str]:
    measures = report.measures if source == "all" else report.sources[source].measures
    return {measure.name for measure in measures if measure.drifted}


# --- drift on constructed data ----------------------------------------------------------------------------------


def test_the_same_distribution_does_not_drift(tmp_path):
    train = write_training(tmp_path, {"papers": documents(seed=1, count=200)})
    raw = write_raw(tmp_path, "papers", documents(seed=2, count=150))
    report = measure_drift(raw, train)
    assert not report.drifted, render_markdown(report)
    assert report.training_rows == 200 and report.raw_rows == 150 and report.raw_sampled == 150
    assert report.sources["papers"].reference == "training rows of this source"
    assert report.languages["raw"] == {"en": 1.0}
    oov = report.measure("oov_rate")
    assert oov.value < 0.01 and oov.baseline is not None and oov.threshold == pytest.approx(oov.baseline + 0.05)
    assert "No drift beyond thresholds" in render_markdown(report)


def test_much_longer_documents_drift_in_length_only(tmp_path):
    train = write_training(tmp_path, {"papers": documents(seed=1, count=200)})
    raw = write_raw(tmp_path, "papers", documents(seed=2, count=150, mean_words=600))
    report = measure_drift(raw, train)
    assert drifted(report) == {"length_ks", "length_psi"}
    assert drifted(report, "papers") == {"length_ks", "length_psi"}
    assert report.measure("length_ks").value > 0.8 and report.measure("length_psi").value > 1.0
    assert report.drifted and "length_ks" in report.drifted_measures()
    assert "| length_psi |" in render_markdown(report)


def test_a_new_vocabulary_drifts_in_oov_rate_and_unigram_divergence(tmp_path):
    train = write_training(tmp_path, {"papers": documents(seed=1, count=200)})
    raw = write_raw(tmp_path, "recipes", documents(seed=2, count=150, vocabulary=COOKING))
    report = measure_drift(raw, train)
    assert {"oov_rate", "unigram_js"} <= drifted(report)
    assert not {"length_ks", "length_psi"} & drifted(report)
    assert report.measure("oov_rate").value > 0.9 and report.measure("unigram_js").value > 0.5
    assert report.sources["recipes"].reference == "all training rows (a new source)"


def test_another_language_drifts_in_language_mix_for_its_source(tmp_path):
    train = write_training(tmp_path, {"papers": documents(seed=1, count=200)})
    write_raw(tmp_path, "papers", documents(seed=2, count=150))
    raw = write_raw(tmp_path, "papiere", documents(seed=3, count=60, language="de"))
    report = measure_drift(raw, train)
    assert report.sources["papiere"].languages == {"de": 1.0}
    german_measures = {m.name: m for m in report.sources["papiere"].measures}
    assert german_measures["language_tvd"].drifted and german_measures["language_tvd"].value == pytest.approx(1.0)
    assert not report.sources["papers"].drifted
    assert report.languages["raw"]["de"] == pytest.approx(60 / 210, abs=0.01)
    assert report.measure("language_tvd").drifted  # 29% German overall, above the 0.1 threshold
    assert "papiere: language_tvd" in report.drifted_measures()


def test_sampling_is_capped_and_does_not_depend_on_file_order(tmp_path):
    texts = documents(seed=2, count=120)
    train = write_training(tmp_path, {"papers": documents(seed=1, count=200)})
    raw = write_raw(tmp_path, "papers", texts)
    config = DriftConfig(max_rows=50)
    first = measure_drift(raw, train, config)
    lines = (raw / "papers" / "part-0.jsonl").read_text().splitlines()
    (raw / "papers" / "part-0.jsonl").write_text("\n".join(reversed(lines)) + "\n")
    second = measure_drift(raw, train, config)
    assert first.raw_sampled == 50 and first.training_sampled == 50 and first.raw_rows == 120
    assert first.as_dict() == second.as_dict()


def test_small_sources_are_not_judged_and_unreadable_records_are_counted(tmp_path):
    train = write_training(tmp_path, {"papers": documents(seed=1, count=200)})
    raw = write_raw(tmp_path, "papers", documents(seed=2, count=150))
    write_raw(tmp_path, "tiny", documents(seed=4, count=5, mean_words=900))
    with (raw / "tiny" / "part-0.jsonl").open("a") as handle:
        handle.write("{broken\n")
    report = measure_drift(raw, train)
    tiny = report.sources["tiny"]
    assert tiny.records == 5 and tiny.unreadable == 1 and not tiny.drifted
    assert all(m.value is None and "too few rows" in m.detail for m in tiny.measures)


def test_missing_inputs_and_bad_settings_name_what_to_do(tmp_path):
    with pytest.raises(ValueError, match=r"max_rows \(10\) must be at least min_rows \(20\)"):
        DriftConfig(max_rows=10)
    raw = write_raw(tmp_path, "papers", documents(seed=2, count=30))
    with pytest.raises(DriftInputError, match="materialize curated_dataset"):
        measure_drift(raw, tmp_path / "data" / "curated" / "train.jsonl")
    train = write_training(tmp_path, {"papers": documents(seed=1, count=30)})
    with pytest.raises(DriftInputError, match="no raw data"):
        measure_drift(tmp_path / "elsewhere", train)


# --- the monitoring assets in Dagster ---------------------------------------------------------------------------


def monitoring_resources() -> dict:
    from resources import ModelRegistry, Workspace

    return {"workspace": Workspace(), "registry": ModelRegistry()}


def check_evaluation(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_raw_data_drift_asset_and_its_warning_check(workspace):
    from stages.monitoring.assets import DRIFT_CHECK, raw_data_drift

    write_training(workspace, {"papers": documents(seed=1, count=200)})
    write_raw(workspace, "papers", documents(seed=2, count=150))
    with dg.DagsterInstance.get() as instance:
        calm = dg.materialize([raw_data_drift], instance=instance, resources=monitoring_resources())
        assert calm.success
        evaluation = check_evaluation(calm)
        assert evaluation.check_name == DRIFT_CHECK and evaluation.passed

        write_raw(workspace, "papers", documents(seed=2, count=150, mean_words=600))
        stormy = dg.materialize([raw_data_drift], instance=instance, resources=monitoring_resources())
        assert stormy.success  # the check warns: it does not fail the run
        evaluation = check_evaluation(stormy)
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
        figures = {key: value.value for key, value in evaluation.metadata.items()}
        assert "length_ks" in figures["drifted_measures"] and figures["length_ks"] > 0.8
        assert figures["length_ks_threshold"] == 0.2

        (materialization,) = stormy.asset_materializations_for_node("raw_data_drift")
        metadata = {key: value.value for key, value in materialization.metadata.items()}
        assert metadata["drifted"] is True
        assert "| length_ks |" in metadata["measures"] and metadata["raw_rows"] == 150


def promote_untrained_champion(root: Path) -> None:
    """Version 1 of the registry: a zero-initialized LoRA adapter on the smoke base model (so its merged export is
    the base model itself), recorded as having scored 40 [35, 45] ROUGE-L."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from resources import ModelRegistry
    from tuneforge.layout import Layout
    from tuneforge.modeling.base import resolve_base_model
    from tuneforge.profiles import load_profile
    from tuneforge.registry import Candidate

    layout = Layout(root)
    snapshot = resolve_base_model(load_profile("smoke").base_model, layout.base_models)
    export_dir, adapter_dir = layout.exports / "untrained", layout.adapters / "untrained"
    model = AutoModelForCausalLM.from_pretrained(snapshot.path)
    model.save_pretrained(export_dir)
    AutoTokenizer.from_pretrained(snapshot.path).save_pretrained(export_dir)
    get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules="all-linear")).save_pretrained(adapter_dir)
    ModelRegistry().open().promote(
        Candidate(adapter_dir=adapter_dir, export_dir=export_dir,
                  params={"fingerprint": "untrained", "papers": "Summarize the paper in one sentence."},
                  metrics={"candidate_rougeL": 40.0, "candidate_rougeL_low": 35.0, "candidate_rougeL_high": 45.0},
                  tags={"base_sha256": snapshot.sha256, "rougeL": "40.0"}),
        expected_champion=None,
    )


def champion_monitor_metadata() -> dict:
    from stages.monitoring.assets import champion_monitor

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([champion_monitor], resources=monitoring_resources(), instance=instance)
    (materialization,) = result.asset_materializations_for_node("champion_monitor")
    return {key: value.value for key, value in materialization.metadata.items()}


def test_champion_monitor_says_when_there_is_no_champion_and_re_evaluates_the_champion(workspace):
    import shutil

    from resources import ModelRegistry
    from tuneforge.layout import Layout
    from tuneforge.monitoring.champion_check import EVALUATED, check_champion
    from tuneforge.profiles import load_profile

    test_rows = [Example(id=f"papers/test-{i}", source="papers", group=f"test-{i}", document=document,
                         summary="The method improves performance on the task.")
                 for i, document in enumerate(documents(seed=5, count=6, mean_words=60))]
    write_jsonl(workspace / "data" / "curated" / "test.jsonl", test_rows)
    nothing = champion_monitor_metadata()
    assert nothing["status"] == "no champion" and "nothing has been promoted" in nothing["summary"]
    assert "score" not in nothing

    promote_untrained_champion(workspace)
    metadata = champion_monitor_metadata()
    assert metadata["status"] == EVALUATED and metadata["champion_version"] == "1"
    assert "merged export" in metadata["evaluated"] and metadata["test_rows"] == 6
    assert (metadata["recorded_score"], metadata["recorded_low"], metadata["recorded_high"]) == (40.0, 35.0, 45.0)
    # An untrained tiny model cannot reach its recorded 40 ROUGE-L: the monitor says it fell below.
    assert metadata["score_low"] <= metadata["score"] <= metadata["score_high"] < 35.0
    assert metadata["below_recorded"] is True and "below the recorded interval" in metadata["summary"]
    assert "| champion | rougeL |" in metadata["scores"] and "| lead | rougeL |" in metadata["scores"]

    # Without the export, the adapter on its base snapshot is evaluated: the same weights, the same scores.
    shutil.rmtree(Layout(workspace).exports / "untrained")
    check = check_champion(ModelRegistry().open(), Layout(workspace), load_profile("smoke"), log=lambda _: None)
    assert check.status == EVALUATED and check.evaluated.startswith("adapter ")
    assert check.score == (metadata["score"], metadata["score_low"], metadata["score_high"])

"""Instructions as versioned prompts (a real MLflow prompt registry), varied by experiments, and scored as
zero-shot prompt variants of the base model beside the adapter."""

import json

import pytest

from resources.registry import ModelRegistry
from tuneforge.experiments import ExperimentsError, load_experiments
from tuneforge.prompt_registry import CHAMPION_ALIAS, prompt_name
from tuneforge.registry import Candidate, prompts_of


def _candidate(layout, name: str, prompts: dict[str, str]) -> Candidate:
    adapter, export = layout.adapters / name, layout.exports / name
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    export.mkdir(parents=True)
    (export / "config.json").write_text("{}")
    return Candidate(adapter, export, params={"fingerprint": name}, prompts=prompts)


def test_an_instruction_is_a_new_prompt_version_only_when_its_text_changes(workspace):
    registry = ModelRegistry().open()
    first = registry.register_prompts({"papers": "Summarize the paper.", "notes.v2": "Summarize the note."})
    assert first == {"papers": "prompts:/tuneforge-papers/1", "notes.v2": "prompts:/tuneforge-notes.v2/1"}
    assert registry.register_prompts({"papers": "Summarize the paper."}) == {"papers": "prompts:/tuneforge-papers/1"}
    changed = registry.register_prompts({"papers": "In one sentence, summarize the paper."})
    assert changed == {"papers": "prompts:/tuneforge-papers/2"}
    prompt = registry.client.load_prompt("prompts:/tuneforge-papers/2")
    assert prompt.template == "In one sentence, summarize the paper.\n\n{{document}}"
    assert prompt.format(document="Text.") == "In one sentence, summarize the paper.\n\nText."
    assert prompt.tags["source"] == "papers"


def test_the_champion_alias_follows_promotion_and_rollback(workspace):
    registry = ModelRegistry().open()
    old = registry.register_prompts({"papers": "Summarize."})
    first = registry.promote(_candidate(registry.layout, "a", old), expected_champion=None)
    new = registry.register_prompts({"papers": "Summarize in one sentence."})
    registry.promote(_candidate(registry.layout, "b", new), expected_champion=first)

    def champion_prompt() -> int:
        return int(registry.client.load_prompt(f"prompts:/{prompt_name('papers')}@{CHAMPION_ALIAS}").version)

    assert champion_prompt() == 2 and prompts_of(registry.champion()) == new
    registry.rollback()
    assert champion_prompt() == 1 and prompts_of(registry.champion()) == old


def test_the_training_run_links_the_prompt_versions_it_used(workspace):
    registry = ModelRegistry().open()
    experiment = registry.client.create_experiment("training")
    run = registry.client.create_run(experiment)
    uris = registry.register_prompts({"papers": "Summarize."}, run_id=run.info.run_id)
    linked = json.loads(registry.client.get_run(run.info.run_id).data.tags["mlflow.linkedPrompts"])
    assert [(entry["name"], str(entry["version"])) for entry in linked] == [("tuneforge-papers", "1")]
    assert uris == {"papers": "prompts:/tuneforge-papers/1"}


def test_an_experiment_may_vary_the_instruction(tmp_path):
    path = tmp_path / "experiments.yaml"
    path.write_text("experiments:\n  baseline: {}\n  terse:\n    instruction: Summarize in ten words.\n"
                    "    instructions: {notes: Summarize the visit.}\n")
    terse, baseline = load_experiments(path)["terse"], load_experiments(path)["baseline"]
    assert terse.instruction_for("papers", "Summarize.") == "Summarize in ten words."
    assert terse.instruction_for("notes", "Summarize.") == "Summarize the visit."
    assert baseline.instruction_for("papers", "Summarize.") == "Summarize."


@pytest.mark.parametrize(("entry", "match"), [
    ("instruction: ''", "'instruction' must be a non-empty string"),
    ("instructions: [a]", "'instructions' must map source names"),
    ("prompt: x", r"only description, training, instruction, instructions are allowed, found \['prompt'\]"),
])
def test_bad_experiment_instructions_name_the_experiment(tmp_path, entry, match):
    path = tmp_path / "experiments.yaml"
    path.write_text(f"experiments:\n  terse:\n    {entry}\n")
    with pytest.raises(ExperimentsError, match=r"experiment 'terse': " + match):
        load_experiments(path)


def test_prompt_variants_are_scored_beside_the_adapter_and_compared_with_it():
    from test_promotion_gate import BASE, _model, _report, _shifted

    from tuneforge.evaluation.summary import mlflow_metrics

    report = _report(base=_model("base", BASE), **{"base-terse": _model("base-terse", _shifted(BASE, 5))},
                     candidate=_model("candidate", _shifted(BASE, 6)))
    pairs = {(c.model, c.against) for c in report.comparisons if c.metric == "rougeL"}
    assert pairs == {("candidate", "base"), ("candidate", "base-terse")}
    assert "base-terse_rougeL_low" in mlflow_metrics(report), "a variant's label is a valid MLflow metric prefix"


def test_a_variant_instruction_wraps_or_replaces_each_source_instruction():
    from tuneforge.profiles import EvaluationConfig, variant_instructions

    instructions = {"papers": "Summarize the paper.", "notes": "Write the note."}
    assert variant_instructions("{instruction} Use at most 20 words.", instructions) == {
        "papers": "Summarize the paper. Use at most 20 words.", "notes": "Write the note. Use at most 20 words."}
    assert variant_instructions("TLDR:", instructions) == {"papers": "TLDR:", "notes": "TLDR:"}
    with pytest.raises(ValueError, match="prompt variant name 'Terse_1'"):
        EvaluationConfig(prompt_variants={"Terse_1": "x"})

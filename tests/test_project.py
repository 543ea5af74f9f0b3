"""The project file: tuneforge.yaml over the profile, environment variables over both, errors naming file and key."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from resources import Workspace
from tuneforge.project import PROJECT_FILE, ProjectFileError, load_project

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def root(tmp_path, monkeypatch):
    for variable in ("TUNEFORGE_PROFILE", "TUNEFORGE_EXECUTOR", "TUNEFORGE_SCHEDULE_TIMEZONE", "TUNEFORGE_PRECISION"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def write(root: Path, text: str) -> None:
    (root / PROJECT_FILE).write_text(text)


def test_without_a_project_file_the_profile_decides(root):
    project = load_project(root)
    assert project.profile_name == "demo" and project.profile.training.lora_rank == 16
    assert project.environment.executor == "local" and project.environment.schedule_timezone == "UTC"
    origins = {name: origin for name, _, origin in project.settings()}
    assert origins["training.lora_rank"] == "profile demo" and origins["environment.executor"] == "default"


def test_the_project_file_overrides_the_profile_field_by_field(root):
    write(root, "profile: smoke\ntraining:\n  lora_rank: 8\ninstructions:\n  tickets: Summarize the ticket.\n"
                "evaluation:\n  decoding:\n    repetition_penalty: 1.2\n")
    project = load_project(root)
    assert project.profile_name == "smoke" and project.profile.name == "smoke"
    training = project.profile.training
    assert training.lora_rank == 8 and training.max_steps == 24, "untouched fields keep the smoke profile's values"
    assert project.profile.instruction_for("tickets") == "Summarize the ticket."
    assert project.profile.instruction_for("aclsum-outcome").startswith("In one sentence"), "mappings are merged"
    assert project.profile.evaluation.decoding.repetition_penalty == 1.2
    assert project.profile.evaluation.decoding.strategy == "greedy"
    settings = {name: (value, origin) for name, value, origin in project.settings()}
    assert settings["training.lora_rank"] == (8, PROJECT_FILE)
    assert settings["training.max_steps"] == (24, "profile smoke")
    assert settings["profile"] == ("smoke", PROJECT_FILE)


def test_environment_variables_override_the_project_file(root, monkeypatch):
    write(root, "profile: demo\nenvironment:\n  executor: local\n  schedule_timezone: Europe/Paris\n")
    monkeypatch.setenv("TUNEFORGE_PROFILE", "smoke")
    monkeypatch.setenv("TUNEFORGE_EXECUTOR", "k8s")
    project = load_project(root)
    assert project.profile_name == "smoke" and project.environment.executor == "k8s"
    assert project.environment.schedule_timezone == "Europe/Paris"
    origins = {name: origin for name, _, origin in project.settings()}
    assert origins["profile"] == "$TUNEFORGE_PROFILE" and origins["environment.executor"] == "$TUNEFORGE_EXECUTOR"
    assert origins["environment.schedule_timezone"] == PROJECT_FILE
    assert load_project(root, profile="demo").profile_name == "demo", "an explicit resource setting outranks all"


@pytest.mark.parametrize(("text", "message"), [
    ("training:\n  lora_rnak: 8\n", "training.lora_rnak: unknown setting; known here: batch_size"),
    ("trainng:\n  lora_rank: 8\n", "trainng: unknown setting; known here: base_model, cleaning"),
    ("training:\n  lora_rank: 0\n", "training.lora_rank: Input should be greater than or equal to 1 (got 0)"),
    ("training: 3\n", "training: expected a mapping of settings, got 3"),
    ("environment:\n  executor: slurm\n", "environment.executor: Input should be 'local' or 'k8s' (got 'slurm')"),
    ("environment:\n  schedule_timezone: Mars/Olympus\n", "unknown time zone 'Mars/Olympus'"),
    ("environment:\n  gpus: 2\n", "environment.gpus: Extra inputs are not permitted"),
    ("profile: large\n", "unknown profile 'large' (from tuneforge.yaml); choose one of: demo, smoke"),
    ("- a list\n", "expected a mapping of settings at the top level, got list"),
    ("training: [\n", "is not valid YAML"),
])
def test_a_bad_project_file_fails_naming_the_file_and_the_key(root, text, message):
    write(root, text)
    with pytest.raises(ProjectFileError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        load_project(root)
    assert str(root / PROJECT_FILE) in str(caught.value) or "profile" in message


def test_the_workspace_resource_reads_the_project_file(root):
    write(root, "profile: smoke\ncleaning:\n  min_summary_words: 2\n")
    profile = Workspace(root=str(root)).load_profile()
    assert profile.name == "smoke" and profile.cleaning.min_summary_words == 2


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TUNEFORGE_ROOT": str(root)}
    for variable in ("TUNEFORGE_PROFILE", "TUNEFORGE_EXECUTOR", "TUNEFORGE_SCHEDULE_TIMEZONE", "TUNEFORGE_PRECISION"):
        env.pop(variable, None)
    return subprocess.run([str(Path(sys.executable).with_name("tuneforge")), *args], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.mark.slow
def test_tuneforge_config_prints_each_setting_with_its_origin(root):
    write(root, "training:\n  lora_rank: 4\n")
    shown = json.loads(_cli(root, "config", "training", "--json").stdout)
    assert shown["training.lora_rank"] == {"value": 4, "from": PROJECT_FILE}
    assert shown["training.learning_rate"] == {"value": 0.001, "from": "profile demo"}
    text = _cli(root, "config", "training.lora_rank").stdout
    assert "training.lora_rank  4  # tuneforge.yaml" in text
    write(root, "training:\n  lora_rank: -1\n")
    failed = _cli(root, "config")
    assert failed.returncode == 1 and "training.lora_rank: Input should be greater than or equal to 1" in failed.stderr


def test_the_code_location_takes_its_environment_from_the_project_file(root):
    write(root, "environment:\n  schedule_timezone: Europe/Berlin\n  compute:\n    mode: local\n    processes: 2\n")
    probe = ("from stages.definitions import defs; import json; r = defs.resources['compute']; "
             "zones = sorted({s.execution_timezone for s in defs.schedules}); "
             "print(json.dumps([r.mode, r.processes, str(defs.metadata['settings'].value), zones]))")
    env = {**os.environ, "TUNEFORGE_ROOT": str(root)}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    mode, processes, settings, zones = json.loads(done.stdout.strip().splitlines()[-1])
    assert (mode, processes) == ("local", 2)
    assert zones == ["Europe/Berlin"], "every schedule runs in the project's time zone"
    assert "| `environment.compute.processes` | `2` | tuneforge.yaml |" in settings

"""Any data version recorded in Dagster comes back byte for byte with `tuneforge data restore`, from the local DVC
cache or, once that is gone, from the remote."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from pipelines.cli import main
from resources import DataEngine, DvcRepository, Workspace
from stages.data.assets import cleaned_corpus, curated_dataset, raw_corpus
from tuneforge.corpus.aclsum import place_aclsum
from tuneforge.layout import Layout

TUNEFORGE = Path(sys.executable).with_name("tuneforge")
RESOURCES = {"workspace": Workspace(), "dvc": DvcRepository(), "data_engine": DataEngine()}
SOURCE = "aclsum-outcome"


def materialize_data(instance: dg.DagsterInstance, source: str) -> None:
    dg.materialize([raw_corpus, cleaned_corpus], partition_key=source, instance=instance, resources=RESOURCES)
    dg.materialize([curated_dataset], instance=instance, resources=RESOURCES)


def drop_the_last_rows(path: Path, count: int = 4) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-count]), encoding="utf-8")


def tuneforge(*args: str) -> subprocess.CompletedProcess:
    assert TUNEFORGE.exists(), "the console script is missing: `.venv/bin/pip install --no-deps -e .`"
    return subprocess.run([str(TUNEFORGE), *args], capture_output=True, text=True, env=os.environ.copy(), timeout=120)


def files_of(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def two_versions(workspace: Path, tmp_path: Path) -> Path:
    """Materialize the data assets of one source twice, the second time with its last raw rows gone (a source
    is enough and keeps this quick: DVC calls dominate); returns copies of version 1's curated dir and cleaned file."""
    layout = Layout(workspace)
    raw = place_aclsum(layout.raw, limit=40)  # enough papers for every split to pass the curated checks
    for other in set(raw) - {SOURCE}:
        shutil.rmtree(raw[other].parent)
    v1 = tmp_path / "v1"
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("sources", [SOURCE])
        materialize_data(instance, SOURCE)
        shutil.copytree(layout.curated, v1 / "curated")
        shutil.copy(layout.cleaned / f"{SOURCE}.jsonl", v1 / f"{SOURCE}.jsonl")
        drop_the_last_rows(raw[SOURCE])
        materialize_data(instance, SOURCE)
    assert files_of(layout.curated) != files_of(v1 / "curated"), "version 2 did not change the curated data"
    return v1


@pytest.mark.slow
@pytest.mark.e2e
def test_recorded_versions_restore_byte_for_byte(two_versions, tmp_path, workspace, capsys):
    v1 = two_versions
    listed = tuneforge("data", "versions", "--json")
    assert listed.returncode == 0, listed.stderr
    versions = [entry["data_version"] for entry in json.loads(listed.stdout)]
    assert len(versions) == 2 and versions[0] != versions[1] and all(v.endswith(".dir") for v in versions)

    restored = tuneforge("data", "restore", versions[1][:8], "--to", str(tmp_path / "from-cache"))
    assert restored.returncode == 0, restored.stderr
    assert str(tmp_path / "from-cache") in restored.stdout
    assert files_of(tmp_path / "from-cache") == files_of(v1 / "curated")

    shutil.rmtree(workspace / ".dvc" / "cache")
    restored = tuneforge("data", "restore", versions[1][:8], "--to", str(tmp_path / "from-remote"))
    assert restored.returncode == 0, restored.stderr
    assert files_of(tmp_path / "from-remote") == files_of(v1 / "curated")

    # A single-file version (a partition of cleaned_corpus) into the default directory, in-process to save time.
    assert main(["data", "versions", "--asset", "cleaned_corpus", "--partition", SOURCE, "--json"]) == 0
    cleaned = [entry["data_version"] for entry in json.loads(capsys.readouterr().out)]
    assert len(cleaned) == 2
    assert main(["data", "restore", cleaned[1], "--asset", "cleaned_corpus", "--partition", SOURCE]) == 0
    default_dir = workspace / "data" / "restored" / f"cleaned_corpus-{SOURCE}-{cleaned[1][:8]}"
    assert (default_dir / f"{SOURCE}.jsonl").read_bytes() == (v1 / f"{SOURCE}.jsonl").read_bytes()
    assert str(default_dir) in capsys.readouterr().out
    assert not list(workspace.glob(".restore-*")), "the staging directory was left behind"

    check_errors(versions, tmp_path, workspace, capsys)


def check_errors(versions: list[str], tmp_path: Path, workspace: Path, capsys) -> None:
    unknown = tuneforge("data", "restore", "0123456789ab")
    assert unknown.returncode != 0
    assert "No version '0123456789ab'" in unknown.stderr and "tuneforge data versions" in unknown.stderr
    assert all(version in unknown.stderr for version in versions), "the error should list the known versions"

    assert main(["data", "restore", versions[1][:3]]) == 1
    assert "at least 6 characters" in capsys.readouterr().err

    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    assert main(["data", "restore", versions[1][:8], "--to", str(occupied)]) == 1
    assert "already exists and is not empty" in capsys.readouterr().err
    assert (occupied / "keep.txt").read_text() == "mine"

    shutil.rmtree(workspace / ".dvc" / "cache", ignore_errors=True)
    shutil.rmtree(workspace / ".dvcstore")
    assert main(["data", "restore", versions[1][:8], "--to", str(tmp_path / "gone")]) == 1
    err = capsys.readouterr().err
    assert "neither in the local cache" in err and "dvc push" in err
    assert not (tmp_path / "gone").exists()


def test_an_ambiguous_prefix_names_the_candidates():
    from pipelines.cli import CliError, RecordedVersion, match_version

    def recorded(version: str) -> RecordedVersion:
        return RecordedVersion("curated_dataset", None, version, "run", 0.0, {}, None)

    versions = [recorded("abcdef01" + "0" * 24 + ".dir"), recorded("abcdef02" + "0" * 24 + ".dir")]
    with pytest.raises(CliError, match="matches 2 versions"):
        match_version(versions, "abcdef", "curated_dataset")
    assert match_version(versions, "abcdef02", "curated_dataset") is versions[1]

"""The champion registry: compare-and-swap promotion, rollback, the audit log and the export link, with a real
MLflow sqlite store and real processes racing."""

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from pipelines.cli import main as cli
from resources.registry import ModelRegistry
from tuneforge.layout import Layout
from tuneforge.registry import Candidate, ChampionChanged, RegistryError


def _candidate(layout: Layout, name: str) -> Candidate:
    adapter = layout.adapters / name
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"name": name}))
    export = layout.exports / name
    export.mkdir(parents=True)
    (export / "config.json").write_text(json.dumps({"name": name}))
    return Candidate(adapter, export, params={"fingerprint": name},
                     metrics={"candidate_rougeL": 30.0, "candidate_rougeL_low": 27.0, "candidate_rougeL_high": 33.0},
                     tags={"base_sha256": "abc", "dataset_version": "d41d8cd9.dir", "base_model": "tiny"})


def _link_target(layout: Layout) -> str:
    return Path(os.path.realpath(layout.champion_export)).name


def test_promote_moves_the_champion_keeps_the_previous_and_audits(workspace):
    champions = ModelRegistry().open()
    first = champions.promote(_candidate(champions.layout, "a"), expected_champion=None)
    second = champions.promote(_candidate(champions.layout, "b"), expected_champion=first)

    assert champions.champion().version == second and champions.previous().version == first
    assert champions.champion().adapter_dir.endswith("/b")
    assert _link_target(champions.layout) == "b"
    assert [(e.event, e.version, e.replaced) for e in champions.history()] == [
        ("promote", first, None), ("promote", second, first)]


def test_a_stale_promotion_is_refused_and_changes_nothing(workspace):
    champions = ModelRegistry().open()
    first = champions.promote(_candidate(champions.layout, "a"), expected_champion=None)
    with pytest.raises(ChampionChanged, match="expected version none, found 1"):
        champions.promote(_candidate(champions.layout, "b"), expected_champion=None)
    assert champions.champion().version == first and champions.previous() is None
    assert _link_target(champions.layout) == "a"
    assert len(champions.history()) == 1


def test_rollback_restores_the_previous_champion_and_its_export(workspace, capsys):
    champions = ModelRegistry().open()
    first = champions.promote(_candidate(champions.layout, "a"), expected_champion=None)
    second = champions.promote(_candidate(champions.layout, "b"), expected_champion=first)

    assert cli(["rollback"]) == 0
    assert f"version {first} is champion again (was version {second})" in capsys.readouterr().out
    assert champions.champion().version == first and champions.previous() is None
    assert _link_target(champions.layout) == "a"
    assert champions.history()[-1].event == "rollback" and champions.history()[-1].replaced == second

    assert cli(["rollback"]) == 1
    assert "first champion: there is no previous one" in capsys.readouterr().err
    assert cli(["rollback", "--to", second]) == 0
    assert champions.champion().version == second and _link_target(champions.layout) == "b"


def test_rollback_refuses_a_version_whose_export_is_gone(workspace):
    champions = ModelRegistry().open()
    first = champions.promote(_candidate(champions.layout, "a"), expected_champion=None)
    champions.promote(_candidate(champions.layout, "b"), expected_champion=first)
    (champions.layout.exports / "a" / "config.json").unlink()
    with pytest.raises(RegistryError, match="merged export .* is missing"):
        champions.rollback()
    assert _link_target(champions.layout) == "b"


def test_rollback_without_a_champion_says_so(workspace, capsys):
    assert cli(["rollback"]) == 1
    assert "nothing is promoted yet" in capsys.readouterr().err


def _race(root: str, name: str, start, results) -> None:
    os.environ["TUNEFORGE_ROOT"] = root
    champions = ModelRegistry().open()
    candidate = _candidate(champions.layout, name)
    start.wait()
    try:
        results.put((name, champions.promote(candidate, expected_champion=None)))
    except ChampionChanged as refused:
        results.put((name, str(refused)))


@pytest.mark.slow
def test_two_promotions_racing_leave_one_consistent_champion(workspace):
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    racers = [context.Process(target=_race, args=(str(workspace), name, start, results)) for name in ("a", "b")]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(120)
        assert racer.exitcode == 0
    outcomes = dict(results.get(timeout=5) for _ in racers)

    winners = [name for name, outcome in outcomes.items() if outcome.isdigit()]
    assert len(winners) == 1, outcomes
    loser = ({"a", "b"} - set(winners)).pop()
    assert "the champion changed" in outcomes[loser]
    champions = ModelRegistry().open()
    champion = champions.champion()
    assert champion.adapter_dir.endswith(f"/{winners[0]}") and _link_target(champions.layout) == winners[0]
    assert [entry.version for entry in champions.history()] == [champion.version]
    assert len(champions.versions()) == 1, "the refused promotion registered a version"


def test_status_json_names_the_champion_and_its_lineage(workspace, capsys):
    assert cli(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["champion"] is None

    champions = ModelRegistry().open()
    champions.promote(_candidate(champions.layout, "a"), expected_champion=None)
    assert cli(["status", "--json"]) == 0
    state = json.loads(capsys.readouterr().out)
    champion = state["champion"]
    assert champion["version"] == "1" and champion["dataset_version"] == "d41d8cd9.dir"
    assert champion["metrics"]["rougeL"] == {"mean": 30.0, "low": 27.0, "high": 33.0}
    assert state["champion_export"].endswith("/exports/a")
    assert cli(["status"]) == 0
    assert "rougeL" in capsys.readouterr().out

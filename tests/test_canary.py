"""A canary: registered beside the champion, answering a share of served requests, compared with the champion on
that traffic, then promoted or stopped."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest
from serving_helpers import MODEL, TUNEFORGE, Server, candidate

from pipelines.cli import main as cli
from resources.registry import ModelRegistry
from tuneforge.monitoring.canary import compare_versions, render
from tuneforge.registry import ChampionChanged, RegistryError
from tuneforge.serving.router import share_of


def test_a_canary_is_registered_beside_the_champion_then_promoted(workspace, capsys):
    champions = ModelRegistry().open()
    with pytest.raises(RegistryError, match="there is no champion to compare a canary with"):
        champions.start_canary(candidate(workspace, "a", None), expected_champion=None)
    first = champions.promote(candidate(workspace, "first", None), expected_champion=None)
    with pytest.raises(ChampionChanged):
        champions.start_canary(candidate(workspace, "stale", None), expected_champion="99")
    canary = champions.start_canary(candidate(workspace, "second", None), expected_champion=first)
    assert champions.champion().version == first and champions.canary().version == canary

    assert cli(["canary", "promote"]) == 0
    assert f"Canary version {canary} is champion (was version {first})" in capsys.readouterr().out
    assert champions.champion().version == canary and champions.previous().version == first
    assert champions.canary() is None
    assert [e.event for e in champions.history()] == ["promote", "canary", "promote"]
    assert cli(["canary", "stop"]) == 1
    assert "has no canary" in capsys.readouterr().err
    assert cli(["rollback"]) == 0 and champions.champion().version == first  # a promoted canary rolls back too


def test_the_comparison_gives_each_signal_with_intervals_and_the_difference():
    answers = ([{"version": "1", "output": "A faithful summary.", "finish_reason": "stop", "seconds": 1.0 + i / 10}
                for i in range(20)] +
               [{"version": "2", "output": "A faithful summary.", "finish_reason": "stop", "seconds": 2.0 + i / 10}
                for i in range(20)])
    feedback = [{"version": "1", "rating": 2}] * 10 + [{"version": "2", "rating": 4}] * 8 + [{"version": "2",
                                                                                              "rating": 5}] * 2
    report = compare_versions(answers, feedback, champion="1", canary="2", resamples=500)
    rating, latency = report["signals"]["rating"], report["signals"]["latency_seconds"]
    assert rating["champion"]["mean"] == 2 and rating["canary"]["mean"] == pytest.approx(4.2)
    assert rating["difference"]["mean"] == pytest.approx(2.2)
    low, high = rating["difference"]["interval"]
    assert 0 < low <= 2.2 <= high
    assert latency["difference"]["mean"] == pytest.approx(1.0) and latency["canary"]["n"] == 20
    assert report["signals"]["unsupported_number_share"]["difference"] is None  # no documents to check against
    table = render(report)
    assert "| rating | 2 [2, 2] (n=10) | 4.2 [" in table and "Canary version 2 against champion version 1" in table


def test_requests_split_by_id_in_the_configured_share():
    shares = [share_of(f"{i:032x}") for i in range(20_000)]
    assert 0.09 < sum(s < 0.1 for s in shares) / len(shares) < 0.11
    assert share_of("abc") == share_of("abc")


@pytest.mark.e2e
def test_the_server_sends_a_share_to_the_canary_and_follows_it_stopping(workspace):
    (workspace / "tuneforge.yaml").write_text("serving: {canary_share: 0.5}\n")
    champions = ModelRegistry().open()
    first = champions.promote(candidate(workspace, "adapter-a", None), expected_champion=None)
    canary = champions.start_canary(candidate(workspace, "adapter-b", seed=7), expected_champion=first)
    server = Server(workspace, {}, "--precision", "fp32")
    try:
        assert httpx.get(f"{server.url}/ready").json()["canary"] == {"version": canary, "adapter": "adapter-b",
                                                                      "share": 0.5}
        client = server.client()

        def versions(count: int) -> list[str]:
            return [client.chat.completions.with_raw_response.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2,
            ).headers["x-tuneforge-model-version"] for _ in range(count)]

        seen = versions(40)
        assert 8 <= seen.count(canary) <= 32 and seen.count(first) + seen.count(canary) == 40
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'role="canary"' in metrics and f'version="{canary}"' in metrics

        report = subprocess.run([str(TUNEFORGE), "canary", "report", "--json"], capture_output=True, text=True,
                                cwd=workspace)
        assert report.returncode == 0, report.stderr
        assert f'"canary": "{canary}"' in report.stdout

        champions.stop_canary()
        deadline = time.monotonic() + 30
        while httpx.get(f"{server.url}/ready").json()["canary"] is not None:
            assert time.monotonic() < deadline, "the server never dropped the stopped canary"
            time.sleep(0.2)
        assert set(versions(10)) == {first}
    finally:
        assert server.stop() == 0

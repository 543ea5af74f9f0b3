"""The loop closed, end to end: a real server answers the ``openai`` client, users rate and correct its answers, the
day's ``live_traffic`` partition measures exactly that, a breached rating check alerts and has the sensor request a
retrain, and the corrections come in through ingestion as a source whose rows are the request ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg
import httpx
import pytest
from serving_helpers import MODEL, Server, candidate

from resources import Workspace
from resources.registry import ModelRegistry
from stages.definitions import defs
from stages.monitoring.sensors import live_retrain_sensor
from tuneforge.layout import Layout
from tuneforge.monitoring.live import measure_live
from tuneforge.profiles import DriftConfig, LiveConfig

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DOCUMENTS = [f"Paper {i}: we study adapters for summarization and report {10 + i} findings." for i in range(6)]


def _materialize(instance: dg.DagsterInstance, asset: str, partition: str) -> dg.ExecuteInProcessResult:
    job = dg.define_asset_job("selection", selection=[asset]).resolve(asset_graph=defs.resolve_asset_graph())
    return job.execute_in_process(instance=instance, partition_key=partition, raise_on_error=False,
                                  resources=defs.resources)


def _metadata(instance: dg.DagsterInstance, asset: str, partition: str) -> dict:
    selection = dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition])
    (record,) = instance.fetch_materializations(selection, limit=1).records
    return {key: value.value for key, value in record.event_log_entry.asset_materialization.metadata.items()}


def test_served_answers_feedback_and_monitoring_close_the_loop(workspace):
    (workspace / "tuneforge.yaml").write_text("live: {min_requests: 5, min_ratings: 3, min_mean_rating: 3.5}\n")
    ModelRegistry().open().promote(candidate(workspace, "adapter-a", None), expected_champion=None)
    server = Server(workspace, {}, "--precision", "fp32")
    try:
        client = server.client()
        answers = [client.chat.completions.create(model=f"{MODEL}:abstract", max_tokens=6,
                                                  messages=[{"role": "user", "content": d}]) for d in DOCUMENTS]
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=3)
        too_many = httpx.post(f"{server.url}/v1/chat/completions", json={
            "model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 99_999})
        assert too_many.status_code == 400  # the client's fault: logged, but not a service error
        for answer, rating in zip(answers[:3], (1, 2, 2), strict=True):
            assert httpx.post(f"{server.url}/v1/feedback", json={"request_id": answer.id, "rating": rating}).is_success
        corrected = answers[3:5]
        for answer in corrected:
            assert httpx.post(f"{server.url}/v1/feedback", json={
                "request_id": answer.id, "correction": "Adapters summarize as well as full fine-tuning."}).is_success
    finally:
        assert server.stop() == 0  # drains and closes the request log
    layout = Layout(workspace)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    logged = [json.loads(line) for line in (layout.request_logs / f"{day}.jsonl").read_text().splitlines()]
    assert len(logged) == 8 and sorted(e["status"] for e in logged) == [200] * 7 + [400]

    with dg.DagsterInstance.get() as instance:
        assert _materialize(instance, "live_traffic", day).success
        figures = _metadata(instance, "live_traffic", day)
        assert figures["requests"] == 7 and figures["answered"] == 7 and figures["errors"] == 0
        assert figures["ratings"] == 3 and figures["mean_rating"] == pytest.approx(5 / 3)
        assert figures["corrections"] == 2 and figures["error_rate"] == 0.0
        assert figures["degenerate_rate"] == 1.0  # random weights never reach the end of turn: every answer is cut
        history = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey("live_traffic"), "live_mean_rating"), limit=1)
        assert history[0].status.value == "FAILED"
        alerts = [json.loads(line) for line in (workspace / "logs" / "alerts.jsonl").read_text().splitlines()]
        assert "mean_rating 1.67 < 3.5" in alerts[-1]["error"] and alerts[-1]["partition"] == day

        instance.add_dynamic_partitions("experiments", ["baseline"])
        context = dg.build_sensor_context(instance=instance, resources={"workspace": Workspace()})
        request = live_retrain_sensor(context)
        assert isinstance(request, dg.RunRequest) and request.partition_key == "baseline"
        assert request.tags["tuneforge/trigger"] == "live_monitoring"
        again = live_retrain_sensor(dg.build_sensor_context(instance=instance, cursor=context.cursor,
                                                            resources={"workspace": Workspace()}))
        assert isinstance(again, dg.SkipReason)  # one retrain per breach

        # the corrections, a source like any other: ingested with their request ids as row ids
        instance.add_dynamic_partitions("sources", ["feedback-abstract"])
        assert _materialize(instance, "raw_corpus", "feedback-abstract").success
        ingested = _metadata(instance, "raw_corpus", "feedback-abstract")
        assert ingested["records_read"] == 2 and ingested["rows"] == 2
        rows = (layout.ingested / "feedback-abstract.jsonl").read_text()
        assert all(answer.id.removeprefix("chatcmpl-") in rows for answer in corrected)


def _entry(seconds: float, status: int = 200, output: str | None = "A short answer.", document: str | None = None):
    return {"status": status, "seconds": seconds, "first_token_seconds": seconds / 2, "completion_tokens": 4,
            "output": output if status == 200 else None, "finish_reason": "stop", "document": document,
            "version": "3"}


@pytest.mark.parametrize(("requests", "feedback", "breached"), [
    ([_entry(1.0)] * 20, [], []),
    ([_entry(1.0)] * 18 + [_entry(0.1, status=503)] * 2, [], ["error_rate"]),  # 10% > 5%
    ([_entry(1.0)] * 18 + [_entry(0.1, status=429)] * 2, [], ["error_rate"]),  # turned away counts too
    ([_entry(1.0)] * 18 + [_entry(0.1, status=400)] * 2, [], []),  # the clients' own fault does not
    ([_entry(1.0)] * 18 + [_entry(40.0)] * 2, [], ["latency_p95"]),
    ([_entry(1.0, output="")] * 20, [], ["degenerate_rate"]),
    ([_entry(1.0)] * 20, [{"rating": 1}] * 5, ["mean_rating"]),
    ([_entry(1.0)] * 20, [{"rating": 1}] * 4, []),  # too few ratings to judge
    ([_entry(1.0, status=503)] * 4, [], []),  # too few requests to judge
])
def test_each_live_check_breaches_at_its_threshold(requests, feedback, breached):
    report = measure_live("2026-12-01", requests, feedback, None, LiveConfig(), DriftConfig())
    assert [j.name for j in report.breached()] == breached
    assert {j.name for j in report.judged} == {"error_rate", "latency_p95", "degenerate_rate", "mean_rating",
                                               "document_drift"}


def test_live_documents_unlike_the_training_ones_drift(tmp_path):
    train = tmp_path / "train.jsonl"
    document = "adapters summarize papers about training " * 20
    document = "adapters summarize papers about training " * 20
    rows = [{"id": f"t{i}", "group": f"t{i}", "source": "papers", "document": document, "summary": "x"}
            for i in range(40)]
    train.write_text("".join(json.dumps(row) + "\n" for row in rows))
    live = [_entry(1.0, document=f"invoice {i} overdue payment due refund") for i in range(40)]
    report = measure_live("2026-12-01", live, [], train, LiveConfig(), DriftConfig())
    assert [j.name for j in report.breached()] == ["document_drift"]
    same = [_entry(1.0, document="adapters summarize papers about training " * 20) for _ in range(40)]
    assert measure_live("2026-12-01", same, [], train, LiveConfig(), DriftConfig()).breached() == []

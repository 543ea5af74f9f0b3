"""The Dagster UI end to end, in a real browser.

`dagster dev` serves the repository's workspace.yaml over a temporary smoke workspace; a run of `base_model` is
launched through the GraphQL API, queued by the instance's QueuedRunCoordinator and started by the daemon; then
headless Chromium opens the model group's asset graph and the asset's page and reads what a user would see.

Needs a Chromium binary (Debian: `apt-get install chromium`) and the `playwright` package (the dev extra). Without
Chromium the test is skipped, unless TUNEFORGE_REQUIRE_BROWSER is set (CI sets it), and then it fails.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient
from ui_support import (
    CHROMIUM_ENV_VAR,
    REQUIRE_BROWSER_ENV_VAR,
    asset_node_lines,
    dagster_dev,
    find_chromium,
    wait_for_code_location,
    wait_for_run,
)

pytestmark = [pytest.mark.browser, pytest.mark.daemon, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
CODE_LOCATION = "tuneforge"  # workspace.yaml's location_name
IMPLICIT_ASSET_JOB = "__ASSET_JOB"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Session-scoped and requested first, so a missing browser skips before the smoke model is built."""
    path = find_chromium()
    missing = []
    if path is None:
        configured = os.environ.get(CHROMIUM_ENV_VAR)
        missing.append(f"{CHROMIUM_ENV_VAR}={configured} is not a file" if configured
                       else "no Chromium on PATH (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package is not installed (pip install -e '.[dev]')")
    if missing:
        message = "; ".join(missing)
        if os.environ.get(REQUIRE_BROWSER_ENV_VAR):
            pytest.fail(f"{message}; {REQUIRE_BROWSER_ENV_VAR} is set, so the browser test must run")
        pytest.skip(message)
    return path


def test_asset_graph_in_browser_shows_a_run_launched_through_graphql(chromium: str, workspace: Path, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    with dagster_dev(REPO / "workspace.yaml", cwd=workspace, env=dict(os.environ),
                     log_path=tmp_path / "dagster-dev.log") as server:
        wait_for_code_location(server, CODE_LOCATION, timeout=240)

        client = DagsterGraphQLClient("127.0.0.1", port_number=server.port, timeout=60)
        run_id = client.submit_job_execution(IMPLICIT_ASSET_JOB, asset_selection=["base_model"])
        status = wait_for_run(client, run_id, timeout=420)
        assert status == dg.DagsterRunStatus.SUCCESS, f"run {run_id} ended {status.value}"

        with dg.DagsterInstance.get() as instance:
            record = instance.get_latest_materialization_event(dg.AssetKey("base_model"))
            assert record is not None and record.run_id == run_id, "base_model's latest materialization is not our run"
            sha256 = record.asset_materialization.metadata["sha256"].value

        screenshot = tmp_path / "asset-graph.png"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                                 args=["--no-sandbox", "--disable-dev-shm-usage"])
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(60_000)
            try:
                page.goto(f"{server.url}/locations/{CODE_LOCATION}/asset-groups/model")
                base_model = asset_node_lines(page, "base_model")
                assert "Materialized" in base_model, f"base_model's node: {base_model}"
                # Nothing else ran: the adapter's node shows no materialization (partitioned or not).
                adapter = asset_node_lines(page, "lora_adapter")
                assert not any(line.startswith("Materializ") for line in adapter), f"lora_adapter's node: {adapter}"
                page.screenshot(path=str(screenshot))

                # The asset's own page shows the metadata the run recorded.
                page.goto(f"{server.url}/assets/base_model")
                page.get_by_text(sha256, exact=True).first.wait_for()
                page.get_by_text("Latest materialization").first.wait_for()
                page.screenshot(path=str(tmp_path / "base-model.png"))
            except Exception:
                page.screenshot(path=str(tmp_path / "failure.png"))
                print(f"what the browser showed at the failure: {tmp_path / 'failure.png'}")
                raise
            finally:
                browser.close()

    kept = workspace / "reports" / "ui"
    kept.mkdir(parents=True, exist_ok=True)
    for image in ("asset-graph.png", "base-model.png"):
        shutil.copy(tmp_path / image, kept / image)
    print(f"screenshots: {screenshot}, {tmp_path / 'base-model.png'} (copies in {kept}); "
          f"{time.monotonic() - started:.0f} s in all")

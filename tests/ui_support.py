"""Support for the browser test: `dagster dev` in a subprocess, its GraphQL API, and what headless Chromium sees."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import requests
from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient

DAGSTER = Path(sys.executable).with_name("dagster")
REQUIRE_BROWSER_ENV_VAR = "TUNEFORGE_REQUIRE_BROWSER"
CHROMIUM_ENV_VAR = "TUNEFORGE_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}

WORKSPACE_QUERY = """
query CodeLocations {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
    ... on PythonError { message }
  }
}
"""


class ServerError(RuntimeError):
    """`dagster dev` did not come up, or a code location failed to load; the message carries the server's log."""


@dataclass
class DagsterDevServer:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 150) -> str:
        if not self.log_path.exists():
            return "(no server log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                                 timeout=timeout)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise ServerError(f"GraphQL errors: {body['errors']}")
        return body["data"]


def find_chromium() -> str | None:
    """$TUNEFORGE_CHROMIUM, else the first Chromium or Chrome on PATH (Debian's package installs /usr/bin/chromium)."""
    configured = os.environ.get(CHROMIUM_ENV_VAR)
    if configured:
        return configured if Path(configured).is_file() else None
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def dagster_dev(workspace_file: Path, cwd: Path, env: dict[str, str], log_path: Path,
                startup_timeout: float = 180) -> Iterator[DagsterDevServer]:
    """Run `dagster dev` (webserver, daemon, code server) on a free port; stop its whole process group afterwards.

    On any error inside the block the server's log tail is printed, so pytest shows it with the failure.
    """
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(DAGSTER), "dev", "-w", str(workspace_file), "-h", "127.0.0.1", "-p", str(port)],
            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: teardown reaches the code server and run workers too
            preexec_fn=_default_interrupt_handling,
        )
    server = DagsterDevServer(process, port, log_path)
    try:
        wait_until_serving(server, startup_timeout)
        yield server
    except BaseException:
        print(f"--- dagster dev log ({log_path}), last lines ---\n{server.log_tail()}")
        raise
    finally:
        stop_process_group(process)


def _default_interrupt_handling() -> None:
    # A shell running pytest in the background ignores SIGINT, and the child would inherit that; dagster dev turns
    # SIGTERM into an interrupt, so it could then only be killed.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_until_serving(server: DagsterDevServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerError(f"dagster dev exited with code {server.process.returncode} before serving")
        try:
            if requests.get(f"{server.url}/server_info", timeout=5).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise ServerError(f"dagster dev did not answer on {server.url}/server_info within {timeout:.0f} s")


def wait_for_code_location(server: DagsterDevServer, name: str, timeout: float) -> None:
    """Wait until the code location has loaded; a load error fails at once with the location's own message."""
    deadline = time.monotonic() + timeout
    seen = "nothing"
    while time.monotonic() < deadline:
        workspace = server.graphql(WORKSPACE_QUERY)["workspaceOrError"]
        if workspace["__typename"] != "Workspace":
            raise ServerError(f"the workspace failed to load: {workspace.get('message')}")
        entries = {entry["name"]: entry for entry in workspace["locationEntries"]}
        entry = entries.get(name)
        seen = f"locations {sorted(entries)}" if entry is None else f"{name} {entry['loadStatus']}"
        if entry is not None and entry["loadStatus"] == "LOADED":
            loaded = entry["locationOrLoadError"] or {}
            if loaded.get("__typename") == "PythonError":
                raise ServerError(f"code location {name!r} failed to load:\n{loaded['message']}")
            if loaded.get("__typename") == "RepositoryLocation":
                return
        time.sleep(2)
    raise ServerError(f"code location {name!r} did not load within {timeout:.0f} s (last seen: {seen})")


def wait_for_run(client: DagsterGraphQLClient, run_id: str, timeout: float) -> DagsterRunStatus:
    """Poll a run until it finishes; queued runs wait for the daemon, so allow for its dequeue interval."""
    deadline = time.monotonic() + timeout
    status = client.get_run_status(run_id)
    while status not in FINISHED:
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} still {status.value} after {timeout:.0f} s")
        time.sleep(2)
        status = client.get_run_status(run_id)
    return status


def stop_process_group(process: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM the server's process group; SIGKILL it after `grace` seconds, or at once when dagster dev has exited
    (so no code server or run worker is left behind)."""
    try:
        group = os.getpgid(process.pid)
    except ProcessLookupError:
        return
    with suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    time.sleep(1)
    with suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)


def asset_node_lines(page, asset: str, timeout: float = 60) -> list[str]:
    """The text lines of an asset's node in the asset graph, once the UI has loaded the node's live data.

    Each node is an HTML box in an SVG foreignObject: the name, latest event, checks, partitions, automation and a
    status line, such as "Materialized" or "Never materialized", or a partition count for a partitioned asset.
    While its live data loads the node says "Loading..."; the lines are returned once that is gone and they hold still.
    """
    node = page.locator("foreignObject > div").filter(has=page.get_by_text(asset, exact=True)).first
    node.wait_for(timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    previous: list[str] = []
    while time.monotonic() < deadline:
        lines = [line.strip() for line in node.inner_text().splitlines() if line.strip()]
        if lines == previous and not any(line.startswith("Loading") for line in lines):
            return lines
        previous = lines
        page.wait_for_timeout(1000)
    raise TimeoutError(f"the node of {asset!r} was still loading after {timeout:.0f} s; its text: {previous}")

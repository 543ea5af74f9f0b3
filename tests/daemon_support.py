"""Support for the backfill tests: `dagster-daemon run` in a subprocess, and waiting for a backfill's runs.

`dagster job backfill` only queues runs; the daemon launches each one as a subprocess that inherits the daemon's
environment, so the daemon must get TUNEFORGE_ROOT, TUNEFORGE_PROFILE and DAGSTER_HOME.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from ui_support import stop_process_group

DAGSTER = Path(sys.executable).with_name("dagster")
DAGSTER_DAEMON = Path(sys.executable).with_name("dagster-daemon")
BACKFILL_TAG = "dagster/backfill"
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
FAILURE_EVENTS = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
LAUNCHED = re.compile(r"Launched backfill job `([^`]+)`")


@dataclass
class Daemon:
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 80) -> str:
        if not self.log_path.exists():
            return "(no daemon log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def require_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"dagster-daemon exited with code {self.process.returncode}:\n{self.log_tail()}")

    @contextmanager
    def explain_failures(self) -> Iterator[None]:
        """Print the daemon's log tail when the block fails, so pytest shows it with the failure."""
        try:
            yield
        except BaseException:
            print(f"--- dagster-daemon log ({self.log_path}), last lines ---\n{self.log_tail()}")
            raise


@contextmanager
def dagster_daemon(workspace_file: Path, cwd: Path, env: dict[str, str], log_path: Path) -> Iterator[Daemon]:
    """Run `dagster-daemon run -w workspace_file` in its own process group; stop the whole group afterwards (the
    code server and any run worker with it)."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(DAGSTER_DAEMON), "run", "-w", str(workspace_file)],
            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_default_interrupt_handling,
        )
    try:
        yield Daemon(process, log_path)
    finally:
        stop_process_group(process)


def _default_interrupt_handling() -> None:
    # A shell running pytest in the background ignores SIGINT and the child would inherit that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def backfill_id(output: str) -> str:
    """The id `dagster job backfill` printed (`tuneforge sweep` passes its output through)."""
    found = LAUNCHED.findall(output)
    assert len(found) == 1, f"expected one 'Launched backfill job' line in:\n{output[-3000:]}"
    return found[0]


def wait_for_backfill_runs(instance: dg.DagsterInstance, backfill: str, expected: int, daemon: Daemon,
                           timeout: float = 240) -> list[dg.DagsterRun]:
    """Poll until the backfill has `expected` runs and all have finished; fail with the daemon log and the runs'
    errors when the daemon dies or time runs out."""
    deadline = time.monotonic() + timeout
    runs: Sequence[dg.DagsterRun] = []
    while time.monotonic() < deadline:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={BACKFILL_TAG: backfill}))
        if len(runs) >= expected and all(run.status in FINISHED for run in runs):
            return list(runs)
        daemon.require_alive()
        time.sleep(2)
    statuses = ", ".join(f"{run.tags.get('dagster/partition')}: {run.status.value}" for run in runs) or "no runs"
    raise AssertionError(
        f"backfill {backfill} not finished after {timeout:.0f} s ({statuses})\n{run_errors(instance, runs)}\n"
        f"--- dagster-daemon log ---\n{daemon.log_tail()}"
    )


def run_errors(instance: dg.DagsterInstance, runs: Sequence[dg.DagsterRun]) -> str:
    """Each unsuccessful run's step and run failure messages, with the error each one carries."""
    lines = []
    for run in runs:
        if run.status == dg.DagsterRunStatus.SUCCESS:
            continue
        lines.append(f"run {run.run_id} ({run.job_name}[{run.tags.get('dagster/partition')}]) {run.status.value}:")
        lines.extend(f"  {step}: {error}".replace("\n", "\n    ") for step, error in failure_messages(instance, run))
    return "\n".join(lines)


def failed_steps(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dict[str, str]:
    """Step key -> its failure message and error, for each step of ``run`` that failed."""
    return {step: error for step, error in failure_messages(instance, run) if step != "run"}


def failure_messages(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[tuple[str, str]]:
    """(step key or "run", message with the error's text) for each STEP_FAILURE and RUN_FAILURE event of ``run``."""
    messages = []
    for entry in instance.all_logs(run.run_id, of_type=FAILURE_EVENTS):
        event = entry.dagster_event
        error = getattr(event.event_specific_data, "error", None) if event else None
        text = entry.message + (f"\n{error.to_string().strip()}" if error is not None else "")
        messages.append((entry.step_key or "run", text))
    return messages

"""``tuneforge canary``: the canary against the champion on served traffic (``report``), then ``promote`` it or
``stop`` it. A canary is started by a promotion when ``promotion.rollout`` is ``canary``."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

from pipelines.instance import CliError
from resources.registry import ModelRegistry
from tuneforge.monitoring.canary import compare_versions, render
from tuneforge.monitoring.live import read_day


def report_command(args: argparse.Namespace) -> int:
    champions = ModelRegistry().open()
    canary, champion = champions.canary(), champions.champion()
    if canary is None or champion is None:
        raise CliError("there is no canary to report on (promotion.rollout: canary starts one)")
    layout = champions.layout
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=back)).isoformat() for back in range(args.days)]
    requests = [entry for day in days for entry in read_day(layout.request_logs, day)]
    feedback = [entry for day in days for entry in read_day(layout.feedback_logs, day)]
    report = compare_versions(requests, feedback, champion.version, canary.version)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def promote_command(args: argparse.Namespace) -> int:
    former, promoted = ModelRegistry().open().promote_canary()
    print(f"Canary version {promoted} is champion (was version {former or 'none'}); the server follows within "
          "serving.poll_seconds.")
    return 0


def stop_command(args: argparse.Namespace) -> int:
    version = ModelRegistry().open().stop_canary()
    print(f"Canary version {version} stopped: every request goes to the champion again.")
    return 0


def add_canary_commands(commands: argparse._SubParsersAction) -> None:
    canary = commands.add_parser("canary", help="compare the canary with the champion, then promote or stop it")
    actions = canary.add_subparsers(dest="action", required=True, metavar="ACTION")
    report = actions.add_parser("report", help="ratings, latency and quality of each on served traffic")
    report.add_argument("--days", type=int, default=7, help="UTC days of logs read, today included (default 7)")
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")
    report.set_defaults(handler=report_command)
    actions.add_parser("promote", help="make the canary champion").set_defaults(handler=promote_command)
    actions.add_parser("stop", help="send every request to the champion again").set_defaults(handler=stop_command)

"""``tuneforge``: the command line. ``tuneforge data versions`` lists the data versions Dagster recorded for a data
asset; ``tuneforge data restore VERSION`` checks those exact bytes out of DVC (local cache, else the remote).
``tuneforge status`` and ``tuneforge rollback`` (in ``pipelines.model_commands``) show and move the champion;
``tuneforge experiments`` and ``tuneforge sweep`` (in ``pipelines.experiment_commands``) list and run experiments;
``tuneforge config`` (in ``pipelines.config_commands``) shows the effective settings; ``tuneforge run`` (in
``pipelines.run_commands``) runs the pipeline on your own sources; ``tuneforge serve`` (in
``pipelines.serve_command``) serves the champion behind an OpenAI-compatible API; ``tuneforge canary`` (in
``pipelines.canary_commands``) compares a canary with the champion, then promotes or stops it.

Each command group registers itself in ``COMMAND_GROUPS``; a handler returns the exit code or raises ``CliError``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from pipelines.canary_commands import add_canary_commands
from pipelines.config_commands import add_config_commands
from pipelines.erase_command import add_erase_commands
from pipelines.experiment_commands import add_experiment_commands
from pipelines.instance import CliError, open_instance
from pipelines.model_commands import add_model_commands
from pipelines.run_commands import add_run_commands
from pipelines.serve_command import add_serve_commands
from resources.dvc import DvcError, DvcRepository
from resources.workspace import resolve_root
from stages.data.assets import cleaned_corpus, curated_dataset, raw_corpus
from tuneforge.project import ProjectFileError, load_project
from tuneforge.registry import RegistryError

DATA_ASSETS = tuple(asset.key.to_user_string() for asset in (curated_dataset, cleaned_corpus, raw_corpus))
PARTITIONED = tuple(asset.key.to_user_string() for asset in (cleaned_corpus, raw_corpus))
MIN_PREFIX = 6
PAGE = 100


@dataclass(frozen=True)
class RecordedVersion:
    """One materialization of a data asset, as the Dagster event log recorded it."""

    asset: str
    partition: str | None
    data_version: str
    run_id: str
    timestamp: float
    figures: dict[str, float]
    path: str | None

    @property
    def when(self) -> str:
        return datetime.fromtimestamp(self.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


# ---------------------------------------------------------------------------------------------- Dagster instance


def _materializations(instance: dg.DagsterInstance, asset: str, partition: str | None) -> Iterator[dg.EventLogRecord]:
    """Newest first, every page."""
    key = dg.AssetKey(asset)
    records_filter = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]) if partition else key
    cursor = None
    while True:
        page = instance.fetch_materializations(records_filter, limit=PAGE, cursor=cursor)
        yield from page.records
        if not page.has_more:
            return
        cursor = page.cursor


def _to_version(asset: str, record: dg.EventLogRecord) -> RecordedVersion | None:
    materialization = record.asset_materialization
    metadata = materialization.metadata if materialization else {}
    tags = (materialization.tags if materialization else None) or {}
    version = tags.get("dagster/data_version") or getattr(metadata.get("dvc_md5"), "value", None)
    if not version:
        return None
    figures = {
        name: value.value
        for name, value in metadata.items()
        if isinstance(value, dg.IntMetadataValue | dg.FloatMetadataValue) and value.value is not None
    }
    path = metadata.get("path")
    return RecordedVersion(
        asset=asset,
        partition=record.partition_key,
        data_version=version,
        run_id=record.run_id,
        timestamp=record.timestamp,
        figures=figures,
        path=str(path.value) if path is not None else None,
    )


def recorded_versions(
    instance: dg.DagsterInstance, asset: str, partition: str | None = None, limit: int | None = None
) -> list[RecordedVersion]:
    if partition and asset not in PARTITIONED:
        raise CliError(f"{asset} is not partitioned: drop --partition (only {' and '.join(PARTITIONED)} have one).")
    versions: list[RecordedVersion] = []
    for record in _materializations(instance, asset, partition):
        version = _to_version(asset, record)
        if version is not None:
            versions.append(version)
        if limit is not None and len(versions) >= limit:
            break
    return versions


def match_version(versions: list[RecordedVersion], wanted: str, asset: str) -> RecordedVersion:
    """The newest record whose data version starts with ``wanted``; one distinct version must match."""
    if len(wanted) < MIN_PREFIX:
        raise CliError(f"'{wanted}' is too short: give at least {MIN_PREFIX} characters of a data version.")
    if not versions:
        raise CliError(f"No version of {asset} is recorded in Dagster: materialize it first (`make demo`).")
    matches = [version for version in versions if version.data_version.startswith(wanted)]
    distinct = sorted({version.data_version for version in matches})
    if not distinct:
        known = "\n".join(f"  {v.when}  {v.data_version}  {v.partition or ''}".rstrip() for v in versions[:20])
        raise CliError(
            f"No version '{wanted}' is recorded in Dagster for {asset}. Known versions (newest first):\n{known}\n"
            f"See them all with `tuneforge data versions --asset {asset}`."
        )
    if len(distinct) > 1:
        raise CliError(f"'{wanted}' matches {len(distinct)} versions of {asset}: {', '.join(distinct)}; give more.")
    return matches[0]


# ---------------------------------------------------------------------------------------------- data versions


def _figures_text(figures: dict[str, float]) -> str:
    return " ".join(f"{name}={value:g}" for name, value in figures.items())


def print_versions(versions: list[RecordedVersion]) -> None:
    print(f"{'WHEN (UTC)':19}  {'RUN':8}  {'DATA VERSION':36}  {'PARTITION':20}  FIGURES")
    for v in versions:
        partition = v.partition or "-"
        print(f"{v.when:19}  {v.run_id[:8]:8}  {v.data_version:36}  {partition:20}  {_figures_text(v.figures)}")


def versions_command(args: argparse.Namespace) -> int:
    with open_instance(resolve_root()) as instance:
        versions = recorded_versions(instance, args.asset, args.partition, args.limit)
    if args.json:
        print(json.dumps([{**asdict(v), "when": v.when} for v in versions], indent=2))
    elif not versions:
        print(f"No materialization of {args.asset} with a data version is recorded in {os.environ['DAGSTER_HOME']}.")
    else:
        print_versions(versions)
    return 0


# ---------------------------------------------------------------------------------------------- data restore


def default_target(root: Path, version: RecordedVersion) -> Path:
    suffix = f"-{version.partition}" if version.partition else ""
    return root / "data" / "restored" / f"{version.asset}{suffix}-{version.data_version[:8]}"


def _restored_path(target_dir: Path, version: RecordedVersion) -> Path:
    """A directory version fills the target directory; a file version goes into it under its recorded name."""
    if version.data_version.endswith(".dir"):
        return target_dir
    name = Path(version.path).name if version.path else f"{version.partition or version.asset}.jsonl"
    return target_dir / name


def restore_command(args: argparse.Namespace) -> int:
    root = resolve_root()
    with open_instance(root) as instance:
        version = match_version(recorded_versions(instance, args.asset, args.partition), args.version, args.asset)
    target_dir = Path(args.to).resolve() if args.to else default_target(root, version)
    if target_dir.exists() and (target_dir.is_file() or any(target_dir.iterdir())):
        raise CliError(f"{target_dir} already exists and is not empty: remove it or choose another with --to.")
    try:
        dvc = DvcRepository(root=str(root), **load_project(root).environment.dvc.model_dump())
        restored = dvc.restore(version.data_version, _restored_path(target_dir, version))
    except (DvcError, ProjectFileError) as error:
        raise CliError(str(error)) from None
    partition = f" [{version.partition}]" if version.partition else ""
    print(f"Restored {version.asset}{partition} version {version.data_version}")
    print(f"  materialized {version.when} UTC by run {version.run_id}; {_figures_text(version.figures)}")
    print(f"  into {restored}")
    return 0


# ---------------------------------------------------------------------------------------------- argument parsing


def _asset_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--asset", choices=DATA_ASSETS, default=DATA_ASSETS[0], help=f"default: {DATA_ASSETS[0]}")
    parser.add_argument("--partition", help="source partition of raw_corpus / cleaned_corpus (default: all)")


def add_data_commands(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="data versions recorded in Dagster and stored by DVC")
    actions = data.add_subparsers(dest="action", required=True, metavar="ACTION")

    versions = actions.add_parser("versions", help="list recorded versions, newest first")
    _asset_options(versions)
    versions.add_argument("--limit", type=int, default=50, help="at most this many (default: 50)")
    versions.add_argument("--json", action="store_true", help="print JSON instead of a table")
    versions.set_defaults(handler=versions_command)

    restore = actions.add_parser("restore", help="restore the exact bytes of a recorded version")
    restore.add_argument("version", metavar="VERSION", help=f"a data version, or a unique prefix (>= {MIN_PREFIX})")
    _asset_options(restore)
    restore.add_argument("--to", metavar="DIR", help="target directory (default: data/restored/<asset>-<hash>/)")
    restore.set_defaults(handler=restore_command)


COMMAND_GROUPS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_data_commands, add_model_commands, add_experiment_commands, add_config_commands, add_run_commands,
    add_serve_commands, add_canary_commands, add_erase_commands,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tuneforge", description="tuneforge's command line.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_commands in COMMAND_GROUPS:
        add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (CliError, RegistryError) as error:
        print(f"tuneforge: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""``tuneforge config``: every effective setting of the workspace and where its value came from (the profile,
``tuneforge.yaml``, or an environment variable)."""

from __future__ import annotations

import argparse
import json

from pipelines.instance import CliError
from resources.workspace import resolve_root
from tuneforge.project import ProjectFileError, load_project


def config_command(args: argparse.Namespace) -> int:
    try:
        project = load_project(resolve_root())
    except ProjectFileError as error:
        raise CliError(str(error)) from None
    settings = [(name, value, origin) for name, value, origin in project.settings()
                if not args.key or name == args.key or name.startswith(f"{args.key}.")]
    if args.key and not settings:
        raise CliError(f"no setting {args.key!r}; `tuneforge config` lists them all")
    if args.json:
        print(json.dumps({name: {"value": value, "from": origin} for name, value, origin in settings}, indent=2,
                         default=str))
        return 0
    print(f"# {project.file}{'' if project.file.exists() else ' (absent: profile defaults)'}")
    width = max(len(name) for name, _, _ in settings)
    for name, value, origin in settings:
        print(f"{name:<{width}}  {json.dumps(value, default=str)}  # {origin}")
    return 0


def add_config_commands(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("config", help="the effective settings and where each came from")
    parser.add_argument("key", nargs="?", help="one setting or section, e.g. training or training.lora_rank")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(handler=config_command)

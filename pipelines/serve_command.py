"""``tuneforge serve``: the champion behind an OpenAI-compatible API (see tuneforge/serving/). Settings come from
``serving`` in tuneforge.yaml (``tuneforge config serving``); the flags override them for one run."""

from __future__ import annotations

import argparse
import logging

from pipelines.instance import CliError
from resources.registry import ModelRegistry
from resources.workspace import resolve_root
from tuneforge.layout import Layout
from tuneforge.project import ProjectFileError, load_project

FLAGS = ("host", "port", "api_keys_file", "max_batch_size", "max_queue", "max_tokens_limit", "poll_seconds",
         "precision")


def serve_command(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from tuneforge.serving.auth import ServingSetupError
    from tuneforge.serving.champion import NothingToServe
    from tuneforge.serving.server import serve

    try:
        project = load_project(resolve_root())
        profile = project.profile
        overrides = {flag: getattr(args, flag) for flag in FLAGS if getattr(args, flag) is not None}
        config = profile.serving.model_validate({**profile.serving.model_dump(), **overrides})
    except ProjectFileError as error:
        raise CliError(str(error)) from None
    except ValidationError as error:
        first = error.errors()[0]
        raise CliError(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    registry = ModelRegistry()
    try:
        serve(config, registry.open, profile, Layout(project.root))
    except (NothingToServe, ServingSetupError) as error:
        raise CliError(str(error)) from None
    return 0


def add_serve_commands(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("serve", help="serve the champion behind an OpenAI-compatible API")
    parser.add_argument("--host", help="interface to bind (default 127.0.0.1; beyond loopback needs API keys)")
    parser.add_argument("--port", type=int, help="port (default 8000; 0 picks a free one)")
    parser.add_argument("--api-keys-file", dest="api_keys_file", help="file of API keys, one per line "
                        "(beside $TUNEFORGE_API_KEYS)")
    parser.add_argument("--max-batch-size", dest="max_batch_size", type=int, help="requests decoded together")
    parser.add_argument("--max-queue", dest="max_queue", type=int, help="requests waiting or decoding before 429")
    parser.add_argument("--max-tokens-limit", dest="max_tokens_limit", type=int, help="the most max_tokens allowed")
    parser.add_argument("--poll-seconds", dest="poll_seconds", type=float,
                        help="how often the champion alias is checked")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"),
                        help="auto (default): bf16 where it measures faster; fp32: answers as evaluation scored them")
    parser.set_defaults(handler=serve_command)

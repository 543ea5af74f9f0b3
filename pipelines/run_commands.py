"""``tuneforge run``: the whole pipeline on your own sources under ``data/raw/`` (nothing embedded is placed), as
``make demo`` runs it on the embedded corpus: ingest every source, then curate, train one experiment, evaluate,
gate and promote, recording the runs in the workspace's Dagster instance."""

from __future__ import annotations

import argparse

from pipelines.instance import CliError, open_instance
from resources.workspace import resolve_root
from tuneforge.experiments import DEFAULT_EXPERIMENT, ExperimentsError, load_experiments
from tuneforge.layout import Layout


def run_command(args: argparse.Namespace) -> int:
    from pipelines.demo import print_data_summary, print_summary, run_all

    layout = Layout(resolve_root())
    try:
        known = load_experiments(layout.experiments_file)
    except ExperimentsError as error:
        raise CliError(str(error)) from None
    if args.experiment not in known:
        raise CliError(f"experiment {args.experiment!r} is not in {layout.experiments_file} "
                       f"(known: {', '.join(known)})")
    with open_instance(layout.root) as instance:
        try:
            summary = run_all(instance, layout, seed_embedded=False, experiment=args.experiment)
        except ValueError as error:  # no sources, or none readable
            raise CliError(str(error)) from None
        print_data_summary(instance)
    print_summary(summary)
    return 0


def add_run_commands(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("run", help="ingest your sources under data/raw and run the model lifecycle")
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT,
                        help=f"the experiment (experiments.yaml) to train (default: {DEFAULT_EXPERIMENT})")
    parser.set_defaults(handler=run_command)

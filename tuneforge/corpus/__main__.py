"""``python -m tuneforge.corpus {ingest,clean,curate}``: the data stages as ``dvc.yaml`` runs them, on the data engine
``environment.data_engine`` names (the same bytes on any)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tuneforge.corpus import stages
from tuneforge.corpus.engines import engine_config
from tuneforge.layout import Layout
from tuneforge.project import load_project


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tuneforge.corpus", description=__doc__)
    parser.add_argument("stage", choices=["ingest", "clean", "curate"])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="workspace root (default: current directory)")
    parser.add_argument("--source", action="append", help="limit to these sources (default: all under data/raw)")
    args = parser.parse_args(argv)
    layout = Layout(args.root.resolve())
    project = load_project(layout.root)
    profile, engine = project.profile, engine_config(project.environment.data_engine, layout.root)
    sources = args.source or stages.all_sources(layout)
    if args.stage == "curate":
        report = stages.curate(layout, sources, profile, engine=engine)
        print(f"curate: {report.figures['sizes']}")
        return
    for source in sources:
        if args.stage == "ingest":
            report = stages.ingest(layout, source, profile, engine=engine)
        else:
            report = stages.clean(layout, source, profile, engine=engine)
        print(f"{args.stage} {source}: {_summary(report.figures)}")


def _summary(figures: dict) -> str:
    return ", ".join(f"{key} {value}" for key, value in figures.items() if isinstance(value, int))


if __name__ == "__main__":
    main()

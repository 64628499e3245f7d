"""`experiments analyze RUN_DIR`: ranked table on stdout, PNG plots in a folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.cli_common import HelpFormatter


def add_analyze_parser(sub: argparse._SubParsersAction) -> None:
    analyze = sub.add_parser(
        "analyze",
        formatter_class=HelpFormatter,
        help="tables and plots of a finished run",
        description="Rank the trials of a Ray Tune experiment (or the stages of an lpasrn "
        "run) and write\nlearning_curves.png, pareto_accuracy_vs_size.png, "
        "param_importances.png and\nparallel_coordinates.png.",
    )
    analyze.add_argument("run_dir", type=Path, help="Tune experiment folder (<storage>/<name>) or lpasrn run folder")
    analyze.add_argument(
        "--metric", help="metric to rank by (default: int8_accuracy, else val_accuracy / the run's primary metric)"
    )
    analyze.add_argument("--mode", choices=("max", "min"), help="default: min for loss/size/latency, else max")
    analyze.add_argument("--out", type=Path, help="folder for the plots (default: RUN_DIR/analysis)")
    analyze.add_argument("--top", type=int, default=5, help="trials in the table and the learning curves")
    analyze.set_defaults(handler=cmd_analyze)


def cmd_analyze(args: argparse.Namespace) -> int:
    from experiments.analysis import analyze

    report = analyze(args.run_dir, metric=args.metric, mode=args.mode, out=args.out, top=args.top)
    print(report.table)
    if report.importances:
        print("importances: " + ", ".join(f"{k} {v:.3f}" for k, v in report.importances.items()))
    for path in report.files:
        print(f"wrote {path}")
    return 0

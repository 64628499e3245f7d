"""`lpasrn` commands for the experiment config and the progressive training.

Heavy modules (torch, rendering) are imported inside the handlers so `--help` stays instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.cli_common import HelpFormatter, add_config_arguments, print_or_save_config
from experiments.errors import UserError


def _cmd_config(args: argparse.Namespace) -> int:
    from lpasrn.config import load_lpasrn_config

    return print_or_save_config(load_lpasrn_config(args.config, args.overrides), args.out)


def _train_overrides(args: argparse.Namespace) -> list[str]:
    """Command-line flags win over the file and --set."""
    flags = list(args.overrides)
    if args.num_workers is not None:
        flags.append(f"run.num_workers={args.num_workers}")
    if args.gpu:
        flags.append("run.use_gpu=true")
    if args.storage_path is not None:
        flags.append(f"run.storage_path={args.storage_path}")
    if args.name is not None:
        flags.append(f"run.name={args.name}")
    return flags


def _cmd_train(args: argparse.Namespace) -> int:
    import logging

    from lpasrn.config import load_lpasrn_config
    from lpasrn.data import packed
    from lpasrn.data.splits import build_splits
    from lpasrn.training.pipeline import LocalLauncher, StageLauncher, run_pipeline

    cfg = load_lpasrn_config(args.config, _train_overrides(args)).with_absolute_paths()
    if args.stage is not None and not 0 <= args.stage < len(cfg.stages):
        raise UserError(f"--stage {args.stage}: expected 0..{len(cfg.stages) - 1}")
    data = cfg.data
    if packed.is_packed(data.root):  # fail fast here, reading the manifest only (the shards may be large)
        packed.refuse_split_file(data.root, data.split_file)
        packed.read_manifest(data.root)
    else:
        build_splits(data.root, data.split_file, data.split_ratios, data.split_seed, data.skip_bad)
    if args.local:
        if cfg.run.num_workers > 1:
            logging.getLogger("lpasrn").warning(
                "--local runs one process; run.num_workers=%d is ignored", cfg.run.num_workers
            )
        launcher: StageLauncher = LocalLauncher()
    else:
        from lpasrn.ray_glue.cluster import check_resources, connect
        from lpasrn.ray_glue.train import RayTrainLauncher

        connect()
        check_resources(cfg)
        launcher = RayTrainLauncher()
    stages = [args.stage] if args.stage is not None else None
    bundle = run_pipeline(cfg, launcher, stages, args.init_checkpoint)
    print(f"inference bundle: {bundle}")
    return 0


def add_config(sub: argparse._SubParsersAction) -> None:
    config = sub.add_parser(
        "config",
        formatter_class=HelpFormatter,
        help="validate and print a config",
        description="Validate an experiment file with overrides and print the result.",
    )
    add_config_arguments(config, default="lp_asrn")
    config.add_argument("--out", type=Path, help="write config.resolved.yaml into this folder instead")
    config.set_defaults(handler=_cmd_config)


def add_train(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser(
        "train",
        formatter_class=HelpFormatter,
        help="run the progressive stages",
        description="Run stages 0..4 (or one with --stage) in one Ray Train run, "
        "each starting from the previous stage's best checkpoint. Without --local and "
        "RAY_ADDRESS a local Ray starts by itself. The same command again resumes an "
        "interrupted run.",
    )
    add_config_arguments(train, default="lp_asrn")
    train.add_argument("--stage", type=int, help="run only this stage (starting from stage N-1's best in the same run)")
    train.add_argument("--num-workers", type=int, help="Ray Train workers (run.num_workers)")
    train.add_argument("--gpu", action="store_true", help="one GPU per worker (run.use_gpu)")
    train.add_argument("--storage-path", help="where runs are written (run.storage_path)")
    train.add_argument("--name", help="run name (run.name); the Ray run is <name>-stage<k> or <name>-stages<a>-<b>")
    train.add_argument("--init-checkpoint", help="seed the first stage run from this checkpoint")
    train.add_argument("--local", action="store_true", help="train in this process, no Ray (one GPU or the CPU)")
    train.set_defaults(handler=_cmd_train)


def add_commands(sub: argparse._SubParsersAction) -> None:
    add_config(sub)
    add_train(sub)

"""`experiments` command line: shipped presets and validation of experiment files for either half."""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.cli_analyze import add_analyze_parser
from experiments.cli_common import HelpFormatter, console_entrypoints
from experiments.config import PRESETS_DIR, list_presets, read_yaml_mapping, resolve_config_path

_LPASRN_SECTIONS = {"data", "model", "ocr", "loss", "train", "stages", "run"}
_TUNE_SECTIONS = {"space", "base"}  # a `digits tune` file (experiments/digits/tune.yaml)


def detect_kind(path: Path) -> str:
    """`lpasrn` or `digits`: by the folder an experiment file sits in, else by its top-level keys."""
    for part in reversed(path.resolve().parts[:-1]):
        if part in ("lpasrn", "digits"):
            return part
    return "lpasrn" if _LPASRN_SECTIONS & set(read_yaml_mapping(path)) else "digits"


def _cmd_validate(args: argparse.Namespace) -> int:
    from digits.config import load_digits_config
    from lpasrn.config import load_lpasrn_config

    loaders = {"lpasrn": load_lpasrn_config, "digits": load_digits_config}
    for name in args.files:
        path = resolve_config_path(name)
        kind = args.kind or detect_kind(path)
        loader = loaders[kind]
        if kind == "digits" and _TUNE_SECTIONS & set(read_yaml_mapping(path)):
            from digits.tuning.config import load_tune_config as loader
        loader(path, args.overrides)
        print(f"ok  {kind:<7} {path}")
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    for kind in ("lpasrn", "digits"):
        for name in list_presets(kind):
            print(f"{kind:<7} {name:<16} {PRESETS_DIR / kind / (name + '.yaml')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="experiments",
        formatter_class=HelpFormatter,
        description="Experiment files of glyphray (lpasrn and digits).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = sub.add_parser(
        "validate",
        formatter_class=HelpFormatter,
        help="validate experiment files",
        description="Validate experiment files (kind detected from folder or keys).",
    )
    validate.add_argument("files", nargs="+", help="YAML files or preset names")
    validate.add_argument("--kind", choices=("lpasrn", "digits"), help="force the kind of every file")
    validate.add_argument(
        "--set",
        dest="overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="override applied to every file",
    )
    validate.set_defaults(handler=_cmd_validate)

    presets = sub.add_parser(
        "presets",
        formatter_class=HelpFormatter,
        help="list shipped experiment files",
        description="List the experiment files shipped with glyphray.",
    )
    presets.set_defaults(handler=_cmd_presets)
    add_analyze_parser(sub)
    return parser


run, main = console_entrypoints(build_parser, logging_flag=False)

if __name__ == "__main__":
    main()

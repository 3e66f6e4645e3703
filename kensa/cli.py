"""Command-line entry point.

``python -m kensa tiny --out DIR [--name tiny-llama]`` writes a built-in tiny model (or the
``tiny-lora`` adapter) to a directory, so other tools (lm-eval, transformers) can load it.
``python -m kensa tasks`` lists the registered tasks and their prompt versions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kensa.models import tiny


def _tiny(args: argparse.Namespace) -> int:
    try:
        out = tiny.write_tiny(args.name, Path(args.out))
    except FileExistsError as exc:
        print(f"kensa tiny: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


def _tasks(args: argparse.Namespace) -> int:
    from kensa.tasks import all_tasks

    for task in all_tasks():
        for variant in task.variants():
            print(f"{variant.task_id:28} suite={task.suite} k={task.num_fewshot} prompt={variant.template.name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kensa", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("tiny", help="write a built-in tiny model or adapter to a directory")
    p.add_argument("--out", required=True, help="target directory (created; must be empty if it exists)")
    names = sorted(tiny.MODELS) + sorted(tiny.ALIASES) + sorted(tiny.ADAPTERS)
    p.add_argument("--name", default="tiny", choices=names, help="which tiny model (default: tiny = tiny-neox)")
    p.set_defaults(func=_tiny)
    p = sub.add_parser("tasks", help="list tasks and prompt versions")
    p.set_defaults(func=_tasks)
    args = parser.parse_args(argv)
    return args.func(args)

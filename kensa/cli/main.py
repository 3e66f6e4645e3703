"""Command-line entry point.

``python -m kensa tiny --out DIR [--name tiny-llama]`` writes a built-in tiny model (or the
``tiny-lora`` adapter) to a directory, so other tools (lm-eval, transformers) can load it.
``python -m kensa damage SRC OUT [--scale S] [--seed N]`` writes a copy of a model directory
with seeded noise on its weights: a damaged model, to watch the gate catch a drop.
``python -m kensa tasks`` lists the registered tasks and their prompt versions.
``python -m kensa quiz convert IN --eval OUT --train OUT`` writes five-choice quiz files (see :mod:`kensa.cli.quiz`).
``python -m kensa generate --model M --answer A --context C [--bad-words W,W]`` writes one question for
an answer in its context (see :mod:`kensa.cli.generate`).
``python -m kensa hallucination --candidate T --reference T [--reference T ...] [--stop-words W ...] [--json]``
prints the words of a text that no reference holds (see :mod:`kensa.cli.hallucination`).
``python -m kensa doctor`` compares the installed libraries with ``constraints.txt`` and with the
environment each baseline in ``thresholds/`` was measured in (see :mod:`kensa.cli.doctor`).
``python -m kensa harness --model hf-causal --model_args pretrained=X --tasks ... --output_path P``
runs the suite from the jp-stable harness's own command line (see :mod:`kensa.cli.harness`).
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


def _damage(args: argparse.Namespace) -> int:
    src = Path(args.src).expanduser()
    if not (src / "model.safetensors").is_file():
        print(f"kensa damage: {src} has no model.safetensors", file=sys.stderr)
        return 2
    try:
        out = tiny.perturb_weights(src, Path(args.out).expanduser(), scale=args.scale, seed=args.seed)
    except FileExistsError as exc:
        print(f"kensa damage: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


def _tasks(args: argparse.Namespace) -> int:
    from kensa.tasks import all_tasks

    for task in all_tasks():
        for variant in task.variants():
            print(f"{variant.task_id:28} suite={task.suite} k={task.num_fewshot} prompt={variant.template.name}")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from kensa.cli.doctor import run

    return run(args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["harness"]:  # main.py's own flags, parsed by kensa.cli.harness
        from kensa.cli.harness import run

        return run(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m kensa", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("tiny", help="write a built-in tiny model or adapter to a directory")
    p.add_argument("--out", required=True, help="target directory (created; must be empty if it exists)")
    names = sorted(tiny.MODELS) + sorted(tiny.ALIASES) + sorted(tiny.ADAPTERS)
    p.add_argument("--name", default="tiny", choices=names, help="which tiny model (default: tiny = tiny-neox)")
    p.set_defaults(func=_tiny)
    p = sub.add_parser("damage", help="copy a model directory with seeded noise on its weights (a damaged model)")
    p.add_argument("src", help="a model directory with model.safetensors")
    p.add_argument("out", help="target directory (created; must be empty if it exists)")
    p.add_argument("--scale", type=float, default=tiny.DAMAGE_SCALE,
                   help=f"noise per tensor, in units of the tensor's standard deviation (default {tiny.DAMAGE_SCALE})")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.set_defaults(func=_damage)
    sub.add_parser("harness", help="run the suite with the jp-stable harness's main.py flags (--model_args, "
                                   "--tasks, --num_fewshot, --output_path, ...); see `harness --help`")
    p = sub.add_parser("tasks", help="list tasks and prompt versions")
    p.set_defaults(func=_tasks)
    from kensa.cli import generate, hallucination, quiz

    quiz.add_parser(sub)
    generate.add_parser(sub)
    hallucination.add_parser(sub)

    p = sub.add_parser("doctor", help="installed libraries against constraints.txt and against the environment "
                                      "of every baseline: which a run here would call incomparable, and why")
    p.add_argument("--thresholds-dir", help="default: thresholds/ in the checkout")
    p.add_argument("--constraints", help="default: constraints.txt in the checkout")
    p.add_argument("--device", choices=["cpu", "cuda"], help="the device class a run would use (default: cuda if "
                                                            "torch sees one, else cpu)")
    p.set_defaults(func=_doctor)
    args = parser.parse_args(argv)
    return args.func(args)

"""Command-line entry point.

``python -m kensa tiny --out DIR [--name tiny-llama]`` writes a built-in tiny model (or the
``tiny-lora`` adapter) to a directory, so other tools (lm-eval, transformers) can load it; ``--rebuild`` and
``--freeze-corpus`` rebuild a trained one and freeze its training text (see :mod:`kensa.cli.tiny`).
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
``python -m kensa init DIR`` makes a model team's own evaluation repository that runs the installed suites
(see :mod:`kensa.cli.init`). ``python -m kensa --version`` prints kensa's version.
``python -m kensa harness --model hf-causal --model_args pretrained=X --tasks ... --output_path P``
runs the suite from the jp-stable harness's own command line (see :mod:`kensa.cli.harness`).
``python -m kensa trend DIR... [--out trend.md] [--plot trend.png]`` shows every gated metric across a series
of results folders (see :mod:`kensa.report.trend`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kensa.tiny import build as tiny


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


def _trend(args: argparse.Namespace) -> int:
    from kensa.errors import KensaError
    from kensa.report.trend import run

    try:
        text = run(args.dirs, args.out, args.plot, args.order)
    except KensaError as exc:
        print(f"kensa trend: {exc}", file=sys.stderr)
        return 2
    print(text, end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["harness"]:  # main.py's own flags, parsed by kensa.cli.harness
        from kensa.cli.harness import run

        return run(argv[1:])
    from kensa import __version__

    parser = argparse.ArgumentParser(prog="python -m kensa", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"kensa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    from kensa.cli import tiny as tiny_cli

    tiny_cli.add_parser(sub)
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
    from kensa.cli import generate, hallucination, init, quiz

    init.add_parser(sub)

    quiz.add_parser(sub)
    generate.add_parser(sub)
    hallucination.add_parser(sub)

    p = sub.add_parser("doctor", help="installed libraries against constraints.txt and against the environment "
                                      "of every baseline: which a run here would call incomparable, and why")
    p.add_argument("--thresholds-dir", help="default: thresholds/ in the current folder")
    p.add_argument("--constraints", help="default: constraints.txt in the current folder")
    p.add_argument("--device", choices=["cpu", "cuda"], help="the device class a run would use (default: cuda if "
                                                            "torch sees one, else cpu)")
    p.set_defaults(func=_doctor)
    p = sub.add_parser("trend", help="every gated metric across results folders (releases of a model line)")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="results folders (or model folders with results.json)")
    p.add_argument("--out", help="also write the Markdown table here")
    p.add_argument("--plot", help="write a PNG: one panel per suite, a line per task, the baseline's MDE as a band")
    p.add_argument("--order", choices=["given", "date"], default="given",
                   help="release order: as given (default), or by the model's recorded date (else the file's time)")
    p.set_defaults(func=_trend)
    args = parser.parse_args(argv)
    return args.func(args)

"""``python -m kensa harness``: the jp-stable harness's ``main.py`` command line, run as the kensa suite.

People migrate with commands from model cards and blog posts, e.g.::

    python main.py --model hf-causal-experimental \\
        --model_args pretrained=X,peft=PATH,load_in_8bit=True,dtype=float16 \\
        --tasks jcommonsenseqa-1.1-0.3,jnli-1.1-0.3 --num_fewshot "2,3" --device cuda --output_path ./result.json

Each flag is translated into the pytest options that mean the same thing, the suite runs, and
``--output_path`` receives the results in the harness's shape. ``--num_fewshot`` is aligned
positionally with ``--tasks``, as in ``main.py``. The harness has no gate, so none is applied
unless ``--baseline`` is given.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kensa.errors import OptionError
from kensa.paths import SUITES_PACKAGE, write_atomic

MODEL_TYPES = ("hf-causal", "hf-causal-experimental", "hf")
SUITE = f"{SUITES_PACKAGE}.jglue.test_jglue"
"""The JGLUE suite as a module name (run with ``--pyargs``), so that the rootdir stays the current folder."""


@dataclass(frozen=True)
class Translation:
    pytest_args: list[str]
    output_path: Path | None
    model: str
    results_dir: Path
    aliases: dict[str, str] = field(default_factory=dict)
    """Plain harness name -> the task id it runs (``xlsum_ja`` -> ``xlsum_ja-1.0-0.0``)."""
    given: list[str] = field(default_factory=list)
    """``--tasks`` as written, in order."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kensa harness",
                                description="run the kensa suite with the jp-stable harness's main.py flags")
    p.add_argument("--model", required=True, help=f"model type: {', '.join(MODEL_TYPES)}")
    p.add_argument("--model_args", default="", help="k=v,... with pretrained= (the harness's keys)")
    p.add_argument("--tasks", required=True, help="comma-separated task ids, e.g. jcommonsenseqa-1.1-0.3,xwinograd_ja")
    p.add_argument("--num_fewshot", default=None, help="comma-separated k, aligned with --tasks (or one for all)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N")
    p.add_argument("--batch_size", default=None, help="an integer, or auto (halve on out-of-memory)")
    p.add_argument("--limit", default=None, help="first N docs after the shuffle, or a fraction below 1")
    p.add_argument("--output_path", default=None, help="write the harness-shaped results JSON here")
    p.add_argument("--no_cache", action="store_true", help="accepted: kensa keeps no response cache yet")
    p.add_argument("--description_dict_path", default=None, help="refused: published runs used none")
    p.add_argument("--baseline", default=None, help="kensa: gate against thresholds/NAME.toml (default: no gate)")
    p.add_argument("--results_dir", default=None, help="kensa: keep samples and summary here (default: a temp dir)")
    return p


def _split_model_args(text: str) -> tuple[str, list[str]]:
    """``pretrained`` becomes ``--model``; the rest stays ``--model-args``."""
    pretrained, rest = None, []
    for item in filter(None, (x.strip() for x in text.split(","))):
        key, _, value = item.partition("=")
        if key.strip() == "pretrained":
            pretrained = value.strip()
        else:
            rest.append(item)
    if not pretrained:
        raise OptionError("--model_args", f"{text!r} has no pretrained=")
    return pretrained, rest


def _fewshot(tasks: list[str], text: str | None, known: dict[str, str]) -> dict[str, int]:
    """Per task *name* (kensa's --num-fewshot), from the harness's positional list."""
    if text is None:
        return {}
    ks = [k.strip() for k in text.split(",")]
    if len(ks) == 1 and len(tasks) > 1:
        ks = ks * len(tasks)
    if len(ks) != len(tasks):
        raise OptionError("--num_fewshot", f"{len(ks)} values for {len(tasks)} tasks; main.py aligns them by position")
    out: dict[str, int] = {}
    for task_id, raw in zip(tasks, ks):
        try:
            k = int(raw)
        except ValueError:
            raise OptionError("--num_fewshot", f"{raw!r} for {task_id}: expected an integer") from None
        name = known[task_id]
        if name in out and out[name] != k:
            raise OptionError("--num_fewshot", f"task {name} is given k={out[name]} and k={k}; kensa runs one k "
                                               "per task in a session")
        out[name] = k
    return out


def translate(argv: Sequence[str], known: dict[str, str]) -> Translation:
    """``known`` maps every task id to its task name. Raises OptionError naming the flag and value."""
    args = parser().parse_args(list(argv))
    if args.model not in MODEL_TYPES:
        raise OptionError("--model", f"{args.model!r}: kensa runs {', '.join(MODEL_TYPES)} models")
    if args.description_dict_path:
        raise OptionError("--description_dict_path", "not supported: every published run used an empty one")
    pretrained, rest = _split_model_args(args.model_args)
    if args.batch_size is not None:
        if any(item.split("=")[0].strip() == "batch_size" for item in rest):
            raise OptionError("--batch_size", "also given in --model_args")
        rest.append(f"batch_size={args.batch_size}")
    from kensa.tasks.registry import PLAIN_NAMES

    given = [t.strip() for t in args.tasks.split(",") if t.strip()]
    aliases = {t: PLAIN_NAMES[t] for t in given if t not in known and PLAIN_NAMES.get(t) in known}
    tasks = [aliases.get(t, t) for t in given]
    unknown = [t for t in given if t not in known and t not in aliases]
    if unknown:
        raise OptionError("--tasks", f"unknown task(s) {', '.join(unknown)} (kensa has: {', '.join(sorted(known))})")
    results_dir = Path(args.results_dir) if args.results_dir else Path(tempfile.mkdtemp(prefix="kensa-harness-"))
    out = ["--pyargs", "-p", "no:cacheprovider", "--model", pretrained, "--results-dir", str(results_dir)]
    if rest:
        out += ["--model-args", ",".join(rest)]
    fewshot = _fewshot(tasks, args.num_fewshot, known)
    if fewshot:
        out += ["--num-fewshot", ",".join(f"{name}={k}" for name, k in fewshot.items())]
    if args.device:
        device = "cuda" if args.device.startswith("cuda") else args.device
        out += ["--device", device]
    if args.limit is not None:
        out += ["--limit", args.limit]
    out += ["--baseline", args.baseline] if args.baseline else ["--gate", "off"]
    out += [f"{SUITE}::test_task[{t}]" for t in tasks]  # the node ids select the tests
    return Translation(out, Path(args.output_path) if args.output_path else None, pretrained, results_dir, aliases, given)


def in_command_order(doc: dict, given: Sequence[str]) -> dict:
    """Results, versions and ``num_fewshot`` in the order of ``--tasks``, as main.py writes them (the suite
    runs tasks in its own collection order)."""
    ran = list(doc.get("results", {}))
    ks = dict(zip(ran, doc.get("config", {}).get("num_fewshot", []), strict=False))
    order = [t for t in given if t in ran] + [t for t in ran if t not in given]
    for section in ("results", "versions"):
        if isinstance(doc.get(section), dict):
            doc[section] = {t: doc[section][t] for t in order if t in doc[section]}
    if "config" in doc and len(ks) == len(ran):
        doc["config"]["num_fewshot"] = [ks[t] for t in order]
    return doc


def rename_plain(doc: dict, aliases: dict[str, str]) -> dict:
    """Key results by the name the command used, as the harness does (``xlsum_ja``, not ``xlsum_ja-1.0-0.0``)."""
    back = {task_id: plain for plain, task_id in aliases.items()}
    for section in ("results", "versions"):
        if isinstance(doc.get(section), dict):
            doc[section] = {back.get(k, k): v for k, v in doc[section].items()}
    return doc


def run(argv: Sequence[str]) -> int:
    """Translate, run the suite with pytest in a child process (the engine never imports pytest), then
    write ``--output_path`` in the harness's shape."""
    import subprocess
    import sys

    from kensa.backends.args import parse_model_args
    from kensa.models import resolve_model
    from kensa.tasks import all_tasks

    known = {v.task_id: t.name for t in all_tasks() for v in t.variants()}
    try:
        tr = translate(argv, known)
        slug = resolve_model(tr.model, parse_model_args(None)).slug
    except OptionError as exc:
        print(f"kensa harness: {exc}")
        return 4
    print("kensa harness: pytest " + " ".join(tr.pytest_args))
    code = subprocess.call([sys.executable, "-m", "pytest", *tr.pytest_args])
    results = tr.results_dir / slug / "results.json"
    if tr.output_path is not None and results.is_file():
        doc = in_command_order(rename_plain(json.loads(results.read_text(encoding="utf-8")), tr.aliases), tr.given)
        write_atomic(tr.output_path, json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
        print(f"kensa harness: wrote {tr.output_path} ({', '.join(doc['results'])})")
    return code

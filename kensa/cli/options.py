"""The run configuration behind the command-line options, parsed and checked without pytest.

The pytest plugin turns each :class:`~kensa.errors.OptionError` into a usage error that names
the option and the value.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kensa.backends.args import DEVICES, ModelSpec, parse_model_args
from kensa.data import DataSource
from kensa.errors import OptionError
from kensa.gate.history import check_ref
from kensa.models import resolve_model
from kensa.tiny import build as tiny


@dataclass(frozen=True)
class GateOptions:
    """How scores are gated: against which baselines, at which alpha, and whether this run updates them."""

    mode: str = "on"
    baselines: tuple[str, ...] = ()
    """One per model, in ``--model`` order."""
    directory: Path = Path("thresholds")
    update: bool = False
    allow_lower: bool = False
    alpha: float = 0.05
    accept_env_change: bool = False
    base: str = "auto"
    """The git ref thresholds are compared with for hand-lowered values (``auto``: the merge base with
    the default branch; ``none``: no comparison)."""
    sequential: bool = False
    """``--gate-sequential``: score each task in looks and stop when the gate has decided (docs/sequential-gate.md);
    never while updating thresholds, which need every document."""
    pooled: bool = False
    """``--gate-pooled``: one more row per model, the pooled test of a uniform drop across its tasks, in Holm's family."""
    margins: tuple[tuple[str, float], ...] = ()
    """``--gate-margin``: the sequential PASS margin per metric, in the metric's units (default: the task's MDE)."""

    @property
    def enabled(self) -> bool:
        return self.mode == "on"


@dataclass(frozen=True)
class RunConfig:
    models: tuple[ModelSpec, ...] = ()
    prompt_versions: tuple[str, ...] | None = None
    num_fewshot: dict[str, int] = field(default_factory=dict)
    limit: float | None = None
    device: str = "auto"
    data: DataSource = field(default_factory=DataSource.fixtures)
    results_dir: Path = Path("results")
    gate: GateOptions = field(default_factory=GateOptions)
    response_cache: Path | None = None
    """The response cache file (``--response-cache``); None: off."""
    qa_model: ModelSpec | None = None
    """``--qa-model``: answers the round trip's generated questions; None: the evaluated model itself."""

    def baseline_for(self, model: ModelSpec) -> str:
        return self.gate.baselines[self.models.index(model)]

    def fewshot_for(self, task) -> int:
        return self.num_fewshot.get(task.name, task.num_fewshot)

    def describe(self) -> dict[str, Any]:
        """The settings that shaped the scores, for the report header and results JSON."""
        return {
            "models": [m.name for m in self.models],
            "prompt_versions": list(self.prompt_versions) if self.prompt_versions else "all",
            "num_fewshot": self.num_fewshot or "task defaults",
            "limit": self.limit,
            "device": self.device,
            "data": self.data.describe(),
            "results_dir": str(self.results_dir),
            "gate": self.gate.mode + (" (updating thresholds)" if self.gate.update else "")
            + (" (sequential)" if self.gate.sequential else ""),
            "baselines": list(self.gate.baselines),
            "alpha": self.gate.alpha,
            "response_cache": str(self.response_cache) if self.response_cache is not None else "off",
            "qa_model": self.qa_model.name if self.qa_model is not None else "the evaluated model",
        }


def parse_models(models: Sequence[str], model_args: Sequence[str], backend: str = "hf") -> tuple[ModelSpec, ...]:
    """``--model`` may repeat; ``--model-args`` is given once for all or once per model."""
    if model_args and not models:
        raise OptionError("--model-args", "given without --model")
    if len(model_args) > 1 and len(model_args) != len(models):
        raise OptionError("--model-args", f"given {len(model_args)} times for {len(models)} models; "
                                          "give it once for all models or once per --model")
    args_list = [parse_model_args(a) for a in model_args] or [parse_model_args(None)]
    if len(args_list) == 1:
        args_list = args_list * len(models)
    specs = [resolve_model(m, a, backend) for m, a in zip(models, args_list, strict=True)]
    seen: dict[str, str] = {}
    for spec in specs:
        if spec.slug in seen:
            same = "is given more than once" if seen[spec.slug] == spec.name else \
                f"and {seen[spec.slug]!r} would share the results directory {spec.slug!r}"
            raise OptionError("--model", f"{spec.name!r} {same}")
        seen[spec.slug] = spec.name
    return tuple(specs)


def parse_num_fewshot(text: str | None, known_tasks: Sequence[str]) -> dict[str, int]:
    """``task=k,task=k``; an unknown task name or a negative k is an error."""
    out: dict[str, int] = {}
    if not text:
        return out
    for item in text.split(","):
        name, sep, raw = item.strip().partition("=")
        if not sep:
            raise OptionError("--num-fewshot", f"{item!r} is not of the form task=k")
        name = name.strip()
        if name not in known_tasks:
            raise OptionError("--num-fewshot", f"unknown task {name!r} (known: {', '.join(known_tasks)})")
        if name in out:
            raise OptionError("--num-fewshot", f"task {name!r} is given twice")
        try:
            k = int(raw)
        except ValueError:
            raise OptionError("--num-fewshot", f"{item!r}: k must be an integer") from None
        if k < 0:
            raise OptionError("--num-fewshot", f"{item!r}: k must not be negative")
        out[name] = k
    return out


def parse_prompt_versions(text: str | None, known: Sequence[str]) -> tuple[str, ...] | None:
    if not text:
        return None
    versions = tuple(v.strip() for v in text.split(",") if v.strip())
    for v in versions:
        if v not in known:
            raise OptionError("--prompt-version", f"unknown prompt version {v!r} (known: {', '.join(known)})")
    return versions


def parse_limit(text: str | None) -> float | None:
    """An int (first N docs after the shuffle) or a fraction below 1, as in the harness."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise OptionError("--limit", f"{text!r}: expected a number") from None
    if not math.isfinite(value):
        raise OptionError("--limit", f"{text!r}: expected a finite number")
    if value <= 0:
        raise OptionError("--limit", f"{text!r}: must be positive")
    if value >= 1 and value != int(value):
        raise OptionError("--limit", f"{text!r}: a limit of 1 or more must be a whole number")
    return int(value) if value >= 1 else value


def parse_data_source(data_dir: str | None, hub: bool) -> DataSource:
    if data_dir and hub:
        raise OptionError("--data-dir", "cannot be combined with --data-from-hub")
    if hub:
        return DataSource.hub()
    if data_dir:
        path = Path(os.path.expanduser(data_dir))
        if not path.is_dir():
            raise OptionError("--data-dir", f"{data_dir!r}: no such directory")
        return DataSource.local(path)
    return DataSource.fixtures()


def parse_pools(text: str | None, tasks: Sequence[Any], source: DataSource) -> DataSource:
    """``--fewshot-pool task=split|file,...``: where each task's shots come from."""
    if not text:
        return source
    by_name = {t.name: t for t in tasks}
    pools: dict[str, str] = {}
    for item in text.split(","):
        name, sep, value = (x.strip() for x in item.partition("="))
        if not sep or not value:
            raise OptionError("--fewshot-pool", f"{item!r} is not of the form task=split or task=FILE")
        if name not in by_name:
            raise OptionError("--fewshot-pool", f"unknown task {name!r} (known: {', '.join(sorted(by_name))})")
        if name in pools:
            raise OptionError("--fewshot-pool", f"task {name!r} is given twice")
        splits = by_name[name].dataset.local
        if value not in splits and not Path(os.path.expanduser(value)).is_file():
            raise OptionError("--fewshot-pool", f"{item!r}: neither a split of {name} ({', '.join(splits)}) "
                                                "nor an existing file")
        pools[name] = value if value in splits else str(Path(os.path.expanduser(value)).resolve())
    return dataclasses.replace(source, pools=tuple(sorted(pools.items())))


def parse_device(text: str) -> str:
    if text not in DEVICES:
        raise OptionError("--device", f"{text!r}: expected one of {', '.join(DEVICES)}")
    return text


_BASELINE_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*$")


def default_baseline(model: ModelSpec) -> str:
    """The model's slug, with a tiny alias resolved (``tiny`` is gated as ``tiny-neox``)."""
    if model.kind == "tiny" and not model.args.peft:
        return tiny.ALIASES.get(model.source, model.source)
    return model.slug


def parse_gate(models: Sequence[ModelSpec], *, baselines: Sequence[str], mode: str, directory: str, update: bool,
               allow_lower: bool, alpha: str | float, accept_env_change: bool, base: str = "auto",
               sequential: bool = False, margins: str | None = None, pooled: bool = False) -> GateOptions:
    if mode not in ("on", "off"):
        raise OptionError("--gate", f"{mode!r}: expected on or off")
    if mode == "off" and update:
        raise OptionError("--thresholds-update", "cannot be combined with --gate off (it writes what the gate reads)")
    if allow_lower and not update:
        raise OptionError("--allow-lower", "only means something with --thresholds-update")
    if len(baselines) > 1 and len(baselines) != len(models):
        raise OptionError("--baseline", f"given {len(baselines)} times for {len(models)} models; "
                                        "give it once for all models or once per --model")
    for name in baselines:
        if not _BASELINE_NAME.match(name):
            raise OptionError("--baseline", f"{name!r}: a baseline name is a file name (letters, digits, . _ -)")
    names = list(baselines) * len(models) if len(baselines) == 1 else list(baselines)
    names = names or [default_baseline(m) for m in models]
    if update and len(set(names)) != len(names):
        raise OptionError("--baseline", f"{names}: two models cannot update the same baseline in one run")
    try:
        value = float(alpha)
    except ValueError:
        raise OptionError("--alpha", f"{alpha!r}: expected a number") from None
    if not 0 < value < 1:
        raise OptionError("--alpha", f"{alpha!r}: must be between 0 and 1")
    try:
        base = check_ref(base)
    except ValueError as exc:
        raise OptionError("--thresholds-base", str(exc)) from None
    if sequential and mode == "off":
        raise OptionError("--gate-sequential", "cannot be combined with --gate off (it stops on the gate's decision)")
    if margins and not sequential:
        raise OptionError("--gate-margin", "only means something with --gate-sequential")
    if margins and pooled:
        raise OptionError("--gate-margin", "means nothing with --gate-pooled: a task then stops early only to fail "
                          "(the pooled row needs every document), so no PASS margin is used")
    parsed: dict[str, float] = {}
    try:
        if margins:
            from kensa.gate.early import parse_margins  # numpy and scipy: only when margins are given

            parsed = parse_margins(margins)
    except (ValueError, KeyError) as exc:
        raise OptionError("--gate-margin", str(exc)) from None
    return GateOptions(mode=mode, baselines=tuple(names), directory=Path(os.path.expanduser(directory)),
                       update=update, allow_lower=allow_lower, alpha=value, accept_env_change=accept_env_change,
                       base=base, sequential=sequential and not update, margins=tuple(parsed.items()),
                       pooled=pooled)


RESPONSE_CACHE_NAME = "responses.sqlite"


def default_response_cache() -> Path:
    return tiny.cache_root() / RESPONSE_CACHE_NAME


def parse_response_cache(text: str | None) -> Path | None:
    """``--response-cache PATH|off``; absent: ``$KENSA_RESPONSE_CACHE``, else ``<cache root>/responses.sqlite``."""
    option = "--response-cache"
    if text is None:
        text = os.environ.get("KENSA_RESPONSE_CACHE")
        option = "KENSA_RESPONSE_CACHE"
        if text is None:
            return default_response_cache()
    if text.strip().lower() == "off":
        return None
    if not text.strip():
        raise OptionError(option, f"{text!r}: expected a file path or off")
    path = Path(os.path.expanduser(text))
    try:
        if path.is_dir():
            raise OptionError(option, f"{text!r} is a directory; give a file, e.g. "
                                      f"{os.path.join(text, RESPONSE_CACHE_NAME)}")
        parent = next((p for p in path.absolute().parents if p.exists()), None)
    except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL byte
        raise OptionError(option, f"{text[:80]!r}: not a usable path ({exc.__class__.__name__})") from None
    if parent is not None and not parent.is_dir():
        raise OptionError(option, f"{text!r}: {parent} is not a directory")
    return path


def build_run_config(*, models: Sequence[str], model_args: Sequence[str], prompt_version: str | None,
                     num_fewshot: str | None, limit: str | None, device: str, data_dir: str | None,
                     data_from_hub: bool, results_dir: str, tasks: Sequence[Any],
                     gate: dict[str, Any] | None = None, fewshot_pool: str | None = None,
                     response_cache: str | None = None, qa_model: str | None = None,
                     qa_model_args: str | None = None, backend: str = "hf") -> RunConfig:
    versions = sorted({v for t in tasks for v in t.versions()}, key=lambda v: [int(p) for p in v.split(".")])
    specs = parse_models(models, model_args, backend)
    gate = gate or {}
    return RunConfig(
        models=specs,
        gate=parse_gate(specs, baselines=gate.get("baselines", ()), mode=gate.get("mode", "on"),
                        directory=gate.get("directory", "thresholds"), update=gate.get("update", False),
                        allow_lower=gate.get("allow_lower", False), alpha=gate.get("alpha", 0.05),
                        accept_env_change=gate.get("accept_env_change", False), base=gate.get("base") or "auto",
                        sequential=gate.get("sequential", False), margins=gate.get("margins"),
                        pooled=gate.get("pooled", False)),
        prompt_versions=parse_prompt_versions(prompt_version, versions),
        num_fewshot=parse_num_fewshot(num_fewshot, [t.name for t in tasks]),
        limit=parse_limit(limit),
        device=parse_device(device),
        data=parse_pools(fewshot_pool, tasks, parse_data_source(data_dir, data_from_hub)),
        results_dir=Path(results_dir),
        response_cache=parse_response_cache(response_cache),
        qa_model=parse_qa_model(qa_model, qa_model_args),
    )


def parse_qa_model(name: str | None, args: str | None) -> ModelSpec | None:
    if args and not name:
        raise OptionError("--qa-model-args", "given without --qa-model")
    if not name:
        return None
    try:
        return resolve_model(name, parse_model_args(args))
    except OptionError as exc:
        raise OptionError(f"--qa-model ({exc.option})", str(exc).split(": ", 1)[-1]) from None


def replace(config: RunConfig, **changes: Any) -> RunConfig:
    return dataclasses.replace(config, **changes)

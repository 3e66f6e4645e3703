"""The backend registry: what runs a model, looked up by name.

A backend module registers one :class:`BackendEntry`: its name (``--backend hf``, or ``openai`` for a
served model), the request kinds and model kinds it serves, its own small args class (the ``--model-args``
keys that only it reads, a frozen dataclass whose fields and defaults are those of
:class:`~kensa.backends.args.ModelArgs`) and a loader. Checking a spec's arguments against the chosen
backend and loading it are look-ups here; nothing else names a backend.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kensa.backends.args import ModelArgs
from kensa.errors import KensaError, OptionError

# The modules that register a backend, in the order --backend lists them.
BACKEND_MODULES = ("kensa.backends.hf", "kensa.backends.vllm", "kensa.backends.served")

REQUEST_KINDS = ("loglikelihood", "generation")
MODEL_KINDS = ("causal", "seq2seq")

Loader = Callable[..., Any]
"""``load(spec, device, *, kind, source, adapter) -> Backend``: ``source`` is a directory or Hub id (a tiny
model already built), ``adapter`` a peft adapter's or None, ``kind`` one of the entry's model kinds."""


@dataclass(frozen=True)
class BackendEntry:
    name: str
    """``ModelSpec.backend``: what ``--backend`` names, or ``openai`` for a served model."""
    requests: tuple[str, ...]
    """The request kinds it answers (:data:`REQUEST_KINDS`)."""
    model_kinds: tuple[str, ...]
    """The kinds of model it runs (:data:`MODEL_KINDS`); another kind is an option error."""
    args: type
    """Its own model arguments: a frozen dataclass, each field a ``ModelArgs`` field with the same default."""
    load: Loader
    what: str
    """How an error names it when it is chosen: ``the HF backend``."""
    whose: str
    """How an error names it as the owner of the keys another backend refused: ``--backend vllm's``."""
    option: bool = True
    """Chosen with ``--backend``; a served model is chosen by its ``openai://`` name instead."""
    tolerates: tuple[str, ...] = ()
    """Backends whose keys it leaves alone rather than refuse (``--model-args`` once for several models)."""

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.args))


_BACKENDS: dict[str, BackendEntry] = {}
_MODULES: dict[str, str] = {}
"""The module each backend was registered from (its loader's), for a stable order."""


def register(entry: BackendEntry) -> BackendEntry:
    """Add a backend; its args class must name published ``ModelArgs`` keys with their defaults."""
    if entry.name in _BACKENDS and _BACKENDS[entry.name] is not entry:
        raise KensaError(f"backend {entry.name!r} is registered twice")
    unknown = [r for r in entry.requests if r not in REQUEST_KINDS] + [k for k in entry.model_kinds
                                                                        if k not in MODEL_KINDS]
    if unknown:
        raise KensaError(f"backend {entry.name!r}: unknown request or model kinds {unknown}")
    published = {f.name: f for f in dataclasses.fields(ModelArgs)}
    for f in dataclasses.fields(entry.args):
        if f.name not in published or published[f.name].default != f.default:
            raise KensaError(f"backend {entry.name!r}: args field {f.name!r} is not a ModelArgs field with the "
                             "same default (add it to kensa.backends.args.ModelArgs, which parses --model-args)")
    _BACKENDS[entry.name] = entry
    _MODULES[entry.name] = entry.load.__module__
    return entry


def backends() -> list[BackendEntry]:
    """Every registered backend (importing the modules that register them)."""
    for module in BACKEND_MODULES:
        importlib.import_module(module)
    # In BACKEND_MODULES' order whichever module a process happened to import first (choices and errors list
    # them the same way everywhere); others (registered by a test or a plugin) after them, by name.
    order = {module: i for i, module in enumerate(BACKEND_MODULES)}
    return sorted(_BACKENDS.values(), key=lambda b: (order.get(_MODULES.get(b.name, ""), len(order)), b.name))


def option_names() -> tuple[str, ...]:
    """What ``--backend`` accepts."""
    return tuple(b.name for b in backends() if b.option)


def get_backend(name: str, option: str = "--backend") -> BackendEntry:
    entries = {b.name: b for b in backends()}
    if name not in entries or (option == "--backend" and not entries[name].option):
        raise OptionError(option, f"{name!r}: expected one of {', '.join(option_names())}")
    return entries[name]


def check_args(entry: BackendEntry, args: ModelArgs, what: str | None = None) -> None:
    """A key another backend reads, set on a model this one runs, is an error: never silently ignored.
    ``what`` overrides how the error names the chosen backend (e.g. with the served URL)."""
    for owner in backends():
        if owner.name == entry.name or owner.name in entry.tolerates:
            continue
        unread = [k for k in owner.keys if k not in entry.keys and getattr(args, k) != getattr(ModelArgs(), k)]
        if unread:
            raise OptionError("--model-args", f"{', '.join(unread)} mean nothing for {what or entry.what} "
                                              f"(they are {owner.whose})")


def check_kind(entry: BackendEntry, kind: str, model: str) -> None:
    if kind not in entry.model_kinds:
        others = [b.name for b in backends() if kind in b.model_kinds and b.option]
        phrase = "an encoder-decoder (seq2seq)" if kind == "seq2seq" else f"a {kind}"
        raise OptionError("--backend", f"{entry.name}: model {model!r} is {phrase} model; kensa runs those on the "
                                       f"{', '.join(others)} backend only")

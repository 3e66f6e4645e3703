"""``python -m kensa tiny``: the built-in tiny models.

* ``tiny --out DIR [--name NAME]`` writes one (or the ``tiny-lora`` adapter) to a directory, so that other
  tools (lm-eval, transformers) can load it; a trained model is its shipped copy.
* ``tiny --rebuild --name tiny-trained [--out DIR] [--ship]`` trains a trained model again by its recipe,
  with the CPU kernels the shipped copy was trained with, and compares it with the shipped copy by scores
  (exit 1 when they differ by more than the tolerance). ``--ship`` replaces the shipped files with the
  rebuild (after a change of recipe or corpus; regenerate the model's thresholds then).
* ``tiny --freeze-corpus VERSION`` writes the trained models' training text from today's tasks and fixtures
  as a new corpus version (``kensa/tiny/data/corpus/``); :data:`~kensa.tiny.training_corpus.TRAINING_CORPUS_VERSION`
  says which version they learn from.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from kensa.errors import KensaError
from kensa.tiny import build as tiny


def add_parser(sub) -> None:
    p = sub.add_parser("tiny", help="write a built-in tiny model or adapter to a directory; rebuild and compare a "
                                    "trained one; freeze its training text")
    names = sorted(tiny.MODELS) + sorted(tiny.ALIASES) + sorted(tiny.ADAPTERS)
    p.add_argument("--name", default="tiny", choices=names, help="which tiny model (default: tiny = tiny-neox)")
    p.add_argument("--out", help="target directory (created; must be empty if it exists)")
    p.add_argument("--rebuild", action="store_true",
                   help="train the trained model --name by its recipe and compare it with the shipped one by scores")
    p.add_argument("--ship", action="store_true", help="with --rebuild: replace the shipped files with the rebuild")
    p.add_argument("--stride", type=int, default=1,
                   help="with --rebuild: compare on every N-th example of the training corpus (default 1: all)")
    p.add_argument("--freeze-corpus", metavar="VERSION",
                   help="write today's training text as corpus VERSION (e.g. v2); an existing version never changes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        if args.freeze_corpus:
            return _freeze(args.freeze_corpus)
        if args.rebuild:
            return _rebuild(args)
        if args.ship:
            raise KensaError("--ship goes with --rebuild")
        if not args.out:
            raise KensaError("--out is required (or --rebuild, or --freeze-corpus)")
        print(tiny.write_tiny(args.name, Path(args.out)))
        return 0
    except (FileExistsError, KensaError) as exc:
        print(f"kensa tiny: {exc}", file=sys.stderr)
        return 2


def _freeze(version: str) -> int:
    from kensa.tasks.training_text import training_examples
    from kensa.tiny.training_corpus import KINDS, TRAINING_CORPUS_VERSION, corpus_file, examples_digest, write_version

    by_kind = {kind: training_examples(kind=kind) for kind in KINDS}
    for path in write_version(corpus_file(KINDS[0], version).parent, version, by_kind):
        print(path)
    for kind, examples in by_kind.items():
        print(f"{kind}: {len(examples)} examples, digest {examples_digest(examples)}")
    if version != TRAINING_CORPUS_VERSION:
        print(f"the trained tiny models still learn from {TRAINING_CORPUS_VERSION}: to move them, set "
              "TRAINING_CORPUS_VERSION, rebuild and ship them (--rebuild --ship) and regenerate their thresholds")
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    from kensa.backends.identity import weights_sha256
    from kensa.tiny.compare import compare
    from kensa.tiny.shipped import ship, shipped_dir, train_pinned

    name = tiny.ALIASES.get(args.name, args.name)
    if not tiny.is_trained(name):
        raise KensaError(f"--rebuild: {name} is not a trained tiny model (random ones are built, never shipped)")
    out = Path(args.out).expanduser() if args.out else None
    if out is not None and out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty")
    with tempfile.TemporaryDirectory(prefix="kensa-rebuild-") as root:
        print(f"kensa tiny: training {name} by its recipe (minutes on one thread) ...", flush=True)
        built = train_pinned(name, Path(root))
        shipped = shipped_dir(name)
        same = weights_sha256(built) == weights_sha256(shipped)
        print(f"rebuilt weights_sha256 {weights_sha256(built)}; shipped {weights_sha256(shipped)}"
              f" ({'the same bytes' if same else 'other bytes: compared by scores'})")
        result = compare(shipped, built, tiny.kind_of(name), stride=args.stride)
        for line in result.lines():
            print(line)
        print(f"kensa tiny: the rebuild {'agrees' if result.agree else 'DISAGREES'} with the shipped {name} "
              "within the tolerance")
        if out is not None:
            shutil.copytree(built, out, dirs_exist_ok=True)
            print(out)
        if args.ship:
            print(f"kensa tiny: shipped {ship(name, built)}; regenerate {name}'s thresholds if its scores moved")
            return 0
    return 0 if result.agree else 1

"""Do two sets of runs produce the same samples? A digest of every per-sample JSONL, timing fields removed.

    python examples/compare_samples.py BEFORE_ROOT AFTER_ROOT [--drop KEY,KEY]

Each root holds one results folder per run (``<root>/<run>/<model>/samples_*.jsonl``), e.g. made with
``pytest suites/jglue --model tiny-trained --results-dir BEFORE_ROOT/tiny-trained-jglue --response-cache off
--gate off`` at two commits. Prints, per run, the sample count and both digests, and for a run that differs the
first sample and the keys that differ. ``--drop`` leaves more keys out (e.g. ``batches``, a provenance field).
Exit code 0 when every run is the same.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

TIMING = ("seconds", "latency", "timestamp", "elapsed", "duration", "started", "finished", "time_")


def clean(x, drop=()):
    """The sample without timing fields (any key naming a time), keys sorted, recursively."""
    if isinstance(x, dict):
        return {k: clean(v, drop) for k, v in sorted(x.items()) if not any(t in k for t in TIMING) and k not in drop}
    if isinstance(x, list):
        return [clean(v, drop) for v in x]
    return x


def load(run: Path, drop) -> dict[str, list[str]]:
    return {f.name: [json.dumps(clean(json.loads(line), drop), ensure_ascii=False, sort_keys=True)
                     for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
            for f in sorted(run.glob("*/samples_*.jsonl"))}


def digest(rows: dict[str, list[str]]) -> str:
    h = hashlib.sha256()
    for name in sorted(rows):
        h.update(name.encode() + b"\0")
        for r in rows[name]:
            h.update(r.encode() + b"\n")
    return h.hexdigest()[:16]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--drop", default="", help="more keys to leave out, comma-separated")
    args = ap.parse_args(argv)
    drop = tuple(filter(None, args.drop.split(",")))
    same_all = True
    for run in sorted(p for p in args.before.iterdir() if p.is_dir()):
        other = args.after / run.name
        if not other.is_dir():
            print(f"{run.name:28s} missing in {args.after}")
            same_all = False
            continue
        a, b = load(run, drop), load(other, drop)
        da, db = digest(a), digest(b)
        print(f"{run.name:28s} files {len(a):4d} samples {sum(map(len, a.values())):6d}  {da}  {db}  "
              f"{'same' if da == db else 'DIFFERENT'}")
        if da != db:
            same_all = False
            name = next(n for n in sorted(set(a) | set(b)) if a.get(n) != b.get(n))
            xa, xb = a.get(name, []), b.get(name, [])
            i = next((i for i, (p, q) in enumerate(zip(xa, xb)) if p != q), min(len(xa), len(xb)))
            keys = []
            if i < min(len(xa), len(xb)):
                pa, pb = json.loads(xa[i]), json.loads(xb[i])
                keys = [k for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)]
            print(f"   first difference: {name} sample {i} ({len(xa)} vs {len(xb)} samples); keys {keys}")
    print("ALL SAME" if same_all else "SOME DIFFER")
    return 0 if same_all else 1


if __name__ == "__main__":
    sys.exit(main())

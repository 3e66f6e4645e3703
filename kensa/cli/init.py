"""``python -m kensa init DIR``: a model team's own evaluation repository, with kensa installed as a package.

The repository holds what is the team's (baselines, their tokenizer snapshots, quiz files, CI) and none of
kensa: the suites run from the installed package, named as modules (``--pyargs``), so a kensa upgrade is a
version bump in ``requirements.txt`` instead of a merge into a fork. What it writes::

    DIR/
      pytest.ini                  testpaths = kensa_suites, and the options the suites need
      requirements.txt            kensa==<this version> (baselines and prompts are version-bound)
      README.md                   five lines: set-up, gate, new baseline, quiz, CI
      .gitignore                  results/, caches, venvs
      thresholds/README.md        empty of baselines: the first --thresholds-update writes them
      snapshots/README.md         tokenizer snapshots (kensa's tiny models' copied from the package)
      quiz/README.md              the team's own quiz files
      .github/workflows/gate-release-candidate.yml   the CI example, for the installed package

It refuses a folder that already holds any of these files (``--force`` overwrites them; nothing else is
touched) and never runs git.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from kensa import __version__
from kensa.paths import suites_dir, write_atomic

# template file in kensa/cli/team_repo/ -> path in the new repository
FILES = {
    "pytest.ini": "pytest.ini",
    "README.md": "README.md",
    "gitignore": ".gitignore",
    "thresholds_README.md": "thresholds/README.md",
    "snapshots_README.md": "snapshots/README.md",
    "quiz_README.md": "quiz/README.md",
    "gate-release-candidate.yml": ".github/workflows/gate-release-candidate.yml",
}
TOKENIZER_SNAPSHOTS = Path("tokenizers") / "__snapshots__" / "test_tokenizer_snapshots"


def planned(root: Path) -> dict[Path, str]:
    """Every file ``init`` writes under ``root``, with its text."""
    templates = resources.files("kensa.cli") / "team_repo"
    out = {}
    for template, target in FILES.items():
        text = (templates / template).read_text(encoding="utf-8")
        out[root / target] = text.replace("{version}", __version__).replace("{name}", root.resolve().name)
    out[root / "requirements.txt"] = (f"# The kensa release these baselines and snapshots were made with; bump it in a "
                                      f"pull request and rerun the gate.\nkensa=={__version__}\n")
    shipped = suites_dir() / TOKENIZER_SNAPSHOTS
    for path in sorted(shipped.glob("*.tokens.txt")):
        out[root / "snapshots" / "tokenizers" / "test_tokenizer_snapshots" / path.name] = path.read_text(encoding="utf-8")
    return out


def init(root: Path, *, force: bool = False) -> list[Path]:
    """Write the repository; returns the files written. Raises FileExistsError naming the files that exist."""
    files = planned(root)
    existing = sorted(str(p) for p in files if p.exists())
    if existing and not force:
        raise FileExistsError(f"{root} already has {', '.join(existing)} (rerun with --force to overwrite them)")
    for path, text in files.items():
        write_atomic(path, text)
    return sorted(files)


def add_parser(sub) -> None:
    p = sub.add_parser("init", help="make a model team's own evaluation repository that runs the installed suites")
    p.add_argument("dir", help="the repository's folder (created if missing)")
    p.add_argument("--force", action="store_true", help="overwrite the files init writes if they exist")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    root = Path(args.dir).expanduser()
    try:
        written = init(root, force=args.force)
    except FileExistsError as exc:
        print(f"kensa init: {exc}", file=sys.stderr)
        return 2
    print(f"kensa init: wrote {len(written)} files in {root}. Next:")
    print(f"  cd {root} && git init")
    print("  pytest --model MODEL --baseline LINE --thresholds-update   # once: writes thresholds/LINE.toml, exits 1")
    print("  pytest --model MODEL --baseline LINE                       # every candidate")
    return 0

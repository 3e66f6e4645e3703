"""Where things are: the repository (fixtures, suites) and where kensa keeps what it builds and caches
(tiny models, file hashes, the response cache)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout kensa runs from: ``fixtures/``, ``suites/`` and ``thresholds/`` live here."""


def cache_root() -> Path:
    """``$KENSA_CACHE_DIR``, else ``$XDG_CACHE_HOME/kensa``, else ``~/.cache/kensa``."""
    if os.environ.get("KENSA_CACHE_DIR"):
        return Path(os.environ["KENSA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kensa"

"""Where things are: kensa's packaged data (fixtures, suites) and where kensa keeps what it builds and caches
(tiny models, file hashes, the response cache).

The repository's top-level folders are installed as packages of their own (``pyproject.toml``'s
``package-dir``): ``fixtures/`` is ``kensa_fixtures``, ``suites/`` is ``kensa_suites``, ``plugins/`` is
``kensa_pytest``. They are found through :mod:`importlib.resources`, so the same code reads them from a
checkout (editable install) and from an installed wheel; nothing looks for a checkout."""

from __future__ import annotations

import contextlib
import os
import tempfile
from importlib import resources
from pathlib import Path

from kensa.errors import WriteError
from kensa.faults import fault_point

FIXTURES_PACKAGE = "kensa_fixtures"
SUITES_PACKAGE = "kensa_suites"


def package_folder(package: str) -> Path:
    """The folder of one of kensa's data packages, as a real path (pip unpacks wheels, so it is one)."""
    try:
        return Path(str(resources.files(package)))
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(f"{package} is not installed: install kensa (`pip install kensa`, or "
                                  f"`make install` / `pip install -e .` in a checkout)") from exc


def fixtures_dir() -> Path:
    """The small data sets shipped with kensa (the repository's ``fixtures/``)."""
    return package_folder(FIXTURES_PACKAGE)


def suites_dir() -> Path:
    """kensa's pytest suites (the repository's ``suites/``)."""
    return package_folder(SUITES_PACKAGE)


def cache_root() -> Path:
    """``$KENSA_CACHE_DIR``, else ``$XDG_CACHE_HOME/kensa``, else ``~/.cache/kensa``."""
    if os.environ.get("KENSA_CACHE_DIR"):
        return Path(os.environ["KENSA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kensa"


def write_atomic(path: Path, data: str | bytes, *, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` so that a reader, or a run killed at any moment, sees either the old file
    or the whole new one: a temporary file in the same folder, flushed to disk, then renamed over
    ``path`` (and the folder synced, so the rename itself survives a crash). A failed write (a full
    disk, a file-size limit) raises :class:`~kensa.errors.WriteError` and leaves ``path`` as it was."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        raw = data.encode("utf-8") if isinstance(data, str) else data
        with os.fdopen(fd, "wb") as f:
            f.write(raw[: len(raw) // 2])
            f.flush()
            fault_point("write_atomic", path)  # the kill sweep kills here: half the bytes are on disk
            f.write(raw[len(raw) // 2:])
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp makes files private; results and thresholds are shared
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError):
            raise WriteError(path, exc) from exc
        raise
    _sync_folder(path.parent)
    return path


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

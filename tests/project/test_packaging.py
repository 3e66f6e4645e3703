"""What the wheel is made of, checked without building one (tests/system/test_wheel.py builds and installs it).

The repository's folders are mapped to package names in pyproject.toml, so the package list is explicit: a new
engine sub-package or suite, or a data file of a new kind, must be added there or the wheel silently lacks it.
"""

from __future__ import annotations

import subprocess
import sys

import tomllib
from setuptools import find_packages

from kensa import __version__
from tests.helpers import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
FOLDERS = {package: REPO / folder for package, folder in SETUPTOOLS["package-dir"].items()}


def folder_of(package: str):
    top, _, rest = package.partition(".")
    base = FOLDERS.get(top, REPO / top)
    return base.joinpath(*rest.split(".")) if rest else base


def test_every_package_on_disk_is_in_the_package_list():
    listed = set(SETUPTOOLS["packages"])
    on_disk = set(find_packages(str(REPO), include=["kensa", "kensa.*"]))
    for package, folder in FOLDERS.items():
        on_disk |= {package} | {f"{package}.{sub}" for sub in find_packages(str(folder))}
    assert sorted(on_disk - listed) == [] and sorted(listed - on_disk) == []


def test_every_data_file_is_package_data():
    """Every file in a mapped folder or an engine package that is not Python is matched by a package-data glob."""
    globs = SETUPTOOLS["package-data"]
    missing = []
    for package in SETUPTOOLS["packages"]:
        folder = folder_of(package)
        shipped = {p for pattern in globs.get(package, []) for p in folder.glob(pattern)}
        subpackages = {folder_of(p) for p in SETUPTOOLS["packages"] if p.startswith(package + ".")}
        for path in folder.rglob("*"):
            if (not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts
                    or path.name == "README.md" and package != "kensa_fixtures"
                    or any(path.is_relative_to(s) for s in subpackages)):
                continue
            if path not in shipped:
                missing.append(str(path.relative_to(REPO)))
    assert missing == []


def test_the_version_has_one_source():
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    assert SETUPTOOLS["dynamic"]["version"] == {"attr": "kensa.__version__"}
    done = subprocess.run([sys.executable, "-m", "kensa", "--version"], capture_output=True, text=True, check=False)
    assert done.stdout == f"kensa {__version__}\n"
    assert f"## [{__version__}]" in (REPO / "CHANGELOG.md").read_text(encoding="utf-8")


def test_the_plugin_is_an_entry_point_named_as_its_module():
    """The entry point's name is the module's, so the checkout's conftest naming it again is a no-op."""
    assert PYPROJECT["project"]["entry-points"]["pytest11"] == {"kensa_pytest": "kensa_pytest"}
    assert "kensa_pytest" in (REPO / "conftest.py").read_text(encoding="utf-8")


def test_the_pytest_layer_cannot_be_imported_by_its_folder_name():
    """``import plugins.gate`` with the checkout on sys.path would load a second copy of the layer."""
    done = subprocess.run([sys.executable, "-c", "import plugins.gate"], cwd=REPO, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 1 and "ImportError: kensa's pytest layer is the package kensa_pytest" in done.stderr

"""kensa's pytest layer, installed as the package ``kensa_pytest`` (the repository's ``plugins/`` folder).

This module is the plugin pytest loads: the ``pytest11`` entry point ``kensa_pytest`` names it, so it loads
in any project where kensa is installed. The checkout's ``conftest.py`` names it too, under the same name,
which makes the second load a no-op (pytest skips a plugin name it has registered).
"""

if __name__ != "kensa_pytest":
    # Imported by its folder name (``import plugins.gate`` with the checkout on sys.path): a second copy of
    # every module, whose options and stash keys would clash with the installed one's.
    raise ImportError(f"kensa's pytest layer is the package kensa_pytest, not {__name__!r}: "
                      "import kensa_pytest.<module> (install kensa: `make install` or `pip install -e .`)")

import pytest  # noqa: E402 (after the guard: a stray import fails before anything else loads)

pytest_plugins = (f"{__name__}.kensa_plugin",)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """A project's pytest.ini that pytest did not read is an error, not a run with other settings."""
    here = config.invocation_params.dir
    ini = here / "pytest.ini"
    if config.inipath is None and ini.is_file() and config.rootpath != here:
        # pytest picks the rootdir before plugins add their options, so it takes an option's value that is an
        # existing path (``--model /models/x``) for a test path, and looks for a configuration file above it.
        raise pytest.UsageError(
            f"pytest did not read {ini}: it took {config.rootpath} for the rootdir, because an option's value "
            "outside this folder looked like a test path to it. Give such options as one argument, e.g. "
            "--model=/models/x (or add -c pytest.ini)")

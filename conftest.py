"""Root conftest of kensa's checkout: kensa's pytest plugin for the suites, and pytester for the self-tests.

The plugin is the installed package ``kensa_pytest`` (this checkout's ``plugins/``, through ``make install``'s
editable install). Its entry point has loaded it already; naming it here again is a no-op, and makes the
checkout work with plugin autoloading off (``PYTEST_DISABLE_PLUGIN_AUTOLOAD``).
"""

import importlib.util

if importlib.util.find_spec("kensa_pytest") is None:
    raise ImportError("kensa is not installed in this Python: run `make install` (or `pip install -e .`), which "
                      "installs this checkout's plugins/, suites/ and fixtures/ as kensa_pytest, kensa_suites and "
                      "kensa_fixtures")

pytest_plugins = ("kensa_pytest", "pytester")

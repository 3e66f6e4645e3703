"""Root conftest: loads kensa's pytest plugin for the suites, and pytester for the self-tests."""

pytest_plugins = ("plugins.kensa_plugin", "pytester")

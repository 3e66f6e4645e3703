"""Speed benchmark of kensa's HF backend against lm-eval 0.4's ``HFLM`` on the same requests.

Not a test package: pytest collects only ``tests/`` (``testpaths`` in pyproject.toml) and nothing here is
named ``test_*.py``. Run it with ``.venv/bin/python -m bench.run`` (see bench/README.md).
"""

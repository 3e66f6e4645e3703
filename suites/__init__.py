"""kensa's pytest suites, installed as ``kensa_suites``: run them with ``pytest --pyargs kensa_suites`` (or
``pytest suites`` in a checkout)."""

"""Front ends that need no pytest: ``options`` (the run configuration every front end builds, the
pytest plugin included), ``harness`` (the jp-stable harness's ``main.py`` flags) and ``main``
(``python -m kensa``)."""

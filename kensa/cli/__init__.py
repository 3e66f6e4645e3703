"""Front ends that need no pytest: :mod:`.options` (the run configuration every front end builds, the pytest
plugin included), :mod:`.harness` (the jp-stable harness's ``main.py`` flags), :mod:`.main` (``python -m
kensa``) and its commands :mod:`.doctor` (why a baseline would be incomparable here), :mod:`.generate` (one
generated question) and :mod:`.quiz` (the quiz's options and ``quiz convert``), and :mod:`.workers` (pytest-xdist
workers on GPUs and CPU cores)."""

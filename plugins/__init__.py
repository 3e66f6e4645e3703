"""kensa's pytest layer. ``conftest.py`` at the repository root loads ``plugins.kensa_plugin``."""

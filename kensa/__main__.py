"""``python -m kensa``: command-line helpers that need no pytest."""

from kensa.cli import main

raise SystemExit(main())

"""``python -m kensa``: command-line helpers that need no pytest."""

from kensa.cli.main import main

raise SystemExit(main())

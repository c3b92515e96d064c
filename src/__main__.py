"""Command line: ``python -m src <command> --help``."""

from .cli import main

raise SystemExit(main())

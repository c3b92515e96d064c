"""Command line: ``python -m src <command> --help``."""

from .commands.cli import main

raise SystemExit(main())

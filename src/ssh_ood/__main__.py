"""Command line: ``python -m ssh_ood <command> --help``."""

from .commands.cli import main

raise SystemExit(main())

"""The ``sessionpacks`` console script; see ``docs/cli.md`` or ``sessionpacks --help``."""

from sessionpacks._cli import build_parser, main

__all__ = ["build_parser", "main"]

"""The command-line interface, private: the public entry point is :func:`sessionpacks.cli.main`."""

from .app import build_parser, main

__all__ = ["build_parser", "main"]

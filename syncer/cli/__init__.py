"""Commands, and the wiring that picks concrete connectors (with the demo, the only code
that names a CRM). `syncer.cli.main` and `build_parser` are the entry points (the console
script, `python -m syncer.cli`, tests)."""

from syncer.cli.main import build_parser, main

__all__ = ["build_parser", "main"]

"""One module per group of commands; each exposes `register(subparsers)`.

cli.py only assembles them, so a new command is a new module plus one line in COMMANDS.
"""

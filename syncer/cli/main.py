"""The `syncer` command line. Thin: parse arguments, call the library, print.

Every error a user can cause derives from `syncer.domain.failures.SyncerError`: main() catches it
once, prints `syncer: <message>` (what is wrong and what to do) to stderr and exits with the
error's code (the table is in `syncer --help`). Anything else is a bug: one line saying so,
exit 1. `--debug` shows the traceback either way. Neither prints a secret.

Starting must be quick (`syncer --help` in well under 300 ms): this module and the command
modules import only the standard library and syncer.domain.failures at import time; SQLAlchemy,
the CRM clients, scikit-learn, the sandboxes and the pipeline are imported inside the
command functions that use them (bench/bench_cli.py measures it).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from syncer.cli.commands import (
    dead_letters,
    import_list,
    inspect,
    model,
    report,
    sandbox,
    setup,
    sync,
    web,
    workers,
)
from syncer.domain.failures import (
    EXIT_BAD_INPUT,
    EXIT_RUN_FAILED,
    EXIT_UNREACHABLE,
    SyncerError,
    exit_code_epilog,
)

#: Command modules, in the order their commands appear in --help.
COMMANDS = (sync, import_list, setup, sandbox, inspect, report, dead_letters, model, workers,
            web)

DEBUG_FLAG = "--debug"


class Parser(argparse.ArgumentParser):
    """argparse, with its errors in the shape of every other error (`syncer CMD: ...`):
    one line that says what is wrong and what to do, exit 2 (no usage block to scroll
    past)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message}. Fix: see "
                                  f"`{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="syncer", description="Lead-qualification sync daemon for HubSpot and Salesforce.",
        epilog=exit_code_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help="on an error, show the full traceback (anywhere on the line)")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    # --debug is global and may follow the command too: `syncer sync --once --debug`.
    debug = DEBUG_FLAG in words[:words.index("--")] if "--" in words else DEBUG_FLAG in words
    if debug:
        words = [DEBUG_FLAG] + [word for word in words if word != DEBUG_FLAG]
    args = build_parser().parse_args(words)
    try:
        code: int = args.func(args)
        return code
    except SyncerError as error:
        return _exit_with(error, str(error), error.exit_code, debug)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `syncer audit | head`: the reader has all it wanted
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - flushed at exit, not before
        return EXIT_RUN_FAILED
    except OSError as error:
        if error.filename is None:  # a socket or a pipe: not a path the user gave
            return _unexpected(error, debug)
        return _exit_with(error, f"cannot use {error.filename}: {error.strerror}. Fix: check "
                          "the path, that its folder exists and that you may write there",
                          EXIT_BAD_INPUT, debug)
    except Exception as error:  # a bug, or a state database that vanished mid-command
        if _is_database_unreachable(error):
            return _exit_with(error, "cannot reach the state database "
                          f"({type(error).__name__}). Fix: start the database or correct "
                          "state.url in the config (or --state), then run the command "
                          "again", EXIT_UNREACHABLE, debug)
        return _unexpected(error, debug)


def _unexpected(error: BaseException, debug: bool) -> int:
    """An error syncer did not foresee: a bug. Its text is not printed (it may hold a
    value from a CRM); the traceback is one --debug away."""
    return _exit_with(error, f"unexpected {type(error).__name__}: this is a bug in syncer. "
                      f"Fix: rerun with {DEBUG_FLAG} and report it with the traceback",
                      EXIT_RUN_FAILED, debug)


def _exit_with(error: BaseException, message: str, code: int, debug: bool) -> int:
    """Print `syncer: message` (after the traceback with --debug); return the exit code."""
    if debug:
        traceback.print_exception(error)
    print(f"syncer: {message}", file=sys.stderr)
    return code


def _is_database_unreachable(error: BaseException) -> bool:
    """A SQLAlchemy OperationalError: the server went away or never answered. Checked by
    name so that starting syncer does not import SQLAlchemy."""
    return any(kind.__name__ == "OperationalError" and kind.__module__ == "sqlalchemy.exc"
               for kind in type(error).__mro__)


if __name__ == "__main__":
    sys.exit(main())

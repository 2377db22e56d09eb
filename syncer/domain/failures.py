"""The one root of every error a user can cause, and the exit code each kind means.

`syncer` catches `SyncerError` once (syncer/cli/main.py), prints `syncer: <message>` and exits
with the error's `exit_code`; anything else is a bug and says so. So a new error an admin
can fix is a subclass of one of the three kinds below, with a message that says what is
wrong and what to do ("... Fix: ..."), and needs no new `except` anywhere.

This module imports nothing, so the domain, the store, the core and the connectors can all
derive from it without importing each other (syncer/domain/errors.py is something else: it
classifies a CRM's per-record write errors by cause).
"""

from __future__ import annotations

from typing import ClassVar

#: The documented exit codes (`syncer --help` shows them; tests/test_bad_inputs.py holds
#: the command line to them).
EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3

EXIT_CODES = (
    (EXIT_OK, "ok"),
    (EXIT_RUN_FAILED, "a run failed (the CRM refused writes, a lock was lost...) or a bug"),
    (EXIT_BAD_INPUT, "bad input or config: a file, a flag, a model, a CSV, a state URL"),
    (EXIT_UNREACHABLE, "the CRM or the state database cannot be reached or used\n"
                       "     (connection refused, DNS, timeout, a newer schema)"),
)


class SyncerError(Exception):
    """An error a user can cause and fix. `str(error)` is the message: what is wrong and
    what to do. Subclasses pick their kind by deriving from one of the three below."""

    exit_code: ClassVar[int] = EXIT_RUN_FAILED


class RunFailed(SyncerError):
    """A run that started and could not finish as asked (exit 1)."""

    exit_code: ClassVar[int] = EXIT_RUN_FAILED


class BadInput(SyncerError):
    """Input the user gave is wrong: a config, a model, a flag, a CSV, a path (exit 2)."""

    exit_code: ClassVar[int] = EXIT_BAD_INPUT


class Unreachable(SyncerError):
    """Something syncer needs is not there or not usable right now: the CRM, the state
    database, or a state migrated by a newer syncer (exit 3)."""

    exit_code: ClassVar[int] = EXIT_UNREACHABLE


def exit_code_epilog() -> str:
    """The exit code table as `syncer --help` prints it."""
    return "exit codes:\n" + "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_CODES)

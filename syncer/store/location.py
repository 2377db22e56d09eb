"""Where the state is: reading a state URL, and refusing state that is not there.

Opening a SQLite URL creates the file, which is right for a sync (the first one starts
the state) and wrong for every command that only reads state (explain, audit, runs,
report, dead-letters, model history, model diff): there a mistyped path, or a command
run from another folder than the demo's, used to show an empty history without a word.
Those commands call `require_existing` first (through syncer/store/read_only.py, or
`syncer.cli.commands.common.open_state` for `syncer runs`, which writes spooled runs), so
they never create a database.

Both errors derive from `StateUnavailable`, print as one line an admin can act on, and
exit 2 (syncer/cli/main.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from syncer.domain.failures import BadInput, Unreachable

#: the backends syncer keeps its state in (docs/configuration.md: state.url)
BACKENDS = ("sqlite", "postgresql")
_EXAMPLES = "sqlite:///.syncer/state.db or postgresql+psycopg://user@host/dbname"


class StateUnavailable(BadInput, ValueError):
    """The state a command needs cannot be used; the message says what to do."""


class StateUrlInvalid(StateUnavailable):
    """A state URL that is not a database URL syncer can use."""


class NoState(StateUnavailable):
    """A command that only reads state was pointed at a SQLite file that does not exist."""

    def __init__(self, path: str) -> None:
        super().__init__(f"no state at {path}: run `syncer sync --once` (or `syncer demo`) "
                         "first, or pass --state URL")
        self.path = path


class StateUnreachable(Unreachable):
    """The state database's server did not answer (refused, unknown host, timed out) or
    refused the login: exit 3, the same command may work once it is back."""


_START = "start the database (or fix the network) or correct state.url in the config"
_LOGIN = "check the user, password and database name in state.url (or --state)"
#: Substrings of a driver's connection error -> the few words an admin reads, and the fix.
_REASONS = (
    ("connection refused", "connection refused", _START),
    ("could not translate host name", "unknown host", _START),
    ("name or service not known", "unknown host", _START),
    ("nodename nor servname", "unknown host", _START),
    ("timeout", "timed out", _START),
    ("timed out", "timed out", _START),
    ("password authentication failed", "login refused", _LOGIN),
    ("does not exist", "no such database or role", _LOGIN),
)


def unreachable(url: str, error: BaseException) -> StateUnreachable:
    """The one-line error for a state database that could not be connected to: the URL
    without its password, the reason in a few words, and what to do."""
    inner = getattr(error, "orig", None) or error
    text = str(inner).lower()
    reason, fix = next(((short, fix) for needle, short, fix in _REASONS if needle in text),
                       (type(inner).__name__, _START))
    try:
        shown = make_url(url)._replace(password=None).render_as_string(hide_password=False)
    except (ArgumentError, ValueError):
        shown = shown_url(url)
    return StateUnreachable(f"cannot reach the state database at {shown} ({reason}). "
                            f"Fix: {fix}, then run the command again")


def shown_url(url: str) -> str:
    """The URL as it may be printed: a password (user:password@) is masked."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


def parse_state_url(url: str) -> URL:
    """The parsed URL. Raises StateUrlInvalid (one line, no password) when it does not
    parse or names a backend syncer does not keep state in."""
    try:
        parsed = make_url(url)
        parsed.get_dialect()  # an unknown driver fails here, not in the middle of a command
    except (ArgumentError, NoSuchModuleError, ValueError):
        raise StateUrlInvalid(f"the state URL {shown_url(url)!r} is not a database URL. Fix: "
                              f"use e.g. {_EXAMPLES}") from None
    if parsed.get_backend_name() not in BACKENDS:
        raise StateUrlInvalid(f"the state URL {shown_url(url)!r} names "
                              f"{parsed.get_backend_name()}; syncer keeps its state in "
                              f"SQLite or PostgreSQL. Fix: use e.g. {_EXAMPLES}")
    return parsed


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite state URL names; None for an in-memory database or another
    backend."""
    parsed = parse_state_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.query.get("uri") in ("true", "1"):  # file:NAME?mode=... URI form
        return Path(str(parsed.database).removeprefix("file:"))
    return Path(str(parsed.database))


def require_existing(url: str) -> None:
    """Raise NoState unless the state at `url` may already exist: a SQLite file must be
    there (a server database's existence is the server's to answer, on connect)."""
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise NoState(str(path.resolve()) if not path.is_absolute() else str(path))
